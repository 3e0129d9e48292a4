"""What a score is made of: the acc(t) curve, its area, and :class:`TPSResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tpslab.challenge import SCRIPT_REVISIONS, BuiltOnFirstRead, frame_numbers

STEPS = 10000
#: The IoU thresholds of the grid the public script prints (human x part).
GRID_IOUS = (0.001, 0.3, 0.5, 0.9, 0.99)
#: The PSC thresholds at which the public script prints acc(t) for each grid cell.
GRID_PSC = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def curve(psc, correct):
    """The official curve and area from per-video PSC values and correctness flags.

    Returns ``(thresholds, acc, area_raw)`` with ``acc[k-1] = #(correct and psc >= k/10000) / #videos``
    and ``area_raw`` the running sum of ``0.0001 * acc`` in threshold order, as the public script adds it.
    """
    psc = np.asarray(psc, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if psc.shape != correct.shape or psc.ndim != 1:
        raise ValueError("psc and correct must be 1-d arrays of the same length")
    if len(psc) == 0:
        raise ValueError("no videos to score")
    thresholds = np.arange(1, STEPS) / STEPS  # true division, as k / steps in Python
    good = np.sort(psc[correct])
    counts = len(good) - np.searchsorted(good, thresholds, side="left")
    acc = counts / len(psc)
    area_raw = float(np.cumsum((1.0 / STEPS) * acc)[-1])  # cumsum adds strictly left to right
    return thresholds, acc, area_raw


def frame_column(keys: list):
    """The ``frame`` column of the score's tables: the frame number of each key (``img_00011.json`` -> 11),
    int64, or a nullable Int64 with <NA> for keys of any other form."""
    import pandas as pd

    numbers = frame_numbers(keys, other=-1)
    if (numbers < 0).any():
        return pd.arrays.IntegerArray(numbers, numbers < 0)
    return numbers


@dataclass
class TPSResult:
    """The score of one submission.

    ``area`` is rounded to 6 decimals like the leaderboard, ``area_raw`` is the unrounded sum.
    ``accuracy`` is plain top-1 video accuracy and ``mean_psc`` the mean of the per-video PSC.
    ``per_video`` has columns ``video, psc, correct, label, predicted`` in GT order (``psc`` and
    ``correct`` also as arrays). ``thresholds``/``acc`` are the curve (k/10000 for k = 1..9999).
    ``per_part`` (only with ``details=True``) has one row per GT part of every counted frame, see
    :func:`tpslab.metrics.tps_score`.
    """

    area: float
    area_raw: float
    accuracy: float
    mean_psc: float
    per_video: Any = BuiltOnFirstRead()  # a DataFrame, or a function making it (pandas imported then)
    thresholds: np.ndarray
    acc: np.ndarray
    human_iou: float = 0.5
    part_iou: float = 0.3
    mode: str = "list"
    per_part: Any = None
    pairing: str = "matched"
    psc: np.ndarray = field(default=None, repr=False, compare=False)
    correct: np.ndarray = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.psc is None:
            self.psc = self.per_video["psc"].to_numpy()
            self.correct = self.per_video["correct"].to_numpy()

    def acc_at(self, t: float) -> float:
        """acc(t): share of GT videos that are correct with PSC >= t (any t, like the public script)."""
        return float(np.count_nonzero((self.psc >= t) & self.correct)) / len(self.psc)

    def summary(self) -> dict:
        return {"area": self.area, "area_raw": self.area_raw, "accuracy": self.accuracy,
                "mean_psc": self.mean_psc, "videos": int(len(self.psc)),
                "human_iou": self.human_iou, "part_iou": self.part_iou, "mode": self.mode,
                "pairing": self.pairing, "reproduces": SCRIPT_REVISIONS[(self.mode, self.pairing)]}

    def __str__(self) -> str:
        return (f"TPS score {self.area:.6f} (accuracy {self.accuracy:.4f}, mean PSC {self.mean_psc:.4f}, "
                f"{len(self.psc)} videos, human IoU {self.human_iou}, part IoU {self.part_iou}, "
                f"mode {self.mode}, {self.pairing} pairing)")


__all__ = ["GRID_IOUS", "GRID_PSC", "STEPS", "TPSResult", "curve", "frame_column"]
