import os
import sys
from pathlib import Path

# Two shared cores: one BLAS/OpenMP thread per process (set before numpy or torch load their pools).
# Oversubscribed thread pools made single tests 20x slower on a busy machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test helper modules (release.py, ...)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's caches out of the user's home; share one mini dataset per session."""
    monkeypatch.setenv("TPSLAB_CACHE", str(tmp_path_factory.getbasetemp() / "tpslab-cache"))
    monkeypatch.delenv("TPSLAB_DATA", raising=False)
    yield


def pytest_configure(config):
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # pools a plugin loaded before this file ran
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
