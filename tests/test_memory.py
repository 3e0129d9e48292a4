"""tpslab.memory: the shared worker pool (order, progress, fallback, workers armed to die with their
parent) and the owner tags of temporary files. Killing real commands is in test_processes.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from tpslab.memory import gc_paused, owner_gone, owner_tag, worker_map

MAIN_PID = os.getpid()


class Bar:
    def __init__(self):
        self.steps = []

    def update(self, n=1):
        self.steps.append(n)


def square(x):
    return x * x


def where(_):
    return os.getpid()


def death_signal(_):
    import ctypes

    value = ctypes.c_int()
    ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
    return value.value


def dies_in_a_worker(x):
    if x == 3 and os.getpid() != MAIN_PID:
        os._exit(3)
    return x


def test_worker_map_keeps_order_and_advances_the_bar():
    for workers in (1, 2, 3):
        bar = Bar()
        assert worker_map(square, range(7), workers, sizes=[1, 2, 3, 4, 5, 6, 7], bar=bar) == \
            [x * x for x in range(7)]
        assert bar.steps == [1, 2, 3, 4, 5, 6, 7]
    assert worker_map(square, [], 2, progress=False) == []
    assert set(worker_map(where, range(3), 1, progress=False)) == {os.getpid()}  # serial: this process
    assert os.getpid() not in worker_map(where, range(4), 2, progress=False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_are_armed_to_die_with_their_parent():
    assert set(worker_map(death_signal, range(4), 2, progress=False)) == {int(signal.SIGKILL)}


def test_a_broken_pool_raises_or_falls_back_to_this_process():
    with pytest.raises(BrokenProcessPool):
        worker_map(dies_in_a_worker, range(6), 2, progress=False)
    with pytest.warns(UserWarning, match="worker processes failed while testing"):
        assert worker_map(dies_in_a_worker, range(6), 2, desc="testing", progress=False,
                          serial_fallback=True) == list(range(6))


def test_owner_tags_tell_live_owners_from_gone_ones():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    host = owner_tag().rpartition("-")[0]
    now, day_old = time.time(), time.time() - 2 * 86400
    assert owner_tag() == f"{host}-{os.getpid()}" and "-" not in host
    assert not owner_gone(owner_tag(), now)
    assert owner_gone(f"{host}-{dead_pid}", now) and owner_gone(str(dead_pid), now)  # older names: bare pid
    assert not owner_gone(f"other_host-{dead_pid}", now)  # cannot be checked from here ...
    assert owner_gone(f"other_host-{dead_pid}", day_old)  # ... until it is a day old
    assert not owner_gone("", now) and owner_gone("", day_old)


def test_gc_paused_restores_the_collector():
    import gc

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def _pid_and(value):
    return os.getpid(), value


def _fail_in_worker(parent):
    if os.getpid() != parent:
        raise ValueError("only in the worker")
    return "here"


def _die_in_worker(parent):
    if os.getpid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return "here"


def test_in_background_runs_in_a_worker_or_here(monkeypatch):
    from tpslab import memory
    from tpslab.memory import in_background

    monkeypatch.setattr(memory, "usable_cpus", lambda: 2)
    pid, value = in_background(_pid_and, [1, 2])()
    assert pid != os.getpid() and value == [1, 2]
    # A worker that fails or dies: the work is done again here (an error would then be raised here).
    assert in_background(_fail_in_worker, os.getpid())() == "here"
    assert in_background(_die_in_worker, os.getpid())() == "here"
    monkeypatch.setattr(memory, "usable_cpus", lambda: 1)
    assert in_background(_pid_and, "x")() == (os.getpid(), "x")


def test_in_thread_returns_the_result_or_raises_the_error_in_the_caller():
    import threading

    from tpslab.memory import in_thread

    assert in_thread(lambda a, b: (a + b, threading.current_thread().name), 1, 2)() == (3, "tpslab-in-thread")
    failing = in_thread(int, "x")
    with pytest.raises(ValueError, match="invalid literal"):
        failing()
