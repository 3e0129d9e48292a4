"""Where data and caches live.

Resolution order for the dataset root, as scikit-learn's ``get_data_home``: an explicit argument,
then the ``TPSLAB_DATA`` environment variable, then the embedded mini dataset, generated
deterministically on first use into the cache folder. Nothing here depends on the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "TPSLAB_DATA"
CACHE_ENV = "TPSLAB_CACHE"


def cache_home() -> Path:
    """The folder for tpslab's caches: ``TPSLAB_CACHE``, else ``$XDG_CACHE_HOME/tpslab``, else ``~/.cache/tpslab``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return (Path(base).expanduser() / "tpslab").resolve()


def resolve_root(root=None, *, progress: bool = True) -> Path:
    """Return the dataset root: ``root`` > ``TPSLAB_DATA`` > the mini dataset (generated if missing)."""
    if root is not None:
        chosen = Path(root).expanduser()
    elif os.environ.get(DATA_ENV):
        chosen = Path(os.environ[DATA_ENV]).expanduser()
    else:
        from tpslab.synthetic import ensure_mini

        return ensure_mini(progress=progress)
    if not chosen.is_dir():
        hint = f" (from ${DATA_ENV})" if root is None else ""
        raise FileNotFoundError(f"Kinetics-TPS root {chosen}{hint} is not a folder")
    return chosen.resolve()
