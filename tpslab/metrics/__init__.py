"""Scores for Kinetics-TPS predictions: the official challenge score, classification metrics, analysis.

Plain NumPy/SciPy/scikit-learn on the challenge's JSON structures; nothing here imports torch or models.
"""

from tpslab.metrics.official import (GRID_IOUS, ScoringError, TPSResult, assign_humans, curve, tps_grid,
                                     tps_score)

__all__ = ["GRID_IOUS", "ScoringError", "TPSResult", "assign_humans", "curve", "tps_grid", "tps_score"]
