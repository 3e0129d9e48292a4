"""Process-level helpers: the garbage collector paused for bulk loading, worker pools that die with
their parent, and owner tags that tell a live process's temporary files from a killed one's."""

from __future__ import annotations

import gc
import os
import re
import socket
import sys
import threading
import time
import warnings
from contextlib import contextmanager


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector for a block (restored after it).

    Loading or flattening millions of objects makes every allocation burst walk the whole heap
    again (loading a test-set-sized submission took 12 s instead of 0.9 s; reloading the index
    beside a large object-dtype table, 1.2 s instead of 0.7 s). The blocks it guards create no
    reference cycles, so nothing collectable is kept alive longer.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ----------------------------------------------------------------------------- worker pools

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_S = 0.5  # how often a worker's watcher thread checks that its parent still lives


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(1)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker as soon as ``parent`` (the pool's owner) is gone.

    Without it, workers of a parent killed with SIGKILL block forever on their task queue (whose
    write end they hold themselves), keeping the caller's pipes open. On Linux the kernel sends
    SIGKILL at the parent's death (``PR_SET_PDEATHSIG``); everywhere, a daemon thread polls the
    parent pid as well (it also covers a parent that died before the signal was armed).
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher thread below still works
    if os.getppid() != parent:  # died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="tpslab-parent-watch", daemon=True).start()


def _pool(workers: int):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # fork where the platform has it: spawn would re-run the user's script (an unguarded
    # `load_dataset()` at top level) in every worker. The workers only run tpslab's own functions.
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),))


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the platform says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _background_run(parent: int, send, fn, args) -> None:
    _die_with_parent(parent)
    try:
        send.send((True, fn(*args)))
    except BaseException:  # the caller runs fn itself, so that an error is raised there with its traceback
        send.send((False, None))
    finally:
        send.close()


def in_background(fn, *args):
    """Start ``fn(*args)`` in a forked process (dying with this one) and return a function that waits for
    its result, while this process goes on with other work; the result comes back pickled.

    Where the platform cannot fork, or this process may use a single CPU only, nothing starts and the
    returned function runs ``fn(*args)`` here. If the worker fails (killed, an exception, a result that
    cannot be pickled), the returned function runs ``fn(*args)`` here too: an exception is then raised
    from this process, with its usual traceback.
    """
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods() or usable_cpus() < 2:
        return lambda: fn(*args)
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_background_run, args=(os.getpid(), send, fn, args), daemon=True)
    proc.start()
    send.close()

    def result():
        try:
            ok, value = recv.recv()
        except Exception:  # the worker died, or its result does not unpickle here
            ok = False
        finally:
            recv.close()
            proc.join()
        return value if ok else fn(*args)

    return result


def in_thread(fn, *args):
    """Start ``fn(*args)`` in a thread of this process and return a function that waits for its result (or
    raises its error, in the caller's thread). For work that lets go of the GIL (the compiled reader of part
    files); the thread is a daemon: it does not keep the process alive."""
    import threading

    out = {}

    def run():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # raised again by result()
            out["error"] = e

    thread = threading.Thread(target=run, name="tpslab-in-thread", daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    return result


def worker_map(fn, tasks, workers: int, *, desc: str | None = None, unit: str = "it", sizes=None,
               progress: bool = True, leave: bool = True, bar=None, serial_fallback: bool = False) -> list:
    """``[fn(t) for t in tasks]``, in up to ``workers`` worker processes that die with this one.

    Results come back in task order. With ``workers <= 1`` or a single task, everything runs in this
    process. Workers are forked (where the platform can) and exit when this process dies, even by
    SIGKILL (see :func:`_die_with_parent`). A progress bar advances by ``sizes[i]`` (default 1) as
    task ``i`` completes: a tqdm bar made here (``desc``, ``unit``, ``progress``, ``leave``), or the
    caller's ``bar``. With ``serial_fallback``, a broken pool (a worker killed from outside) is
    reported with a warning and the remaining tasks run in this process; otherwise
    :class:`concurrent.futures.process.BrokenProcessPool` is raised.
    """
    from concurrent.futures.process import BrokenProcessPool

    tasks = list(tasks)
    sizes = [1] * len(tasks) if sizes is None else list(sizes)
    own_bar = bar is None
    if own_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(sizes), desc=desc, unit=unit, disable=not progress, leave=leave)
    results = []
    try:
        if workers > 1 and len(tasks) > 1:
            try:
                with _pool(min(workers, len(tasks))) as pool:
                    for res in pool.map(fn, tasks):
                        bar.update(sizes[len(results)])
                        results.append(res)
            except BrokenProcessPool as e:
                if not serial_fallback:
                    raise
                during = f" while {desc}" if desc else ""
                warnings.warn(f"worker processes failed{during} ({e}); going on in this process", stacklevel=2)
        for task, size in zip(tasks[len(results):], sizes[len(results):]):
            results.append(fn(task))
            bar.update(size)
    finally:
        if own_bar:
            bar.close()
    return results


# ----------------------------------------------------------------------------- owner tags

STALE_AFTER_S = 24 * 3600  # a temporary item whose owner cannot be checked is stale after a day


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def owner_tag() -> str:
    """This process as ``<host>-<pid>``, for the names of its temporary files and folders."""
    return f"{_host()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists (another user's), or cannot tell: keep
    try:  # a zombie (dead, not yet reaped by an init that never reaps) counts as gone
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def owner_gone(tag: str, mtime: float, *, stale_after: float = STALE_AFTER_S) -> bool:
    """Whether the process that named a temporary item ``tag`` (an :func:`owner_tag`, or a bare pid from
    older versions) is gone, so its leftovers can be removed.

    On this host: its pid no longer runs. Elsewhere (a shared file system), or when the tag names no
    pid, the owner cannot be checked: the item counts as stale once it is ``stale_after`` seconds old
    (``mtime``). A reused pid keeps an item only until then, too.
    """
    host, _, pid = tag.rpartition("-")
    if pid.isdigit() and host in ("", _host()):
        if not _pid_alive(int(pid)):
            return True
    return time.time() - mtime > stale_after
