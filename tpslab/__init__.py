"""tpslab: Kinetics-TPS loaders, frame-exact video access, the official score and compositional models.

The public face is small and cheap to import: ``load_dataset`` and ``AnnotationError``.
Everything heavier (video decoding, torch, plotting) lives in submodules imported on demand.
"""

__version__ = "0.1.0"

from tpslab import home as _home  # noqa: E402
from tpslab.errors import AnnotationError  # noqa: E402


def _ensure_mini(progress: bool = True):
    # The mini dataset is a layer below home.py; the package's top joins them (no import cycle).
    from tpslab.synthetic import ensure_mini

    return ensure_mini(progress=progress)


_home.provide_mini(_ensure_mini)


def load_dataset(root=None, **kwargs):
    """Load Kinetics-TPS (or the embedded mini dataset) into tidy tables.

    See :func:`tpslab.dataset.load_dataset` for the arguments.
    """
    from tpslab.dataset import load_dataset as _load

    return _load(root, **kwargs)


__all__ = ["AnnotationError", "load_dataset", "__version__"]
