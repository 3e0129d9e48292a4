"""Beyond the leaderboard number: how sure it is, where its points are lost, which classes and parts cost them.

- :func:`bootstrap_area`: a seeded bootstrap confidence interval of the area, resampling videos.
- :func:`oracle_study`: the score with predicted human boxes, part boxes, part states and actions replaced by
  the ground truth, alone and in every combination, as a table of areas and gains.
- :func:`per_class_breakdown`: per action class, accuracy, mean PSC, the class's own area and its share of
  the overall area (the per-video contributions add up to the area).
- :func:`per_part_breakdown`: per body part, how often each step succeeds (human matched, part predicted,
  box, state) and why the points of the missed parts were lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from tpslab.metrics.official import ORACLES, STEPS, TPSResult, TPSScorer, curve


def _per_video(result) -> pd.DataFrame:
    per_video = result.per_video if isinstance(result, TPSResult) else result
    if not {"psc", "correct"} <= set(per_video.columns):
        raise ValueError("expected a TPSResult or a per-video table with 'psc' and 'correct'")
    if len(per_video) == 0:
        raise ValueError("no videos")
    return per_video


def _passed_thresholds(psc: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Per video, how many of the thresholds k/10000 (k = 1..9999) it counts at: correct and psc >= t."""
    thresholds = np.arange(1, STEPS) / STEPS
    return np.where(correct, np.searchsorted(thresholds, psc, side="right"), 0)


@dataclass
class BootstrapCI:
    """The area with a bootstrap interval: ``low``/``high`` at ``level``, ``std`` and all ``samples``."""

    area: float
    low: float
    high: float
    level: float
    std: float
    samples: np.ndarray

    def __str__(self) -> str:
        return f"area {self.area:.4f}, {100 * self.level:g}% CI [{self.low:.4f}, {self.high:.4f}]"


def bootstrap_area(result, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> BootstrapCI:
    """Percentile bootstrap interval of the area, resampling videos with replacement (seeded).

    ``result`` is a :class:`TPSResult` or its ``per_video`` table. Each replicate's area is
    ``0.0001 * sum(thresholds passed) / #videos``, the official area up to floating-point rounding.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    per_video = _per_video(result)
    psc = per_video["psc"].to_numpy(dtype=float)
    correct = per_video["correct"].to_numpy(dtype=bool)
    n = len(psc)
    passed = _passed_thresholds(psc, correct).astype(float)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    samples = counts @ passed * (1.0 / STEPS) / n
    area = curve(psc, correct)[2]
    alpha = (1 - level) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return BootstrapCI(area=area, low=float(low), high=float(high), level=level, std=float(samples.std(ddof=1)),
                       samples=samples)


def oracle_study(gt_vid, gt_part, pred_vid, pred_part, human_iou: float = 0.5, part_iou: float = 0.3,
                 mode: str = "list", oracles=ORACLES, *, pairing: str = "matched") -> pd.DataFrame:
    """The score with parts of the prediction replaced by the ground truth, alone and in combination.

    One row per subset of ``oracles`` (default all four: ``humans, part_boxes, part_states, actions``; see
    :func:`tpslab.metrics.tps_score` for what each replaces), from none to all, with one boolean column
    per oracle and ``area, accuracy, mean_psc, gain`` (area minus the unchanged submission's area).
    What is still lost with every oracle on is coverage: people, parts and frames never predicted, and
    the 1/N cost of extra proposals. ``pairing`` is passed to the scorer (default ``"matched"``, the
    public scripts' current rule); the ``humans`` oracle always scores each GT human against its matched
    prediction.
    """
    oracles = tuple(oracles)
    unknown = set(oracles) - set(ORACLES)
    if unknown:
        raise ValueError(f"unknown oracle(s) {sorted(unknown)}; known: {ORACLES}")
    scorer = TPSScorer(gt_vid, gt_part, pred_vid, pred_part, mode=mode, pairing=pairing)
    scorer.prepare(full=True)  # every overlapping pair, all boxes: each row below only selects from it
    rows = []
    for k in range(len(oracles) + 1):
        for subset in combinations(oracles, k):
            r = scorer.score(human_iou, part_iou, oracle=subset)
            row = {name: name in subset for name in oracles}
            row.update(area=r.area, accuracy=r.accuracy, mean_psc=r.mean_psc)
            rows.append(row)
    table = pd.DataFrame(rows)
    table["gain"] = table["area"] - table["area"].iloc[0]
    return table


def per_class_breakdown(result) -> pd.DataFrame:
    """Per action class (GT label): ``videos, accuracy, mean_psc, area`` (the area over the class's videos
    alone), ``contribution`` (its videos' share of the overall area: the column sums to the area) and
    ``lost`` (what a perfect score on those videos would add), sorted by ``lost``."""
    per_video = _per_video(result)
    if "label" not in per_video.columns:
        raise ValueError("the per-video table needs a 'label' column")
    psc = per_video["psc"].to_numpy(dtype=float)
    correct = per_video["correct"].to_numpy(dtype=bool)
    n = len(per_video)
    contribution = _passed_thresholds(psc, correct) * (1.0 / STEPS) / n
    rows = []
    labels = per_video["label"].astype(object).to_numpy()
    for label in pd.unique(labels):
        m = labels == label
        rows.append({"label": label, "videos": int(m.sum()), "accuracy": float(correct[m].mean()),
                     "mean_psc": float(psc[m].mean()), "area": curve(psc[m], correct[m])[2],
                     "contribution": float(contribution[m].sum()),
                     "lost": float(m.sum() * (STEPS - 1) / STEPS / n - contribution[m].sum())})
    return pd.DataFrame(rows).sort_values("lost", ascending=False, kind="stable").reset_index(drop=True)


#: Why a GT part did not score 1, in the order the scorer's conditions fail.
LOSS_REASONS = ("human", "missing_part", "box_and_state", "box", "state", "split", "proposals")


def _loss_reason(t: pd.DataFrame) -> pd.Series:
    reason = np.select(
        [~t["human_matched"], ~t["predicted"], t["correct"] & (t["n_proposals"] > 1), t["correct"],
         ~t["box_ok"] & ~t["state_ok"], ~t["box_ok"], ~t["state_ok"]],
        ["human", "missing_part", "proposals", "", "box_and_state", "box", "state"],
        default="split")  # a proposal with the right box and another with the right state
    return pd.Series(reason, index=t.index)


def per_part_breakdown(result) -> pd.DataFrame:
    """Per body part, over the GT parts of the counted frames (needs ``tps_score(..., details=True)``).

    Columns: ``n``, ``mean_score``, the success rates ``human_matched, predicted, box_ok, state_ok,
    correct``, and per reason in :data:`LOSS_REASONS` the points lost (``lost_<reason>``, in parts: a part
    lost to ``proposals`` loses ``1 - 1/N``): ``human`` (its person was not matched), ``missing_part``
    (the matched person has no such part), ``box_and_state``, ``box``, ``state`` (no proposal right on
    that count), ``split`` (right box and right state only on different proposals).
    """
    t = result.per_part if isinstance(result, TPSResult) else result
    if t is None:
        raise ValueError("per-part details are missing: score with tps_score(..., details=True)")
    t = t.copy()
    t["reason"] = _loss_reason(t)
    t["lost"] = 1.0 - t["score"]
    grouped = t.groupby("part", sort=True)
    table = grouped.agg(n=("score", "size"), mean_score=("score", "mean"), human_matched=("human_matched", "mean"),
                        predicted=("predicted", "mean"), box_ok=("box_ok", "mean"), state_ok=("state_ok", "mean"),
                        correct=("correct", "mean"))
    lost = t[t["reason"] != ""].pivot_table(index="part", columns="reason", values="lost", aggfunc="sum",
                                            fill_value=0.0)
    for reason in LOSS_REASONS:
        table[f"lost_{reason}"] = lost[reason] if reason in lost.columns else 0.0
    return table.fillna({f"lost_{r}": 0.0 for r in LOSS_REASONS}).reset_index()


__all__ = ["BootstrapCI", "LOSS_REASONS", "bootstrap_area", "oracle_study", "per_class_breakdown",
           "per_part_breakdown"]
