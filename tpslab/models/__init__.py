"""Models: from part states to actions, from pixels to part states, and end to end to a scored submission.

- :mod:`tpslab.models.baselines`: :class:`MajorityBaseline` (per action and part, the most frequent state);
- :mod:`tpslab.models.compositional`: :class:`CompositionalClassifier` (scikit-learn on part-state bags);
- :mod:`tpslab.models.temporal`: :class:`TemporalClassifier` (a GRU or transformer over per-frame part states);
- :mod:`tpslab.models.recognizer`: :class:`PartStateRecognizer` (a small CNN on part crops from pixels);
- :mod:`tpslab.pipeline`: the end-to-end predictor, its prediction files and score, the part ablation.

The end-to-end predictor that joins them to a scored submission is the application layer above:
:mod:`tpslab.pipeline`. Names are imported on first use, so ``import tpslab.models`` (and the
scikit-learn modules) never import torch; the recogniser and the temporal model do.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "MajorityBaseline": "baselines",
    "CompositionalClassifier": "compositional",
    "FeatureConfig": "compositional",
    "video_features": "compositional",
    "TemporalClassifier": "temporal",
    "PartStateRecognizer": "recognizer",
    "crop_parts": "recognizer",
    "smooth_probs": "recognizer",
    "labels_for": "_common",
    "video_labels": "_common",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"tpslab.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tpslab.models' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
