"""Action and part-state classification metrics, checked on hand-counted cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tpslab.metrics import ScoringError, tps_score
from tpslab.metrics.classification import action_metrics, action_metrics_from_submission, part_state_metrics


def test_action_metrics_counts_by_hand():
    y_true = ["a", "a", "a", "b", "c", "c"]
    y_pred = ["a", "b", "a", "b", "a", "c"]
    m = action_metrics(y_true, y_pred)
    assert m.top1 == 4 / 6
    # recall: a 2/3, b 1/1, c 1/2 -> mean 13/18
    assert m.mean_class_accuracy == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert m.topk is None
    assert m.confusion.loc["a", "b"] == 1 and m.confusion.loc["c", "a"] == 1 and m.confusion.to_numpy().sum() == 6
    pc = m.per_class.set_index("label")
    assert pc.loc["a", "support"] == 3 and pc.loc["a", "precision"] == 2 / 3  # predicted a 3 times, 2 right
    assert pc.loc["b", "precision"] == 1 / 2


def test_mean_class_accuracy_ignores_classes_absent_from_the_truth():
    m = action_metrics(["a", "a"], ["a", "z"])
    assert m.mean_class_accuracy == 0.5  # only class a counts; z was never true
    assert np.isnan(m.per_class.set_index("label").loc["z", "accuracy"])


def test_topk_from_scores_and_argmax_prediction():
    labels = ["a", "b", "c", "d"]
    scores = np.array([[0.15, 0.5, 0.3, 0.05],  # true a: rank 3
                       [0.7, 0.1, 0.1, 0.1],    # true a: rank 1
                       [0.4, 0.3, 0.2, 0.1]])   # true d: rank 4
    m = action_metrics(["a", "a", "d"], scores=scores, labels=labels, k=3)
    assert m.top1 == 1 / 3
    assert m.topk == 2 / 3
    as_frame = action_metrics(["a", "a", "d"], scores=pd.DataFrame(scores, columns=labels), k=3)
    assert as_frame.topk == m.topk and as_frame.top1 == m.top1


def test_topk_with_two_classes_ranks_the_scores():
    m = action_metrics(["a", "b", "b"], scores=np.array([[0.2, 0.1], [0.9, 0.3], [0.0, 1.0]]), labels=["a", "b"],
                       k=1)
    assert m.topk == 2 / 3 and m.top1 == 2 / 3


def test_action_metric_errors():
    with pytest.raises(ValueError, match="labels"):
        action_metrics(["a"], scores=np.ones((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        action_metrics(["a"], scores=np.ones((2, 2)), labels=["a", "b"])
    with pytest.raises(ValueError, match="items"):
        action_metrics(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="missing from labels"):
        action_metrics(["q"], ["a"], labels=["a"])


def test_action_metrics_from_submission_follows_gt_order():
    m = action_metrics_from_submission({"v1": "a", "v2": "b"}, {"v2": "b", "v1": "b", "extra": "a"})
    assert m.top1 == 0.5
    with pytest.raises(ScoringError, match="v2"):
        action_metrics_from_submission({"v1": "a", "v2": "b"}, {"v1": "a"})


def _box(x):
    return [x, x, x + 9, x + 9]


def test_part_state_metrics_on_matched_parts_of_a_score():
    F = "img_00001.json"
    gt = {"v": {F: {"humans": [
        {"box": _box(0), "parts": {"head": {"box": _box(0), "verb": "none"},
                                   "left_hand": {"box": _box(0), "verb": "hold"},
                                   "right_hand": {"box": _box(0), "verb": "hold"}}},
        {"box": _box(100), "parts": {"head": {"box": _box(100), "verb": "nod"}}}]}}}
    pred = {"v": {F: {"humans": [
        {"box": _box(0), "parts": {"head": {"box": [_box(0)], "verb": ["none"]},
                                   "left_hand": {"box": [_box(50), _box(0)], "verb": ["grab", "hold"]}}}]}}}
    r = tps_score({"v": "x"}, gt, {"v": "x"}, pred, details=True)
    m = part_state_metrics(r.per_part)
    # Matched and predicted: head (none -> none, right), left_hand (hold -> first proposal grab, wrong).
    # right_hand is not predicted, the second human is not matched: both left out.
    assert m.n == 2 and m.accuracy == 0.5
    pp = m.per_part.set_index("part")
    assert pp.loc["head", "accuracy"] == 1.0 and pp.loc["left_hand", "accuracy"] == 0.0
    ps = m.per_state.set_index("state")
    assert ps.loc["hold", "support"] == 1 and ps.loc["hold", "accuracy"] == 0.0
    assert ps.loc["grab", "predicted"] == 1 and np.isnan(ps.loc["grab", "accuracy"])
    assert m.confusion.loc["hold", "grab"] == 1


def test_part_state_metrics_on_a_plain_table_with_a_label_order():
    t = pd.DataFrame({"part": ["head", "hip", "hip"], "gt_state": ["none", "bend", "none"],
                      "pred_state": ["none", "none", "none"]})
    m = part_state_metrics(t, labels=["none", "bend", "stand"])
    assert m.accuracy == 2 / 3 and m.n == 3
    assert list(m.confusion.index) == ["none", "bend", "stand"]
    assert m.confusion.loc["bend", "none"] == 1
    assert "stand" not in set(m.per_state["state"])  # neither true nor predicted
    with pytest.raises(ValueError, match="columns"):
        part_state_metrics(t.drop(columns="pred_state"))
