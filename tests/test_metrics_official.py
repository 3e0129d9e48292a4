"""The official score: each rule pinned by a hand-computed case (run on the fast scorer AND the plain
reference in ``tests/reference_scorer.py``), random cross-checks of the two, and the errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import reference_scorer as ref
from tps_cases import random_case, realistic_case
from tpslab.metrics import ScoringError, TPSScorer, assign_humans, curve, tps_grid, tps_score
from tpslab.metrics import kernels

F1, F6, F11 = "img_00001.json", "img_00006.json", "img_00011.json"


# ---------------------------------------------------------------------------------------------------
# Builders and the two scorers


def gt_human(box, **parts):
    """A GT human; parts given as name=(box, verb)."""
    return {"box": box, "parts": {n: {"box": b, "verb": v} for n, (b, v) in parts.items()}}


def pred_human(box, **parts):
    """A predicted human (list mode); parts given as name=[(box, verb), ...] proposals."""
    return {"box": box, "parts": {n: {"box": [b for b, _ in props], "verb": [v for _, v in props]}
                                  for n, props in parts.items()}}


def case(gt_frames, pred_frames):
    """One video 'v' (class 'lunge', predicted right) -> the four structures."""
    return {"v": "lunge"}, {"v": gt_frames}, {"v": "lunge"}, {"v": pred_frames}


def videos(gt_by_video, pred_by_video, predicted=None):
    """Several videos, all of class 'lunge'; ``predicted`` overrides some predicted classes."""
    labels = {v: "lunge" for v in gt_by_video}
    return labels, gt_by_video, {**labels, **(predicted or {})}, pred_by_video


@pytest.fixture(params=["fast", "reference"])
def score(request):
    """Score a case with one of the two implementations -> (list of per-video PSC, area_raw)."""

    def run(c, **kw):
        if request.param == "fast":
            r = tps_score(*c, **kw)
            return r.per_video["psc"].tolist(), r.area_raw
        kw["legacy_pairing"] = kw.pop("pairing", "matched") == "pre-fix-2021"
        r = ref.score(*c, **kw)
        return [p for _, p, _ in r["per_video"]], r["area"]

    return run


BOX = [0, 0, 9, 9]
HEAD = [0, 0, 4, 4]


# ---------------------------------------------------------------------------------------------------
# Rule 1: IoU on inclusive pixels, -1 for disjoint boxes


def test_iou_counts_pixels_inclusively(score):
    # Part boxes that share one pixel column: inclusive IoU = (1*2) / (4 + 4 - 2) = 1/3 >= 0.3
    # (exclusive widths would make them disjoint).
    c = case({F1: {"humans": [gt_human(BOX, head=([0, 0, 1, 1], "none"))]}},
             {F1: {"humans": [pred_human(BOX, head=[([1, 0, 2, 1], "none")])]}})
    assert score(c)[0] == [1.0]
    assert score(c, part_iou=0.34)[0] == [0.0]


def test_disjoint_boxes_cost_more_than_the_padding(score):
    # IoU(A,P1)=30/53, IoU(B,P1)=30/48, IoU(A,P2)=-1 (disjoint), IoU(B,P2)=1/41. On 1 - IoU the assignment
    # A-P1, B-P2 costs 0.434 + 0.976 = 1.41 < A-P2, B-P1 = 2 + 0.375; were disjoint IoU 0 instead of -1,
    # the other assignment (1.375) would win and A would go unmatched.
    a, b, p1, p2 = [3, 5, 7, 11], [6, 6, 10, 11], [3, 6, 10, 11], [10, 11, 13, 13]
    c = case({F1: {"humans": [gt_human(a, head=(HEAD, "none")), gt_human(b, head=(HEAD, "bend"))]}},
             {F1: {"humans": [pred_human(p1, head=[(HEAD, "none")]), pred_human(p2)]}})
    assert score(c)[0] == [0.5]


# ---------------------------------------------------------------------------------------------------
# Rule 2: Hungarian assignment, strict human threshold, its precision


def test_assignment_is_optimal_not_greedy(score):
    # IoU(A,P1) = 646/924 = 0.699, IoU(A,P2) = 528/982 = 0.538, IoU(B,P1) = 525/907 = 0.579,
    # IoU(B,P2) = 375/997 = 0.376. Greedy gives P1 to A and leaves B with P2 (unmatched); the assignment
    # minimises 1 - IoU: A-P2 + B-P1 = 0.883 < A-P1 + B-P2 = 0.925, and both of its pairs count.
    a, b = [17, 14, 53, 35], [26, 15, 51, 40]
    p1, p2 = [15, 17, 50, 37], [17, 11, 40, 39]
    c = case({F1: {"humans": [gt_human(a, head=(HEAD, "none")), gt_human(b, hip=(HEAD, "bend"))]}},
             {F1: {"humans": [pred_human(p1, hip=[(HEAD, "bend")]), pred_human(p2, head=[(HEAD, "none")])]}})
    assert score(c)[0] == [1.0]
    # The 2021 script before its fix scores the k-th valid match against prediction k: A (match 0)
    # against P1, which lacks the head, and B (match 1) against P2, which lacks the hip.
    assert score(c, pairing="pre-fix-2021")[0] == [0.0]


def test_human_iou_must_exceed_the_threshold_strictly(score):
    half = [0, 0, 4, 9]  # 50 / 100 = 0.5 exactly
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human(half, head=[(HEAD, "none")])]}})
    assert score(c)[0] == [0.0]
    assert score(c, human_iou=0.49)[0] == [1.0]


def test_human_threshold_precision_follows_the_matrix(score):
    # IoU 30/100 is float32(0.3) = 0.30000001. With one GT and one prediction the scorer's matrix is
    # square float32 and the threshold 0.3 is compared in float32: not above. A second (disjoint)
    # prediction pads the matrix with float64 zeros and the comparison happens in float64: above.
    low = [0, 0, 9, 2]
    gt = {F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}}
    square = case(gt, {F1: {"humans": [pred_human(low, head=[(HEAD, "none")])]}})
    padded = case(gt, {F1: {"humans": [pred_human(low, head=[(HEAD, "none")]), pred_human([50, 50, 60, 60])]}})
    assert float(np.float32(0.3)) > 0.3
    assert score(square, human_iou=0.3)[0] == [0.0]
    assert score(padded, human_iou=0.3)[0] == [1.0]


def test_human_iou_is_computed_in_float32(score):
    # With these boxes every float32 step gives IoU 0.50000006 (> 0.5: matched), while the same
    # arithmetic in float64 gives exactly 0.5 after rounding (not matched).
    gt_box, pred_box = [0.0, 0.0, 68.0, 35.0], [22.47, 0.0, 92.06, 35.0]
    as32 = [float(np.float32(v)) for v in pred_box]
    inter = (68.0 - as32[0] + 1) * 36.0
    double = inter / ((69.0 * 36.0 + (as32[2] - as32[0] + 1) * 36.0) - inter)
    assert np.float32(double) == np.float32(0.5)
    c = case({F1: {"humans": [gt_human(gt_box, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human(pred_box, head=[(HEAD, "none")])]}})
    assert score(c)[0] == [1.0]


def test_int_and_float_boxes_score_alike(score):
    # The same boxes written as ints and as floats (and a half-pixel box that only floats can hold):
    # part IoU of (0,0,4,4) and (0,0,4,2.5): (5 * 3.5) / 25 = 0.7 -> right at 0.7, wrong at 0.71.
    as_int = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
                  {F1: {"humans": [pred_human(BOX, head=[([0, 0, 4, 2.5], "none")])]}})
    as_float = case({F1: {"humans": [gt_human([float(v) for v in BOX], head=([0.0, 0.0, 4.0, 4.0], "none"))]}},
                    {F1: {"humans": [pred_human([0.0, 0.0, 9.0, 9.0], head=[([0.0, 0.0, 4.0, 2.5], "none")])]}})
    for c in (as_int, as_float):
        assert score(c, part_iou=0.7)[0] == [1.0]
        assert score(c, part_iou=0.71)[0] == [0.0]


def test_ties_are_broken_as_scipy_breaks_them(score):
    # Two identical predictions; only one carries the right state. Which one the GT human gets is
    # SciPy's choice on the padded cost matrix, asked here directly.
    rows, cols = linear_sum_assignment(1 - np.array([[1.0, 1.0], [0.0, 0.0]]))
    chosen = int(cols[list(rows).index(0)])
    preds = [pred_human(BOX, head=[(HEAD, "bend")]), pred_human(BOX, head=[(HEAD, "bend")])]
    preds[1 - chosen]["parts"]["head"]["verb"] = ["none"]
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "bend"))]}}, {F1: {"humans": preds}})
    assert score(c)[0] == [1.0]


def test_fast_assignment_agrees_with_scipy_on_tie_heavy_matrices():
    # The vectorised assignment decides unique optima itself, then the groups of overlapping boxes, and
    # sends the rest to SciPy; on IoUs drawn from a few values (many ties, disjoint pairs) it must give
    # SciPy's pairs wherever a pair can count. 300 draws of 4 matrices (every shape up to 5 x 5 many
    # times over); the slow test below makes 1500.
    _assignments_agree_with_scipy(300)


@pytest.mark.slow
def test_fast_assignment_agrees_with_scipy_on_1500_draws_of_tie_heavy_matrices():
    _assignments_agree_with_scipy(1500)


def _assignments_agree_with_scipy(draws):
    rng = np.random.default_rng(0)
    values = np.array([-1, 0.2, 0.5, 0.6, 0.75], dtype=np.float32)
    for _ in range(draws):
        g, p = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        stack = values[rng.integers(0, len(values), size=(4, g, p))]
        got, left = kernels.assign_shape(stack)
        for j, by_groups in zip(left, kernels.assign_by_groups(list(stack[left]))):
            got[j] = by_groups if by_groups is not None else kernels.scipy_assign(stack[j])
        for j in range(len(stack)):
            rows, cols = linear_sum_assignment(1 - np.pad(stack[j].astype(np.float64) if g != p else stack[j],
                                                          ((0, max(0, p - g)), (0, max(0, g - p)))))
            expect = np.full(g, -1)
            for r, c_ in zip(rows, cols):
                if r < g and c_ < p and stack[j][r, c_] > -1:
                    expect[r] = c_
            mine = np.where((got[j] >= 0) & (stack[j][np.arange(g), np.maximum(got[j], 0)] > -1), got[j], -1)
            assert mine.tolist() == expect.tolist()


# ---------------------------------------------------------------------------------------------------
# Rule 3: part scores


def test_part_scores_one_over_the_number_of_proposals(score):
    props = [([50, 50, 60, 60], "none"), (HEAD, "none"), (HEAD, "bend")]  # only the 2nd is right
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human(BOX, head=props)]}})
    assert score(c)[0] == [1 / 3]


def test_right_box_wrong_state_and_right_state_wrong_box_score_nothing(score):
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human(BOX, head=[(HEAD, "bend"), ([6, 6, 9, 9], "none")])]}})
    assert score(c)[0] == [0.0]


def test_part_iou_threshold_is_inclusive(score):
    # Part IoU 30/100 = 0.3 exactly in float64: counts at 0.3.
    c = case({F1: {"humans": [gt_human(BOX, head=(BOX, "none"))]}},
             {F1: {"humans": [pred_human(BOX, head=[([0, 0, 9, 2], "none")])]}})
    assert score(c, part_iou=0.3)[0] == [1.0]


def test_missing_extra_and_unknown_parts(score):
    # GT: head right, hip missing from the prediction; extra predicted parts (known and unknown) cost nothing.
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"), hip=(HEAD, "bend"))]}},
             {F1: {"humans": [pred_human(BOX, head=[(HEAD, "none")], left_foot=[(HEAD, "step")],
                                         tail=[(HEAD, "wag")])]}})
    assert score(c)[0] == [0.5]


def test_empty_proposal_list_scores_zero(score):
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human(BOX, head=[])]}})
    assert score(c)[0] == [0.0]


def test_single_mode_takes_one_box_and_one_verb(score):
    pred = {F1: {"humans": [{"box": BOX, "parts": {"head": {"box": HEAD, "verb": "none"},
                                                   "hip": {"box": HEAD, "verb": "none"}}}]}}
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"), hip=(HEAD, "bend"))]}}, pred)
    assert score(c, mode="single")[0] == [0.5]


def test_raw_list_form_of_parts_is_accepted(score):
    gt = {F1: {"humans": [{"box": BOX, "parts": [{"name": "head", "box": HEAD, "verb": "none"},
                                                 {"name": "hip", "box": HEAD, "verb": "bend"}]}]}}
    pred = {F1: {"humans": [{"box": BOX, "parts": [{"name": "head", "box": [HEAD], "verb": ["none"]}]}]}}
    assert score(case(gt, pred))[0] == [0.5]


# ---------------------------------------------------------------------------------------------------
# Rule 4: frame PSC over all GT parts of the frame


def test_parts_of_unmatched_humans_count_in_the_frame(score):
    # Human 1: 2 parts, both right. Human 2 (3 parts) is not detected. Frame PSC = 2 / 5.
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"), hip=(HEAD, "none")),
                              gt_human([100, 100, 150, 150], head=(HEAD, "none"), hip=(HEAD, "none"),
                                       left_hand=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human(BOX, head=[(HEAD, "none")], hip=[(HEAD, "none")])]}})
    assert score(c)[0] == [0.4]


def test_partless_human_can_take_the_prediction(score):
    # GT A (no parts) and B (one part) share a box; one prediction. The assignment gives it to A (first
    # row on a tie, checked against SciPy), so B's part scores 0 although the prediction was right for it.
    rows, cols = linear_sum_assignment(1 - np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert dict(zip(rows.tolist(), cols.tolist()))[0] == 0
    c = case({F1: {"humans": [{"box": BOX, "parts": {}}, gt_human(BOX, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human(BOX, head=[(HEAD, "none")])]}})
    assert score(c)[0] == [0.0]


# ---------------------------------------------------------------------------------------------------
# Rule 5: video PSC over frames


def _one_part_frame(verb):
    return ({"humans": [gt_human(BOX, head=(HEAD, "none"))]},
            {"humans": [pred_human(BOX, head=[(HEAD, verb)])]})


def test_video_psc_is_the_mean_over_frames_and_missing_frames_count_zero(score):
    (g1, p1), (g2, p2), (g3, _) = _one_part_frame("none"), _one_part_frame("bend"), _one_part_frame("none")
    c = case({F1: g1, F6: g2, F11: g3}, {F1: p1, F6: p2})  # F11 missing from the prediction
    assert score(c)[0] == [1 / 3]


def test_frames_without_humans_are_dropped(score):
    g1, p1 = _one_part_frame("none")
    c = case({F1: g1, F6: {"humans": []}}, {F1: p1})
    assert score(c)[0] == [1.0]


def test_partless_frame_dropped_only_when_the_prediction_has_it(score):
    g1, p1 = _one_part_frame("none")
    partless = {"humans": [{"box": BOX, "parts": {}}]}
    present = case({F1: g1, F6: partless}, {F1: p1, F6: {"humans": []}})
    absent = case({F1: g1, F6: partless}, {F1: p1})
    assert score(present)[0] == [1.0]
    assert score(absent)[0] == [0.5]


def test_video_without_a_scorable_frame_scores_one(score):
    c = videos({"a": {F1: {"humans": []}}, "b": {}, "c": {F1: {"humans": [{"box": BOX, "parts": {}}]}}},
               {"a": {}, "b": {}, "c": {F1: {"humans": []}}})
    assert score(c)[0] == [1.0, 1.0, 1.0]


def test_video_sum_is_added_left_to_right():
    # Nine frames with PSC 3/4, 4/5, 1/5, 1, 1/3, 1, 1, 1/2, 1: the scorer's running sum differs in the
    # last bit from NumPy's pairwise sum, and the result must be the running sum.
    fractions = [(3, 4), (4, 5), (1, 5), (2, 2), (1, 3), (1, 1), (1, 1), (2, 4), (1, 1)]
    names = ["head", "hip", "left_arm", "right_arm", "left_hand"]
    gt, pred = {}, {}
    for k, (right, total) in enumerate(fractions):
        key = f"img_{1 + 5 * k:05d}.json"
        gt[key] = {"humans": [gt_human(BOX, **{n: (HEAD, "none") for n in names[:total]})]}
        pred[key] = {"humans": [pred_human(BOX, **{n: [(HEAD, "none" if i < right else "bend")]
                                                   for i, n in enumerate(names[:total])})]}
    running = 0
    for right, total in fractions:
        running += right / total
    expected = running / 9
    assert expected != np.sum([r / t for r, t in fractions]) / 9
    c = case(gt, pred)
    assert tps_score(*c).per_video["psc"].tolist() == [expected]
    assert [p for _, p, _ in ref.score(*c)["per_video"]] == [expected]


# ---------------------------------------------------------------------------------------------------
# Rules 6-8: correctness, curve, area


def test_action_must_match_as_a_string():
    g1, p1 = _one_part_frame("none")
    c = videos({"a": {F1: g1}, "b": {F1: g1}}, {"a": {F1: p1}, "b": {F1: p1}}, predicted={"b": "Lunge"})
    r = tps_score(*c)
    assert r.per_video["correct"].tolist() == [True, False]
    assert r.accuracy == 0.5


def test_area_of_a_perfect_submission_is_0_9999(score):
    g1, p1 = _one_part_frame("none")
    c = case({F1: g1}, {F1: p1})
    psc, area = score(c)
    assert psc == [1.0] and round(area, 6) == 0.9999
    assert tps_score(*c).area == 0.9999


def test_area_counts_correct_videos_at_or_above_each_threshold():
    # Video a: PSC 1/2 and correct; b: PSC 1 but wrong class. acc(t) = 1/2 for k/10000 <= 1/2, i.e.
    # k = 1..5000, else 0: area = 5000 * 0.0001 * 0.5 = 0.25.
    g2 = {"humans": [gt_human(BOX, head=(HEAD, "none"), hip=(HEAD, "none"))]}
    p2 = {"humans": [pred_human(BOX, head=[(HEAD, "none")], hip=[(HEAD, "bend")])]}
    g1, p1 = _one_part_frame("none")
    c = videos({"a": {F1: g2}, "b": {F1: g1}}, {"a": {F1: p2}, "b": {F1: p1}}, predicted={"b": "capoeira"})
    r = tps_score(*c)
    assert r.area == 0.25
    assert abs(r.area_raw - 0.25) < 1e-12
    assert r.area_raw == ref.score(*c)["area"]
    assert r.acc[4999] == 0.5 and r.acc[5000] == 0.0
    assert r.acc_at(0.5) == 0.5 and r.acc_at(0.0) == 0.5 and r.acc_at(0.51) == 0.0
    assert r.mean_psc == 0.75 and r.accuracy == 0.5
    assert r.thresholds[0] == 0.0001 and r.thresholds[-1] == 0.9999 and len(r.thresholds) == 9999


def test_curve_helper_matches_a_python_loop():
    rng = np.random.default_rng(3)
    psc = rng.choice([0.0, 0.25, 0.5, 1 / 3, 0.7, 1.0], size=50)
    correct = rng.random(50) < 0.6
    _, acc, area = curve(psc, correct)
    total = 0
    for k in range(1, 10000):
        a = sum(1 for p, c in zip(psc, correct) if p >= k / 10000 and c) / 50
        assert acc[k - 1] == a
        total += 1.0 / 10000 * a
    assert area == total


# ---------------------------------------------------------------------------------------------------
# Pairing: matched by default (the scripts' current revisions); the 2021 pre-fix slip only on request


def test_default_pairs_each_gt_person_with_its_matched_prediction(score):
    # A perfect two-person prediction listed in reverse order: every real detector lists people in its
    # own order. The current 2021 script (since 4cd5815) and the 2022 script score it perfect.
    a, b = [0, 0, 9, 9], [50, 50, 69, 69]
    gt = {F1: {"humans": [gt_human(a, head=(HEAD, "none")), gt_human(b, hip=([50, 50, 54, 54], "bend"))]}}
    pred = {F1: {"humans": [pred_human(b, hip=[([50, 50, 54, 54], "bend")]), pred_human(a, head=[(HEAD, "none")])]}}
    c = case(gt, pred)
    assert score(c)[0] == [1.0]
    assert tps_score(*c).area == 0.9999
    assert tps_score(*c, mode="list").pairing == "matched"
    # the pre-fix revision scored GT person 0 against predicted person 0 (the other one): 0
    assert score(c, pairing="pre-fix-2021")[0] == [0.0]
    assert tps_score(*c, pairing="pre-fix-2021").area == 0.0
    single = ({"v": "lunge"}, {"v": gt}, {"v": "lunge"},
              {"v": {F1: {"humans": [{"box": b, "parts": {"hip": {"box": [50, 50, 54, 54], "verb": "bend"}}},
                                     {"box": a, "parts": {"head": {"box": HEAD, "verb": "none"}}}]}}})
    assert tps_score(*single, mode="single").area == 0.9999


def test_pre_fix_pairing_scores_the_ith_prediction():
    # GT human 0 is matched to prediction 1 (prediction 0 is far away). Matched pairing scores it
    # against prediction 1 (right); the 2021 script before its fix scores it against prediction 0.
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human([100, 100, 120, 120]), pred_human(BOX, head=[(HEAD, "none")])]}})
    assert tps_score(*c).per_video["psc"].tolist() == [1.0]
    assert tps_score(*c, pairing="pre-fix-2021").per_video["psc"].tolist() == [0.0]
    assert [p for _, p, _ in ref.score(*c)["per_video"]] == [1.0]
    assert [p for _, p, _ in ref.score(*c, legacy_pairing=True)["per_video"]] == [0.0]
    with pytest.warns(DeprecationWarning):  # the old spelling still works, and says what to use
        assert tps_score(*c, legacy_pairing=True).per_video["psc"].tolist() == [0.0]
    with pytest.raises(ValueError, match="pairing must be one of"):
        tps_score(*c, pairing="official")
    # single mode pairs with the matched prediction too
    single = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
                  {F1: {"humans": [{"box": [100, 100, 120, 120], "parts": {}},
                                   {"box": BOX, "parts": {"head": {"box": HEAD, "verb": "none"}}}]}})
    assert tps_score(*single, mode="single").per_video["psc"].tolist() == [1.0]
    assert [p for _, p, _ in ref.score(*single, mode="single")["per_video"]] == [1.0]


# ---------------------------------------------------------------------------------------------------
# Random cross-checks against the reference


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_match_the_reference_exactly(seed):
    """12 random cases per seed: every branch below (single mode, the pre-fix pairing, a prepared scorer with
    and without its full tables, and their pairs) comes up in each; the slow test runs 400 per seed."""
    _match_the_reference(seed, 12)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_400_random_cases_per_seed_match_the_reference_exactly(seed):
    _match_the_reference(seed, 400)


def _match_the_reference(seed, cases):
    rng = np.random.default_rng(seed)
    checked = 0
    for i in range(cases):
        mode = "single" if i % 4 == 0 else "list"
        legacy = i % 7 == 0
        c = random_case(rng, n_videos=int(rng.integers(1, 5)), mode=mode,
                        max_frames=int(rng.choice([4, 4, 12])), max_parts=int(rng.choice([5, 10])))
        hi = float(rng.choice([0.5, 0.3, 0.001, 0.9, 0.99, 0.25, 0.2]))
        pi = float(rng.choice([0.3, 0.5, 0.001, 0.9, 0.25]))
        expected = ref.score(*c, human_iou=hi, part_iou=pi, mode=mode, legacy_pairing=legacy)
        if i % 3 == 1:  # parts read once for every overlapping pair, then selected for the threshold
            scorer = TPSScorer(*c, mode=mode, pairing="pre-fix-2021" if legacy else "matched")
            scorer.prepare(full=bool(i % 2))
            got = scorer.score(hi, pi)
        else:
            got = tps_score(*c, human_iou=hi, part_iou=pi, mode=mode, pairing="pre-fix-2021" if legacy else "matched")
        assert got.per_video["psc"].tolist() == [p for _, p, _ in expected["per_video"]], (seed, i)
        assert got.per_video["correct"].tolist() == [bool(x) for _, _, x in expected["per_video"]]
        assert got.area_raw == expected["area"], (seed, i)
        assert got.acc.tolist() == expected["acc"]
        checked += 1
    assert checked == cases


def test_grid_matches_single_scores():
    c = random_case(np.random.default_rng(11), n_videos=6)
    grid = tps_grid(*c)
    assert len(grid) == 25
    for _, row in grid.sample(6, random_state=0).iterrows():
        expected = ref.score(*c, human_iou=row["human_iou"], part_iou=row["part_iou"])
        assert row["area_raw"] == expected["area"]
        psc = [p for _, p, _ in expected["per_video"]]
        correct = [x for _, _, x in expected["per_video"]]
        for t in (0.0, 0.5, 0.9):
            assert row[f"acc@{t:g}"] == sum(p >= t and x == 1 for p, x in zip(psc, correct)) / len(psc)


def test_realistic_case_matches_the_reference():
    c = realistic_case(n_videos=12, frames=12, seed=1, proposals=2)
    r = tps_score(*c)
    expected = ref.score(*c)
    assert r.area_raw == expected["area"]
    assert 0 < r.area < 1


def test_a_box_beyond_float32_scores_as_the_reference_without_a_warning():
    """The scorer reads human boxes as float32: 1e300 becomes infinite there and never matches. tpslab scored it
    so, but NumPy's "overflow encountered in cast" reached the user's terminal."""
    import warnings

    c = realistic_case(n_videos=3, frames=6, seed=2, proposals=1)
    pred_part = json.loads(json.dumps(c[3]))
    video = sorted(pred_part)[0]
    frame = sorted(pred_part[video])[0]
    pred_part[video][frame]["humans"][0]["box"] = [0, 0, 1e300, 1e300]
    gt_part = json.loads(json.dumps(c[1]))
    gt_part[video][frame]["humans"][0]["box"] = [0, 0, 1e300, 1e300]
    for case in ((c[0], c[1], c[2], pred_part), (c[0], gt_part, c[2], c[3])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = tps_score(*case)
        with np.errstate(over="ignore"):  # the reference casts as the scorer does, warning as it did
            assert result.area_raw == ref.score(*case)["area"]


def test_a_ground_truth_without_videos_is_an_error_naming_its_file(tmp_path):
    c = random_case(np.random.default_rng(5), n_videos=3)
    empty = tmp_path / "gt_vid_result.json"
    empty.write_text("{}")
    with pytest.raises(ScoringError, match=f"^{re.escape(str(empty))} has no videos: nothing to score$"):
        tps_score(empty, *c[1:])


def test_paths_are_accepted(tmp_path):
    c = random_case(np.random.default_rng(5), n_videos=3)
    paths = []
    for name, obj in zip(["gt_vid_result", "gt_part_result", "pred_vid_result", "pred_part_result"], c):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(obj))
        paths.append(p)
    assert tps_score(*paths).area_raw == tps_score(*c).area_raw
    assert tps_score(*map(str, paths)).area_raw == tps_score(*c).area_raw


# ---------------------------------------------------------------------------------------------------
# Details


def test_per_part_details():
    gt = {F1: {"humans": [gt_human(BOX, head=(HEAD, "none"), hip=(HEAD, "bend")),
                          gt_human([100, 100, 150, 150], head=(HEAD, "none"))]},
          F6: {"humans": [gt_human(BOX, left_hand=(HEAD, "hold"))]}}
    pred = {F1: {"humans": [pred_human(BOX, head=[(HEAD, "lift"), (HEAD, "none")], hip=[([7, 7, 9, 9], "bend")])]}}
    r = tps_score(*case(gt, pred), details=True)
    assert r.per_part["frame"].tolist() == [1, 1, 1, 6]  # frame numbers, as in the dataset's tables
    assert r.per_part["frame_key"].tolist() == [F1, F1, F1, F6]
    t = r.per_part.set_index(["frame", "human", "part"])
    assert len(t) == 4
    head = t.loc[(1, 0, "head")]
    assert head.human_matched and head.predicted and head.n_proposals == 2 and head.correct
    assert head.score == 0.5 and head.pred_state == "lift" and head.gt_state == "none"
    hip = t.loc[(1, 0, "hip")]
    assert hip.state_ok and not hip.box_ok and not hip.correct and hip.score == 0
    assert not t.loc[(1, 1, "head")].human_matched
    missing = t.loc[(6, 0, "left_hand")]  # frame absent from the prediction
    assert not missing.human_matched and missing.score == 0
    # The per-part scores rebuild the video PSC: frame 1: 0.5 / 3, frame 6: 0.
    assert r.per_video["psc"].iloc[0] == (0.5 / 3 + 0) / 2


def test_assign_humans_lists_the_pairs():
    c = case({F1: {"humans": [gt_human(BOX), gt_human([100, 100, 150, 150])]}},
             {F1: {"humans": [pred_human([200, 200, 210, 210]), pred_human([0, 0, 9, 4])]}})
    t = assign_humans(c[1], c[3])
    assert t[["gt_human", "pred_human"]].values.tolist() == [[0, 1]]
    assert t["frame"].tolist() == [1] and t["frame_key"].tolist() == [F1]
    assert t["iou"].iloc[0] == np.float32(0.5)


# ---------------------------------------------------------------------------------------------------
# Errors


def test_missing_videos_are_listed():
    c = random_case(np.random.default_rng(0), n_videos=4)
    pred_vid = dict(c[2])
    del pred_vid["vid001"], pred_vid["vid003"]
    with pytest.raises(ScoringError) as e:
        tps_score(c[0], c[1], pred_vid, c[3])
    assert "vid001" in str(e.value) and "vid003" in str(e.value) and "2 ground-truth video" in str(e.value)


def test_video_missing_from_the_part_predictions():
    g1, p1 = _one_part_frame("none")
    c = videos({"a": {F1: g1}, "b": {F1: g1}, "c": {F1: {"humans": []}}}, {"a": {F1: p1}})
    with pytest.raises(ScoringError, match="missing from pred_part_result") as e:
        tps_score(*c)
    assert e.value.problems[0].field == "b" and len(e.value.problems) == 1  # c has no humans: not needed


def test_more_than_ten_humans_in_a_frame():
    g1, _ = _one_part_frame("none")
    many = {"humans": [pred_human([i, i, i + 9, i + 9]) for i in range(11)]}
    c = videos({"a": {F1: g1, F6: g1}}, {"a": {F1: many, F6: many}})
    with pytest.raises(ScoringError, match="more than 10") as e:
        tps_score(*c)
    assert [p.field for p in e.value.problems] == [f"a/{F1}", f"a/{F6}"]


def test_more_than_five_proposals_on_a_scored_part():
    props = [(HEAD, "none")] * 6
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human(BOX, head=props)]}})
    with pytest.raises(ScoringError, match="more than 5 proposals") as e:
        tps_score(*c)
    assert "v/img_00001.json/humans[0].parts.head" in str(e.value)


def test_malformed_boxes_name_their_place():
    c = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
             {F1: {"humans": [pred_human([0, 0, "9", 9]), pred_human([0, 0, 9])]}})
    with pytest.raises(ScoringError) as e:
        tps_score(*c)
    fields = [p.field for p in e.value.problems]
    assert fields == ["v/img_00001.json/humans[0].box", "v/img_00001.json/humans[1].box"]
    nan = case({F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}},
               {F1: {"humans": [pred_human(BOX, head=[([0, 0, float("nan"), 4], "none")])]}})
    with pytest.raises(ScoringError, match="parts.head.box"):
        tps_score(*nan)


def test_mode_mismatch_is_explained():
    single = {F1: {"humans": [{"box": BOX, "parts": {"head": {"box": HEAD, "verb": "none"}}}]}}
    listed = {F1: {"humans": [pred_human(BOX, head=[(HEAD, "none")])]}}
    gt = {F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}}
    with pytest.raises(ScoringError, match="mode='single'"):
        tps_score(*case(gt, single), mode="list")
    with pytest.raises(ScoringError, match="mode='list'"):
        tps_score(*case(gt, listed), mode="single")
    with pytest.raises(ValueError, match="mode"):
        tps_score(*case(gt, listed), mode="multi")


def test_missing_keys_and_bad_thresholds():
    gt = {F1: {"humans": [gt_human(BOX, head=(HEAD, "none"))]}}
    with pytest.raises(ScoringError, match="humans"):
        tps_score(*case(gt, {F1: {"people": []}}))
    with pytest.raises(ScoringError, match="without 'box'"):
        tps_score(*case(gt, {F1: {"humans": [{"parts": {}}]}}))
    with pytest.raises(ScoringError, match="gt_part_result"):
        tps_score({"v": "lunge", "w": "lunge"}, gt, {"v": "lunge", "w": "lunge"}, {})
    with pytest.raises(ValueError, match="human_iou"):
        tps_score(*case(gt, gt), human_iou=1.5)
    with pytest.raises(ScoringError, match="no videos"):
        tps_score({}, {}, {}, {})


def test_metrics_do_not_import_torch_or_models():
    import subprocess
    import sys

    code = ("import sys, tpslab.metrics, tpslab.metrics.analysis, tpslab.submission; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('tpslab.models')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
