"""Bootstrap interval, oracle-substitution study and breakdowns."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import reference_scorer as ref
from tps_cases import random_case, realistic_case
from tpslab.metrics import curve, tps_score
from tpslab.metrics.analysis import (LOSS_REASONS, bootstrap_area, oracle_study, per_class_breakdown,
                                     per_part_breakdown)

F1, F6 = "img_00001.json", "img_00006.json"


@pytest.fixture(scope="module")
def small():
    return realistic_case(n_videos=16, frames=5, seed=3, proposals=2)


def test_bootstrap_replicates_are_areas_of_resampled_videos(small):
    r = tps_score(*small)
    ci = bootstrap_area(r, n_boot=50, seed=7)
    assert ci.area == r.area_raw and ci.low <= ci.area <= ci.high and len(ci.samples) == 50
    # Redo the resampling by hand: the same draws, each replicate scored by the official curve.
    n = len(r.per_video)
    counts = np.random.default_rng(7).multinomial(n, np.full(n, 1.0 / n), size=50)
    psc, correct = r.per_video["psc"].to_numpy(), r.per_video["correct"].to_numpy()
    for i in (0, 17, 49):
        idx = np.repeat(np.arange(n), counts[i])
        assert ci.samples[i] == pytest.approx(curve(psc[idx], correct[idx])[2], abs=1e-12)
    assert bootstrap_area(r, n_boot=50, seed=7).samples.tolist() == ci.samples.tolist()
    assert bootstrap_area(r, n_boot=50, seed=8).samples.tolist() != ci.samples.tolist()
    alpha = (1 - ci.level) / 2  # the percentile interval of the replicates
    assert np.quantile(ci.samples, [alpha, 1 - alpha]).tolist() == [ci.low, ci.high]


def test_bootstrap_of_a_perfect_submission_has_no_spread():
    per_video = tps_score({"v": "a", "w": "b"}, {"v": {}, "w": {}}, {"v": "a", "w": "b"}, {}).per_video
    ci = bootstrap_area(per_video, n_boot=20)
    assert ci.low == ci.high == pytest.approx(0.9999)
    with pytest.raises(ValueError, match="level"):
        bootstrap_area(per_video, level=1.5)


def _pairs(gt_frame, pred_frame):
    """GT index -> prediction index for the assignment's overlapping pairs (reference matcher)."""
    m = ref.match_frame([h["box"] for h in gt_frame["humans"]], [h["box"] for h in pred_frame["humans"]], -1.0)
    return {i: j for i, (j, iou) in m.items() if iou > -1}


def _substitute(gt_part, pred_part, what):
    """Apply an oracle to the prediction dicts, one paired human at a time (the test's own construction)."""
    pred = copy.deepcopy(pred_part)
    for video, frames in gt_part.items():
        for key, gframe in frames.items():
            if not gframe["humans"] or key not in pred[video]:
                continue
            pframe = pred[video][key]
            for i, j in _pairs(gframe, pframe).items():
                gh, ph = gframe["humans"][i], pframe["humans"][j]
                if what == "humans":
                    ph["box"] = list(gh["box"])
                for name, part in ph["parts"].items():
                    if name not in gh["parts"]:
                        continue
                    if what == "part_boxes":
                        part["box"] = [list(gh["parts"][name]["box"]) for _ in part["box"]]
                    if what == "part_states":
                        part["verb"] = [gh["parts"][name]["verb"] for _ in part["verb"]]
    return pred


def test_oracle_rows_match_substituted_predictions(small):
    gt_vid, gt_part, pred_vid, pred_part = small
    assert oracle_study(*small, oracles=()).iloc[0]["area"] == tps_score(*small).area  # default pairing
    assert oracle_study(*small, oracles=(), pairing="pre-fix-2021").iloc[0]["area"] == \
        tps_score(*small, pairing="pre-fix-2021").area
    # The substitutions below are made on matched pairs (the default pairing).
    table = oracle_study(*small)
    assert len(table) == 16
    assert table.iloc[0][["humans", "part_boxes", "part_states", "actions"]].tolist() == [False] * 4
    assert table.iloc[0]["area"] == tps_score(*small).area and table.iloc[0]["gain"] == 0
    alone = table[table[["humans", "part_boxes", "part_states", "actions"]].sum(axis=1) == 1]
    for what in ("humans", "part_boxes", "part_states"):
        expected = ref.score(gt_vid, gt_part, pred_vid, _substitute(gt_part, pred_part, what))["area"]
        assert alone[alone[what]]["area"].iloc[0] == round(expected, 6), what
    assert alone[alone["actions"]]["area"].iloc[0] == round(
        ref.score(gt_vid, gt_part, gt_vid, pred_part)["area"], 6)
    full = table.iloc[-1]
    assert full[["humans", "part_boxes", "part_states", "actions"]].all()
    assert full["area"] >= table["area"].max() - 1e-9 and full["accuracy"] == 1.0
    assert (table["gain"] >= -1e-9).all()


def test_oracle_study_subset_and_errors():
    c = random_case(np.random.default_rng(2), n_videos=4)
    t = oracle_study(*c, oracles=("actions",))
    assert len(t) == 2 and t["accuracy"].iloc[1] == 1.0
    with pytest.raises(ValueError, match="unknown oracle"):
        oracle_study(*c, oracles=("faces",))


def test_per_class_breakdown_adds_up(small):
    r = tps_score(*small)
    t = per_class_breakdown(r)
    assert t["contribution"].sum() == pytest.approx(r.area_raw, abs=1e-12)
    assert t["videos"].sum() == len(r.per_video)
    perfect = t["videos"].to_numpy() * 0.9999 / len(r.per_video)
    assert (t["contribution"] + t["lost"]).to_numpy() == pytest.approx(perfect)
    label = t["label"].iloc[0]
    sub = r.per_video[r.per_video["label"] == label]
    assert t["area"].iloc[0] == curve(sub["psc"], sub["correct"])[2]
    assert t["accuracy"].iloc[0] == sub["correct"].mean()
    assert list(t["lost"]) == sorted(t["lost"], reverse=True)


def _gt(box, **parts):
    return {"box": box, "parts": {n: {"box": b, "verb": v} for n, (b, v) in parts.items()}}


def _pred(box, **parts):
    return {"box": box, "parts": {n: {"box": [b for b, _ in p], "verb": [v for _, v in p]} for n, p in parts.items()}}


def test_per_part_breakdown_attributes_each_loss():
    B, H, FAR = [0, 0, 9, 9], [0, 0, 4, 4], [6, 6, 9, 9]
    gt = {"v": {F1: {"humans": [
        _gt(B, head=(H, "none"), hip=(H, "bend"), left_hand=(H, "hold"), right_hand=(H, "hold"),
            left_foot=(H, "step"), right_foot=(H, "step"), left_arm=(H, "lift")),
        _gt([100, 100, 150, 150], head=(H, "none"))]}}}
    pred = {"v": {F1: {"humans": [_pred(
        B,
        head=[(H, "none")],                          # right
        hip=[(H, "bend"), (FAR, "none")],           # right, 1/2 lost to the second proposal
        left_hand=[(FAR, "grab")],                  # box and state wrong
        right_hand=[(FAR, "hold")],                 # box wrong
        left_foot=[(H, "kick")],                    # state wrong
        right_foot=[(H, "none"), (FAR, "step")])]}}}  # right box and right state on different proposals
    # left_arm is missing from the prediction; the second person is not detected.
    r = tps_score({"v": "x"}, gt, {"v": "x"}, pred, details=True)
    t = per_part_breakdown(r).set_index("part")
    assert t.loc["head", "lost_human"] == 1 and t.loc["head", "mean_score"] == 0.5 and t.loc["head", "n"] == 2
    assert t.loc["hip", "lost_proposals"] == 0.5
    assert t.loc["left_hand", "lost_box_and_state"] == 1
    assert t.loc["right_hand", "lost_box"] == 1 and t.loc["right_hand", "state_ok"] == 1
    assert t.loc["left_foot", "lost_state"] == 1 and t.loc["left_foot", "box_ok"] == 1
    assert t.loc["right_foot", "lost_split"] == 1
    assert t.loc["left_arm", "lost_missing_part"] == 1 and t.loc["left_arm", "predicted"] == 0
    lost_cols = [f"lost_{x}" for x in LOSS_REASONS]
    # All points lost add up to the parts minus the points scored.
    assert t[lost_cols].to_numpy().sum() == pytest.approx(t["n"].sum() - (t["mean_score"] * t["n"]).sum())
    with pytest.raises(ValueError, match="details=True"):
        per_part_breakdown(tps_score({"v": "x"}, gt, {"v": "x"}, pred))
