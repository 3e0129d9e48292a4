"""Worker processes die with their parent: ``kill -9`` of ``tpslab index --rebuild`` or
``tpslab extract-frames`` leaves no worker behind, and the next run removes what the killed one left.

Each test starts the real command in a subprocess (its work slowed down by a wrapper so the kill
lands while workers are busy), kills it with SIGKILL once its workers exist, and waits (with a
deadline, never a fixed sleep) for every worker to be gone and for the caller's pipe to close.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from release import make_release
from videorelease import make_video_release

# Slow: every test starts the real command in a new Python process and kills it (`make test` runs them:
# pytest -m slow).
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")]

DEADLINE = 5.0  # seconds for the workers to go after the parent is killed (they took tens before)


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], int(fields[19])


def _children(pid: int) -> dict[int, int]:
    """{child pid: start time} of the live children of ``pid``."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[0] == pid and st[1] != "Z":
                found[int(entry.name)] = st[2]
    return found


def _alive(pid: int, started: int) -> bool:
    """The process ``pid`` that started at ``started`` still runs (a zombie or a reused pid does not)."""
    st = _stat(pid)
    return st is not None and st[1] != "Z" and st[2] == started


def wait_for(condition, timeout: float, interval: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(interval)
    return condition()


# The command, its work slowed down so that the kill lands while the workers are busy. The workers
# are forked, so they run the patched functions.
PRELUDE = textwrap.dedent("""
    import sys, time
    import tpslab.index as index
    import tpslab.frames as frames

    index.PARALLEL_MIN_FILES, index.BATCH_FILES = 1, 4
    _parse = index._parse_batch
    def slow_parse(task):
        time.sleep(0.2)
        return _parse(task)
    index._parse_batch = slow_parse

    from PIL import Image
    _save = Image.Image.save
    def slow_save(self, *args, **kwargs):
        time.sleep(0.1)
        return _save(self, *args, **kwargs)
    Image.Image.save = slow_save

    import pyarrow.parquet as pq
    _write_table = pq.write_table
    def slow_write_table(*args, **kwargs):
        if "--slow-cache" in sys.argv:
            time.sleep(30)
        return _write_table(*args, **kwargs)
    pq.write_table = slow_write_table

    from tpslab.cli import main
    sys.exit(main([a for a in sys.argv[1:] if a != "--slow-cache"]))
""")


def _start(args, env_extra) -> subprocess.Popen:
    env = {**os.environ, **env_extra}
    return subprocess.Popen([sys.executable, "-c", PRELUDE, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def _kill_and_check(proc: subprocess.Popen, min_workers: int = 2, ready=lambda: True) -> None:
    """Wait for ``min_workers`` children (and ``ready()``), SIGKILL the parent; all children must go and the
    caller's pipes must close within DEADLINE seconds."""
    workers = {}

    def busy():
        workers.update(_children(proc.pid))
        return len(workers) >= min_workers and ready()

    try:
        assert wait_for(busy, 60), f"no workers appeared: {proc.poll()} {proc.stderr.read1() if proc.poll() else ''}"
        assert proc.poll() is None, "the command ended before it could be killed"
        workers = {pid: start for pid, start in workers.items() if _alive(pid, start)}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # the caller's pipes close only when every process holding them (the workers) is gone
        closed = threading.Event()
        threading.Thread(target=lambda: (proc.stdout.read(), proc.stderr.read(), closed.set()),
                         daemon=True).start()
        gone = wait_for(lambda: not any(_alive(p, s) for p, s in workers.items()), DEADLINE)
        left = [p for p, s in workers.items() if _alive(p, s)]
        assert gone, f"{len(left)} of {len(workers)} workers still alive {DEADLINE} s after the parent died"
        assert closed.wait(DEADLINE), "the caller's pipes stayed open after the workers were gone"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid, start in workers.items():  # never leave strays behind, whatever happened
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)


def _annotation_tree(root: Path, videos: int = 12, frames: int = 12) -> Path:
    from release import human, part

    content = {"humans": [human([2, 2, 60, 80], [part("head", [10, 5, 20, 15], "none")])]}
    return make_release(root, {("lunge", f"v{i:03d}"): {f: content for f in range(1, frames + 1)}
                               for i in range(videos)})


def test_kill_9_of_index_rebuild_leaves_no_worker(tmp_path):
    root = _annotation_tree(tmp_path / "tps")
    proc = _start(["index", str(root), "--rebuild", "--workers", "2", "--quiet"], {})
    _kill_and_check(proc)


def test_kill_9_during_the_cache_write_and_the_next_build_cleans_up(tmp_path):
    from tpslab.index import cache_dir_for

    root = _annotation_tree(tmp_path / "tps", videos=4, frames=4)
    env = {}
    cache = cache_dir_for(root)
    proc = _start(["index", str(root), "--rebuild", "--workers", "2", "--quiet", "--slow-cache"], env)
    assert wait_for(lambda: any(cache.glob(".tmp-index-*")) or proc.poll() is not None, 60)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()
    assert [p.name for p in cache.glob(".tmp-index-*")]  # what the killed build left
    done = subprocess.run([sys.executable, "-m", "tpslab", "index", str(root), "--quiet"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not list(cache.glob(".tmp-index-*"))
    assert len(list(cache.glob("index-*"))) == 1


def test_kill_9_of_extract_frames_leaves_no_worker_and_the_next_run_cleans_up(tmp_path):
    root = make_video_release(tmp_path / "tps")
    out = tmp_path / "frames"
    env = {}
    proc = _start(["extract-frames", str(root), str(out), "--workers", "2", "--quiet"], env)
    _kill_and_check(proc, ready=lambda: any(out.glob("*/*/.*.partial-*/img_00001.jpg")))
    left = list(out.glob("*/*/.*.partial-*"))
    assert left  # the killed run's workers were writing
    done = subprocess.run([sys.executable, "-m", "tpslab", "extract-frames", str(root), str(out), "--quiet",
                           "--workers", "1"], capture_output=True, text=True, env={**os.environ, **env},
                          timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    assert not list(out.glob("*/*/.*.partial-*")), "the stale partial folders were not removed"
    assert len(list(out.glob("*/*/*/img_00001.jpg"))) == 4


POOL_ONLY = textwrap.dedent("""
    import sys, time
    import tpslab.memory as memory
    if "--no-pdeathsig" in sys.argv:
        memory._PR_SET_PDEATHSIG = -1  # an invalid prctl option: only the watcher thread is left
    memory.worker_map(time.sleep, [30] * 4, 2, progress=False)
""")


@pytest.mark.parametrize("how", ["pdeathsig", "--no-pdeathsig"])
def test_kill_9_of_any_worker_map_caller_leaves_no_worker(how):
    proc = subprocess.Popen([sys.executable, "-c", POOL_ONLY, how], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_and_check(proc)
