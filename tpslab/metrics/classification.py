"""Classification metrics for actions and part states, through scikit-learn.

- :func:`action_metrics`: top-1, top-k when scores are given, mean class accuracy (mean per-class recall over
  the classes present in the ground truth), per-class table and confusion matrix.
- :func:`action_metrics_from_submission`: the same from ``gt_vid_result``/``pred_vid_result`` dicts or paths.
- :func:`part_state_metrics`: part-state accuracy on matched parts (the ``per_part`` table of
  ``tps_score(..., details=True)``, or any table with ``part, gt_state, pred_state``), per part, per state,
  and the state confusion matrix.

Confusion matrices are DataFrames: rows are true labels, columns predicted labels, in ``labels`` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd


@dataclass
class ActionMetrics:
    """``top1``, ``topk`` (None without scores), ``k``, ``mean_class_accuracy``; ``per_class`` has
    ``label, support, accuracy`` (recall), ``precision``; ``confusion`` is true x predicted counts."""

    top1: float
    topk: float | None
    k: int
    mean_class_accuracy: float
    per_class: pd.DataFrame
    confusion: pd.DataFrame

    def summary(self) -> dict:
        out = {"top1": self.top1, "mean_class_accuracy": self.mean_class_accuracy}
        if self.topk is not None:
            out[f"top{self.k}"] = self.topk
        return out


@dataclass
class PartStateMetrics:
    """Accuracy of predicted part states on ``n`` matched parts; ``per_part`` (``part, n, accuracy``),
    ``per_state`` (``state, support, accuracy`` (recall), ``precision``, ``predicted``) and the confusion."""

    accuracy: float
    n: int
    per_part: pd.DataFrame
    per_state: pd.DataFrame
    confusion: pd.DataFrame

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "n": self.n,
                "mean_state_accuracy": float(self.per_state["accuracy"].mean()) if len(self.per_state) else
                float("nan")}


def _as_labels(values, name: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=object)
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in arr):
        raise ValueError(f"{name} holds missing values")
    return arr


def _per_label_table(y_true, y_pred, labels, name):
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    diag = np.diag(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, diag / np.maximum(support, 1), np.nan)
        precision = np.where(predicted > 0, diag / np.maximum(predicted, 1), np.nan)
    table = pd.DataFrame({name: labels, "support": support, "accuracy": recall, "precision": precision,
                          "predicted": predicted})
    confusion = pd.DataFrame(cm, index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="predicted"))
    return table, confusion


def _score_matrix(scores, labels, n: int):
    """``(scores, labels)``: the class scores as an (n, C) float array whose columns follow ``labels``."""
    if isinstance(scores, pd.DataFrame):
        if labels is None:
            labels = list(scores.columns)
        scores = scores[list(labels)].to_numpy(dtype=float)
    elif scores is not None:
        scores = np.asarray(scores, dtype=float)
        if labels is None:
            raise ValueError("scores given as an array need `labels` (the class of each column)")
    if scores is not None and scores.shape != (n, len(labels)):
        raise ValueError(f"scores has shape {scores.shape}, expected ({n}, {len(labels)})")
    return scores, labels


def action_metrics(y_true: Sequence, y_pred: Sequence | None = None, scores=None, labels: Sequence | None = None,
                   k: int = 5) -> ActionMetrics:
    """Video classification metrics.

    ``y_true``: true class names. ``y_pred``: predicted names; when omitted, the argmax of ``scores``.
    ``scores``: (n, C) class scores whose columns follow ``labels``, or a DataFrame whose columns are the
    class names. ``labels``: the class order of the tables (default: the scores' columns, else the
    sorted union of true and predicted names). Top-k needs scores and is None without them.
    """
    from sklearn.metrics import accuracy_score, top_k_accuracy_score

    y_true = _as_labels(y_true, "y_true")
    scores, labels = _score_matrix(scores, labels, len(y_true))
    if y_pred is None and scores is not None:
        y_pred = np.asarray(labels, dtype=object)[scores.argmax(axis=1)]
    if y_pred is None:
        raise ValueError("give y_pred or scores")
    y_pred = _as_labels(y_pred, "y_pred")
    if len(y_pred) != len(y_true):
        raise ValueError(f"y_true has {len(y_true)} items, y_pred {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("no samples")
    if labels is None:
        labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()), key=str)
    labels = list(labels)
    unknown = sorted(set(y_true.tolist()) - set(labels), key=str)
    if unknown:
        raise ValueError(f"true classes missing from labels: {unknown[:10]}")
    topk = None
    if scores is not None:
        if len(labels) > 2:
            topk = float(top_k_accuracy_score(y_true, scores, k=min(k, len(labels)), labels=labels))
        else:  # scikit-learn reads two-class scores as binary decisions; rank them directly
            rank = (-scores).argsort(axis=1, kind="stable")[:, :k]
            truth = np.array([labels.index(t) for t in y_true])
            topk = float((rank == truth[:, None]).any(axis=1).mean())
    per_class, confusion = _per_label_table(y_true, y_pred, labels, "label")
    present = per_class["support"] > 0
    return ActionMetrics(top1=float(accuracy_score(y_true, y_pred)), topk=topk, k=k,
                         mean_class_accuracy=float(per_class.loc[present, "accuracy"].mean()),
                         per_class=per_class, confusion=confusion)


def action_metrics_from_submission(gt_vid, pred_vid, labels: Sequence | None = None) -> ActionMetrics:
    """:func:`action_metrics` of ``pred_vid_result`` against ``gt_vid_result`` (dicts or paths), GT order."""
    from tpslab.challenge import load_json
    from tpslab.metrics.official import video_labels

    truth, predicted = video_labels(load_json(gt_vid, "gt_vid_result"), load_json(pred_vid, "pred_vid_result"))
    return action_metrics(truth, predicted, labels=labels)


def part_state_metrics(table: pd.DataFrame, labels: Sequence | None = None) -> PartStateMetrics:
    """Part-state accuracy on matched parts.

    ``table`` is the ``per_part`` table of ``tps_score(..., details=True)`` (rows whose human was matched and
    whose part was predicted are used; ``pred_state`` is the first proposal's verb) or any DataFrame with
    columns ``part, gt_state, pred_state`` (all rows used, e.g. a classifier run on ground-truth boxes).
    ``labels`` orders the states of the confusion matrix (default: sorted union of the observed states).
    """
    from sklearn.metrics import accuracy_score

    missing = {"part", "gt_state", "pred_state"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    rows = table
    if "human_matched" in table.columns and "predicted" in table.columns:
        rows = table[table["human_matched"].astype(bool) & table["predicted"].astype(bool)]
    rows = rows[rows["pred_state"].notna()]
    if len(rows) == 0:
        raise ValueError("no matched parts with a predicted state")
    y_true = _as_labels(rows["gt_state"], "gt_state")
    y_pred = _as_labels(rows["pred_state"], "pred_state")
    if labels is None:
        labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()), key=str)
    labels = list(labels)
    right = y_true == y_pred
    per_part = (pd.DataFrame({"part": rows["part"].astype(object).to_numpy(), "right": right})
                .groupby("part", sort=True)["right"].agg(n="size", accuracy="mean").reset_index())
    per_state, confusion = _per_label_table(y_true, y_pred, labels, "state")
    per_state = per_state[(per_state["support"] > 0) | (per_state["predicted"] > 0)].reset_index(drop=True)
    return PartStateMetrics(accuracy=float(accuracy_score(y_true, y_pred)), n=int(len(rows)), per_part=per_part,
                            per_state=per_state, confusion=confusion)


__all__ = ["ActionMetrics", "PartStateMetrics", "action_metrics", "action_metrics_from_submission",
                "part_state_metrics"]
