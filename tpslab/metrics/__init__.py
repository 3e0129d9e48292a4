"""Scores for Kinetics-TPS predictions: the official challenge score, classification metrics, analysis.

Plain NumPy/SciPy/scikit-learn on the challenge's JSON structures; nothing here imports torch or models.
``official`` holds the challenge score (with ``kernels``, ``alignment`` and ``results``), ``classification``
the action and part-state metrics, ``analysis`` the bootstrap interval, the oracle-substitution study and
the breakdowns. Names are imported on first use, so that scoring alone never imports pandas or
scikit-learn.
"""

from importlib import import_module

_HOMES = {
    "tpslab.metrics.classification": ("ActionMetrics", "PartStateMetrics", "action_metrics",
                                      "action_metrics_from_submission", "part_state_metrics"),
    "tpslab.metrics.official": ("GRID_IOUS", "ORACLES", "PAIRINGS", "ScoringError", "TPSResult", "TPSScorer",
                                "assign_humans", "curve", "tps_grid", "tps_score"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
_SUBMODULES = ("alignment", "analysis", "classification", "kernels", "official", "results")

__all__ = sorted(_HOME_OF)


def __getattr__(name):
    if name in _HOME_OF:
        value = getattr(import_module(_HOME_OF[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
