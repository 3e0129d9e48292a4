import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test helper modules (release.py, ...)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's caches out of the user's home; share one mini dataset per session."""
    monkeypatch.setenv("TPSLAB_CACHE", str(tmp_path_factory.getbasetemp() / "tpslab-cache"))
    monkeypatch.delenv("TPSLAB_DATA", raising=False)
    yield
