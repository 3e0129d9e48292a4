"""Generated ground truth and predictions in the challenge's JSON structures, for the scorer tests and benchmark.

``random_case`` makes small adversarial cases (boxes on a coarse integer grid so that IoUs land exactly
on thresholds, duplicated predicted humans for ties, disjoint boxes, empty frames, part-less humans,
frames missing from the prediction, extra and unknown parts, several proposals, int and float boxes).
``realistic_case`` makes a test-set-sized submission: a noisy copy of the ground truth.
"""

from __future__ import annotations

import numpy as np

from tpslab.challenge import frame_key

PARTS = ("head", "hip", "left_arm", "right_arm", "left_hand", "right_hand", "left_leg", "right_leg",
         "left_foot", "right_foot")
VERBS = ("none", "bend", "unbend", "hold", "step", "lift")
LABELS = ("capoeira", "lunge", "push_up")


def _grid_box(rng, floats: bool):
    x1, y1 = rng.integers(0, 10, size=2)
    w, h = rng.integers(0, 8, size=2)
    box = [int(x1), int(y1), int(x1 + w), int(y1 + h)]
    if floats:
        kind = rng.integers(3)
        if kind == 0:
            box = [v + 0.5 * int(rng.integers(2)) for v in box]
        elif kind == 1:
            box = [float(v) + float(rng.normal(0, 0.3)) for v in box]
        else:
            box = [float(v) for v in box]
    return box


def _jitter(rng, box, floats):
    if rng.random() < 0.5:
        return list(box)
    d = rng.integers(-2, 3, size=4)
    out = [b + int(x) for b, x in zip(box, d)]
    if floats and rng.random() < 0.5:
        out = [v + float(rng.normal(0, 0.4)) for v in out]
    return out


def random_case(rng: np.random.Generator, n_videos: int = 3, mode: str = "list", floats: bool | None = None,
                max_frames: int = 4, max_parts: int = 5):
    """A small random (gt_vid, gt_part, pred_vid, pred_part) full of edge cases.

    ``max_frames`` and ``max_parts`` above 8 make sums long enough for NumPy's pairwise summation
    to differ from the scorer's left-to-right order."""
    if floats is None:
        floats = bool(rng.random() < 0.5)
    gt_vid, gt_part, pred_vid, pred_part = {}, {}, {}, {}
    for v in range(n_videos):
        video = f"vid{v:03d}"
        label = LABELS[rng.integers(len(LABELS))]
        gt_vid[video] = label
        pred_vid[video] = label if rng.random() < 0.7 else LABELS[rng.integers(len(LABELS))]
        gframes, pframes = {}, {}
        for f in range(int(rng.integers(0, max_frames + 1))):
            key = frame_key(1 + 5 * f)
            humans = []
            for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3, 4]))):
                names = rng.permutation(PARTS[:max_parts])[: int(rng.integers(0, max_parts + 1))].tolist()
                humans.append({"box": _grid_box(rng, floats),
                               "parts": {n: {"box": _grid_box(rng, floats), "verb": VERBS[rng.integers(3)]}
                                         for n in names}})
            gframes[key] = {"humans": humans}
            if rng.random() < 0.15:
                continue  # frame missing from the prediction
            preds = []
            for h in humans:
                for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):  # missed, found, or found twice (ties)
                    preds.append({"box": _jitter(rng, h["box"], floats), "parts": _pred_parts(rng, h, mode, floats)})
            for _ in range(int(rng.choice([0, 0, 1, 2]))):  # false positives, sometimes disjoint
                box = _grid_box(rng, floats) if rng.random() < 0.5 else [30, 30, 35 + int(rng.integers(3)), 36]
                preds.append({"box": box, "parts": _pred_parts(rng, {"parts": {}}, mode, floats)})
            order = rng.permutation(len(preds))
            pframes[key] = {"humans": [preds[i] for i in order][:10]}
        if rng.random() < 0.2:  # a predicted frame the GT does not have
            pframes[frame_key(3)] = {"humans": [{"box": [0, 0, 5, 5], "parts": {}}]}
        gt_part[video] = gframes
        pred_part[video] = pframes
    return gt_vid, gt_part, pred_vid, pred_part


def _pred_parts(rng, gt_human, mode, floats):
    parts = {}
    names = list(gt_human["parts"]) + (["tail"] if rng.random() < 0.1 else [])
    if rng.random() < 0.3:
        names.append(PARTS[rng.integers(len(PARTS))])
    for n in names:
        if rng.random() < 0.15:
            continue  # part missing from the prediction
        gt = gt_human["parts"].get(n, {"box": _grid_box(rng, floats), "verb": "none"})
        k = 1 if mode == "single" else int(rng.choice([0, 1, 1, 1, 2, 3, 5]))
        boxes = [_jitter(rng, gt["box"], floats) if rng.random() < 0.7 else _grid_box(rng, floats) for _ in range(k)]
        verbs = [gt["verb"] if rng.random() < 0.5 else VERBS[rng.integers(3)] for _ in range(k)]
        parts[n] = {"box": boxes[0], "verb": verbs[0]} if mode == "single" else {"box": boxes, "verb": verbs}
    return parts


def realistic_case(n_videos: int = 932, frames: int = 30, humans: float = 3.0, parts: float = 5.0, seed: int = 0,
                   proposals: int = 1):
    """A test-set-sized (gt_vid, gt_part, pred_vid, pred_part): ~``humans`` people with ~``parts`` parts per
    scored frame, and a prediction that finds 90% of the people with jittered boxes, predicts 90% of their
    parts (``proposals`` jittered proposals each) with the right state 60% of the time, adds false
    positives and gets 80% of the actions right. Numbers are plain Python floats, as ``json.load`` gives."""
    rng = np.random.default_rng(seed)
    gt_vid, gt_part, pred_vid, pred_part = {}, {}, {}, {}
    all_labels = [f"class_{i:02d}" for i in range(24)]
    n_verbs = len(VERBS)
    for v in range(n_videos):
        video = f"video{v:04d}_000010_000020"
        label = all_labels[rng.integers(24)]
        gt_vid[video] = label
        pred_vid[video] = label if rng.random() < 0.8 else all_labels[rng.integers(24)]
        gframes, pframes = {}, {}
        counts = rng.poisson(humans, size=frames)
        n_h = int(counts.sum())
        xy = rng.uniform(0, 1000, size=(n_h, 2)) * [1, 0.5]
        wh = rng.uniform([80, 150], [300, 500], size=(n_h, 2))
        hbox = np.round(np.hstack([xy, xy + wh]), 1)
        hjit = hbox + rng.normal(0, 8, size=(n_h, 4))
        found = rng.random(n_h) < 0.9
        n_parts = np.minimum(10, rng.poisson(parts, size=n_h))
        h = 0
        for f in range(frames):
            key = frame_key(1 + 5 * f)
            gh, ph = [], []
            for _ in range(int(counts[f])):
                k = int(n_parts[h])
                names = [PARTS[i] for i in rng.permutation(10)[:k]]
                corner = hbox[h, :2] + rng.uniform(0, 1, size=(k, 2)) * np.maximum(wh[h] - 40, 1)
                pbox = np.round(np.hstack([corner, corner + 40]), 1)
                verbs = rng.integers(0, n_verbs, size=k)
                gparts = {n: {"box": b, "verb": VERBS[s]} for n, b, s in zip(names, pbox.tolist(), verbs.tolist())}
                gh.append({"box": hbox[h].tolist(), "parts": gparts})
                if found[h]:
                    keep = rng.random(k) < 0.9
                    jit = (pbox[:, None, :] + rng.normal(0, 6, size=(k, proposals, 4))).tolist()
                    right = rng.random((k, proposals)) < 0.6
                    other = rng.integers(0, n_verbs, size=(k, proposals))
                    pparts = {}
                    for i, n in enumerate(names):
                        if keep[i]:
                            pparts[n] = {"box": jit[i], "verb": [VERBS[verbs[i]] if right[i, j] else VERBS[other[i, j]]
                                                                for j in range(proposals)]}
                    ph.append({"box": hjit[h].tolist(), "parts": pparts})
                h += 1
            for _ in range(int(rng.poisson(0.5))):
                x, y = rng.uniform(0, 1000), rng.uniform(0, 500)
                ph.append({"box": [float(x), float(y), float(x) + 100, float(y) + 200], "parts": {}})
            gframes[key] = {"humans": gh}
            pframes[key] = {"humans": [ph[i] for i in rng.permutation(len(ph))][:10]}
        gt_part[video] = gframes
        pred_part[video] = pframes
    return gt_vid, gt_part, pred_vid, pred_part
