"""Scores for Kinetics-TPS predictions: the official challenge score, classification metrics, analysis.

Plain NumPy/SciPy/scikit-learn on the challenge's JSON structures; nothing here imports torch or models.
``official`` holds the challenge score, ``classification`` the action and part-state metrics,
``analysis`` the bootstrap interval, the oracle-substitution study and the breakdowns.
"""

from tpslab.metrics.classification import (ActionMetrics, PartStateMetrics, action_metrics,
                                           action_metrics_from_submission, part_state_metrics)
from tpslab.metrics.official import (GRID_IOUS, ORACLES, PAIRINGS, ScoringError, TPSResult, TPSScorer, assign_humans,
                                     curve, tps_grid, tps_score)

__all__ = ["GRID_IOUS", "ORACLES", "PAIRINGS", "ActionMetrics", "PartStateMetrics", "ScoringError", "TPSResult", "TPSScorer",
           "action_metrics", "action_metrics_from_submission", "assign_humans", "curve", "part_state_metrics",
           "tps_grid", "tps_score"]
