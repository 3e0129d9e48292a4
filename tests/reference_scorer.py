"""A plain, per-box Python implementation of the Kinetics-TPS score: the reference for the tests and the benchmark.

Written straight from the rules in ``docs/scoring.md`` ("The rules, as the public scorer behaves") and the
exactness details of the public scorer, one box at a time, with no vectorisation, so that the fast scorer in
``tpslab.metrics.official`` can be cross-checked against it. It is deliberately slow and obvious:

- box IoU on inclusive pixels (width ``x2 - x1 + 1``); boxes that do not overlap get ``-1``;
- human IoUs in float32 arithmetic (boxes cast to float32, every intermediate float32: the public
  scorer's NumPy scalar arithmetic under NumPy 2), part IoUs in float64 (plain Python numbers);
- per GT frame, a Hungarian assignment (``scipy.optimize.linear_sum_assignment``) on ``1 - IoU`` of the
  GT x predicted float32 IoU matrix; a non-square matrix is padded with float64 zeros to a square
  (so its cost is float64), a square one stays float32; a pair counts when IoU > human threshold,
  compared in the matrix's dtype (float32 threshold for a square matrix, float64 otherwise);
- each part of a matched GT human scores ``1/N`` (N = number of proposals) when some proposal has
  IoU >= part threshold and the same verb, else 0; sums in file order; frame and video means;
- acc(t) over thresholds k/10000 for k = 1..9999, area = running sum of ``0.0001 * acc``.

Each matched GT human is scored against the prediction it was matched to (the public scripts' current
revisions). ``legacy_pairing=True`` reproduces the 2021 script before commit 4cd5815 (2021-06-13), where the
i-th valid match (in GT order) is scored against the i-th predicted human of the frame instead.
"""

from __future__ import annotations

import bisect

import numpy as np
from scipy.optimize import linear_sum_assignment


def part_iou(a, b):
    """IoU of two boxes in Python (float64) arithmetic, inclusive pixels, -1 when disjoint."""
    xa, ya = max(a[0], b[0]), max(a[1], b[1])
    xb, yb = min(a[2], b[2]), min(a[3], b[3])
    w, h = xb - xa + 1, yb - ya + 1
    if w <= 0 or h <= 0:
        return -1.0
    inter = w * h
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / float(area_a + area_b - inter)


def human_iou(a, b):
    """The same IoU with every value and intermediate in float32."""
    a = [np.float32(v) for v in a]
    b = [np.float32(v) for v in b]
    one = np.float32(1)
    xa, ya = max(a[0], b[0]), max(a[1], b[1])
    xb, yb = min(a[2], b[2]), min(a[3], b[3])
    w, h = xb - xa + one, yb - ya + one
    if w <= 0 or h <= 0:
        return np.float32(-1.0)
    inter = w * h
    area_a = (a[2] - a[0] + one) * (a[3] - a[1] + one)
    area_b = (b[2] - b[0] + one) * (b[3] - b[1] + one)
    return np.float32(inter / (area_a + area_b - inter))


def match_frame(gt_boxes, pred_boxes, threshold):
    """{gt index: (pred index, iou)} for the pairs of the Hungarian assignment with IoU above the threshold."""
    n_gt, n_pred = len(gt_boxes), len(pred_boxes)
    iou = np.zeros((n_gt, n_pred), dtype=np.float32)
    for i in range(n_gt):
        for j in range(n_pred):
            iou[i, j] = human_iou(gt_boxes[i], pred_boxes[j])
    n = max(n_gt, n_pred)
    if n_gt != n_pred:
        padded = np.zeros((n, n), dtype=np.float64)
        padded[:n_gt, :n_pred] = iou
        iou = padded
    rows, cols = linear_sum_assignment(1 - iou)
    # The threshold takes the matrix's precision: float32 for a square matrix, float64 for a padded one.
    thr = iou.dtype.type(threshold)
    return {int(i): (int(j), iou[i, j]) for i, j in zip(rows, cols)
            if i < n_gt and j < n_pred and iou[i, j] > thr}


def _parts(human):
    """A human's parts as {name: part}: the evaluation form (a dict) or the raw form (a list with names)."""
    parts = human.get("parts", {})
    if isinstance(parts, list):
        return {p["name"]: p for p in parts}
    return parts


def human_score(gt_human, pred_human, part_threshold, mode):
    """Sum, over the GT human's parts in order, of the part scores against one predicted human."""
    pred_parts = _parts(pred_human)
    total = 0
    for name, gt_part in _parts(gt_human).items():
        score = 0
        if name in pred_parts:
            boxes, verbs = pred_parts[name]["box"], pred_parts[name]["verb"]
            if mode == "single":
                boxes, verbs = [boxes], [verbs]
            assert len(verbs) <= 5 and len(boxes) == len(verbs)
            correct = 0
            for box, verb in zip(boxes, verbs):
                if part_iou(gt_part["box"], box) >= part_threshold and gt_part["verb"] == verb:
                    correct = 1
                    break
            score = 1.0 * correct / len(verbs) if verbs else 0
        total += score
    return total


def video_psc(gt_frames, pred_frames, human_threshold, part_threshold, mode, legacy_pairing):
    """Mean frame PSC of one video; ``pred_frames`` is a callable returning the video's predicted frames
    (called only when a frame needs them, as the public scorer looks the video up only then)."""
    counted = len(gt_frames)
    total = 0
    for name, gt_frame in gt_frames.items():
        gt_humans = gt_frame["humans"]
        if not gt_humans:
            counted -= 1
            continue
        if name not in pred_frames():
            continue
        pred_humans = pred_frames()[name]["humans"]
        assert len(pred_humans) <= 10
        matches = match_frame([h["box"] for h in gt_humans], [h["box"] for h in pred_humans], human_threshold)
        frame_sum, frame_parts = 0, 0
        for i, gt_human in enumerate(gt_humans):
            frame_parts += len(_parts(gt_human))
            human_sum = 0
            if i in matches:
                j = list(matches).index(i) if legacy_pairing else matches[i][0]
                human_sum = human_score(gt_human, pred_humans[j], part_threshold, mode)
            frame_sum += human_sum
        if frame_parts == 0:
            counted -= 1
        else:
            total += 1.0 * frame_sum / frame_parts
    return 1.0 if counted == 0 else 1.0 * total / counted


def score(gt_vid, gt_part, pred_vid, pred_part, human_iou=0.5, part_iou=0.3, mode="list",
          legacy_pairing=False):
    """{"per_video": [(video, psc, correct)], "area": float, "acc": [acc(k/10000) for k in 1..9999]}."""
    rows = []
    for video, label in gt_vid.items():
        correct = 1 if label == pred_vid[video] else 0
        psc = video_psc(gt_part[video], lambda: pred_part[video], human_iou, part_iou, mode, legacy_pairing)
        rows.append((video, psc, correct))
    accs, area = [], 0
    # the correct videos' PSC, sorted: those at or above t are the ones after the first >= t
    correct_psc = sorted(p for _, p, c in rows if c == 1)
    for k in range(1, 10000):
        t = k / 10000
        acc = (len(correct_psc) - bisect.bisect_left(correct_psc, t)) / len(rows)
        accs.append(acc)
        area += 1.0 / 10000 * acc
    return {"per_video": rows, "area": area, "acc": accs}
