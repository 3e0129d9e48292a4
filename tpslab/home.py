"""Where data and caches live.

Resolution order for the dataset root, as scikit-learn's ``get_data_home``: an explicit argument,
then the ``TPSLAB_DATA`` environment variable, then the embedded mini dataset, generated
deterministically on first use into the cache folder. Nothing here depends on the working directory.

This module sits at the bottom of the stack and imports nothing of tpslab: the mini dataset (a layer
below, with its renderer and video writer) is wired in by the package's top (``tpslab/__init__.py``)
through :func:`provide_mini`, so that loading tables never imports the renderer or PyAV.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

DATA_ENV = "TPSLAB_DATA"
CACHE_ENV = "TPSLAB_CACHE"

_mini_provider: Callable[..., Path] | None = None


def provide_mini(provider: Callable[..., Path]) -> None:
    """Set the function that returns the mini dataset's root (``provider(progress=bool) -> Path``)."""
    global _mini_provider
    _mini_provider = provider


def cache_home() -> Path:
    """The folder for tpslab's caches: ``TPSLAB_CACHE``, else ``$XDG_CACHE_HOME/tpslab``, else ``~/.cache/tpslab``."""
    if os.environ.get(CACHE_ENV):
        chosen = Path(os.environ[CACHE_ENV]).expanduser().resolve()
        if chosen.exists() and not chosen.is_dir():  # made when needed; a file there is the user's mistake
            raise NotADirectoryError(errno.ENOTDIR, f"exists and is not a folder (from ${CACHE_ENV})", str(chosen))
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return (Path(base).expanduser() / "tpslab").resolve()


def resolve_root(root=None, *, progress: bool = True) -> Path:
    """Return the dataset root: ``root`` > ``TPSLAB_DATA`` > the mini dataset (generated if missing)."""
    if root is not None:
        chosen = Path(root).expanduser()
    elif os.environ.get(DATA_ENV):
        chosen = Path(os.environ[DATA_ENV]).expanduser()
    else:
        if _mini_provider is None:
            raise RuntimeError("no mini dataset provider: import tpslab (its __init__ provides it)")
        return _mini_provider(progress=progress)
    if not chosen.is_dir():
        hint = f" (from ${DATA_ENV})" if root is None else ""
        raise FileNotFoundError(f"Kinetics-TPS root {chosen}{hint} is not a folder")
    return chosen.resolve()
