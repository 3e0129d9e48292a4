"""The Kinetics-TPS challenge score, computed exactly as the public scorer does, but vectorised.

The score combines part state correctness (PSC) per video with action accuracy: ``acc(t)`` is the
fraction of GT videos whose predicted class is right AND whose PSC is at least ``t``, and the score is
the area under ``acc`` over the thresholds ``t = k/10000, k = 1..9999`` (a perfect submission scores
0.9999). The rules, with the scorer's own quirks, are in ``docs/scoring.md``; the ones that decide the
last digit are:

- IoU on inclusive pixels (``x2 - x1 + 1``); disjoint boxes get IoU ``-1``.
- Human IoUs are float32 at every step (the scorer casts human boxes to float32 and computes with NumPy
  scalars, which stay float32 under NumPy 2; under NumPy 1 its intermediates were float64, which can differ
  for non-integer boxes); part IoUs are float64 (plain Python numbers in the scorer).
- Per GT frame, GT and predicted humans are paired by ``scipy.optimize.linear_sum_assignment`` on
  ``1 - IoU``. A non-square matrix is padded with float64 zeros, a square one stays float32; a pair
  counts when its IoU is strictly above the human threshold, compared in that same precision.
  Ties are broken as SciPy breaks them: frames whose assignment is not provably unique go to SciPy.
- A GT part of a matched human scores ``1/N`` (N predicted proposals for that part name) when some
  proposal has IoU >= part threshold and the same verb; a missing part name scores 0.
- Sums follow the scorer's order: parts per human (GT file order), humans per frame, divided by the
  frame's GT part count; frames in GT order, divided by the number of counted frames. A GT frame
  without humans is dropped; a GT frame missing from the prediction counts 0; a frame whose humans
  have no parts is dropped only when the prediction has it; a video with no counted frame has PSC 1.
  Every sum here is a sequential left-to-right reduction, so the floating-point result is the same.

Input limits (at most 10 predicted humans in a scored frame, 5 proposals for a scored part) are
checked where the public scorer asserts them, and a violation raises :class:`ScoringError` listing
every offending video and frame. Malformed input (a file that is not a JSON object, a box that is not 4
finite numbers (``true``/``false`` are not numbers), a missing key such as the ``parts`` of a matched
human, lists in ``mode="single"``, box and verb lists of different lengths) raises too, naming the video,
frame and field. Like the public scorer, only what the score reads is inspected: the boxes of a predicted
part are read only when one of its verbs is right. ``validate_submission`` in ``tpslab.submission`` checks
everything, with the same judgement: what it accepts scores, what the scorer refuses it refuses.

``mode="single"`` is the 2022 variant: one box and one verb per predicted part (N = 1).

Pairing, and which script revision each choice reproduces (``pairing=``):

- ``"matched"`` (the default, both modes): every GT human is scored against the prediction the assignment
  matched it to. This is the public 2021 script (``xiadingZ/Kinetics-TPS-evaluation``) at its current
  revision, from commit 4cd5815 "fix match pred_human info wrong bug" (merged 2021-06-13, while the
  challenge ran), the 2022 script (``Andy1621/Kinetics-TPS-evaluation``), and the rule as both READMEs
  state it.
- ``"pre-fix-2021"`` (opt-in): the 2021 script *before* that commit, whose ``match_humans`` scored the k-th
  valid match of a frame (in GT order) against the frame's k-th *predicted* human instead of its matched
  one. Use it only to reproduce scores computed before June 2021. It agrees with ``"matched"`` whenever the
  valid matches pair GT human k with predicted human k (predictions listed in GT order, one person per
  frame); with real detector output, whose people come in any order, it does not.

The 2022 script asserts ``len(verb) <= 5`` on the verb *string* of a single-mode part before wrapping it
in a list, so as published it crashes on any scored part whose verb is longer than 5 characters
(``unbend``, ``step_on``, ...). tpslab scores ``mode="single"`` as that script does with its asserts off
(one proposal, N = 1); the limits it means (10 humans, 5 proposals) are checked as in list mode.

The pieces: :mod:`tpslab.challenge` reads the files into columns, :mod:`~tpslab.metrics.kernels` holds the
arithmetic (IoU, assignment, ordered sums), :mod:`~tpslab.metrics.alignment` the part level and
:mod:`~tpslab.metrics.results` the curve and :class:`TPSResult`; this module pairs the humans and sums.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from tpslab.challenge import (BAD_PARTS, GT_VID, MAX_HUMANS, MAX_PROPOSALS, MISSING, MODES, NO_PARTS, PAIRINGS,
                              PRED_VID, SCRIPT_REVISIONS, PartColumns, ScoringError, box_array, box_problem,
                              check_mode, file_label, has_missing, load_json, loads_json, part_columns, ranges,
                              segments, starts_of)
from tpslab.errors import Problem
from tpslab.memory import gc_paused
from tpslab.metrics.alignment import Alignment, align, where_pred
from tpslab.metrics.kernels import OrderedSums, assign_frames, group_sum, iou32
from tpslab.metrics.results import GRID_IOUS, GRID_PSC, STEPS, TPSResult, curve, frame_column

#: The limits under the names this module used first (:data:`tpslab.challenge.MAX_HUMANS`, ...).
HUMAN_LIMIT, PROPOSAL_LIMIT = MAX_HUMANS, MAX_PROPOSALS
#: What ``oracle=`` can replace with the ground truth.
ORACLES = ("humans", "part_boxes", "part_states", "actions")


def _resolve_pairing(pairing: str, legacy_pairing: bool | None = None) -> str:
    """The pairing rule, checked; ``legacy_pairing`` (deprecated) overrides it when given."""
    if legacy_pairing is not None:
        import warnings

        warnings.warn("legacy_pairing is deprecated: pass pairing='pre-fix-2021' (or 'matched', the default)",
                      DeprecationWarning, stacklevel=4)
        pairing = "pre-fix-2021" if legacy_pairing else "matched"
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    return pairing


def _check_threshold(value, name):
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


# ----------------------------------------------------------------------------------------------------
# Videos, frames, humans: what the scorer matches


def video_labels(gt_vid, pred_vid) -> tuple[list, list]:
    """``(labels, predicted)``: the GT class and the predicted class of every GT video, in GT order;
    a ScoringError lists the GT videos missing from ``pred_vid``."""
    missing = [v for v in gt_vid if v not in pred_vid]
    if missing:
        raise ScoringError(f"{len(missing)} ground-truth video(s) are missing from pred_vid_result",
                           [Problem(file_label(pred_vid, PRED_VID), str(v), "video missing") for v in missing])
    return [gt_vid[v] for v in gt_vid], [pred_vid[v] for v in gt_vid]


@dataclass
class _Videos:
    """The GT videos in order, with their classes (None when only humans are matched)."""

    names: list
    labels: list | None = None
    predicted: list | None = None

    @classmethod
    def read(cls, gt_vid, pred_vid, gt: PartColumns, videos=None) -> "_Videos":
        if gt_vid is None:
            out = cls(list(gt.videos) if videos is None else list(videos))
        else:
            gt_vid, pred_vid = load_json(gt_vid, "gt_vid_result"), load_json(pred_vid, "pred_vid_result")
            out = cls(list(gt_vid))
            if not out.names:
                raise ScoringError(f"{file_label(gt_vid, GT_VID)} has no videos: nothing to score")
        missing = [v for v in out.names if v not in gt.video_index]
        if missing:
            raise ScoringError(f"{len(missing)} ground-truth video(s) are missing from gt_part_result",
                               [Problem(gt.file, str(v), "video missing") for v in missing])
        if gt_vid is not None:
            out.labels, out.predicted = video_labels(gt_vid, pred_vid)
        return out

    @property
    def correct(self) -> np.ndarray:
        return np.fromiter(map(operator.eq, self.labels, self.predicted), bool, len(self.names))


@dataclass
class _Frames:
    """GT frames that the scorer matches (GT humans present and the frame in the prediction).

    Per matched frame: ``video`` (index into the GT videos), ``gt`` and ``pred`` (frames of the columns).
    ``counted``: per video, frames in its PSC denominator; ``missing``: GT frames (with humans) absent
    from the prediction, which count 0."""

    video: np.ndarray
    gt: np.ndarray
    pred: np.ndarray
    counted: np.ndarray
    missing: np.ndarray


def _frame_range(cols: PartColumns, v: int) -> np.ndarray:
    return np.arange(cols.frame_start[v], cols.frame_start[v] + max(int(cols.video_frames[v]), 0))


class _FrameMatcher:
    """Walks the GT videos in order, as the scorer's loop over videos does, collecting what is wrong."""

    def __init__(self, names: list, gt: PartColumns, pred: PartColumns):
        self.names, self.gt, self.pred = names, gt, pred
        self.counted = np.zeros(len(names), dtype=np.int64)
        self.matched, self.missing, self.missing_video, self.bad = [], [], [], []

    def video(self, v: int, video) -> None:
        gt, pred = self.gt, self.pred
        gv = gt.video_index[video]
        if gt.video_frames[gv] < 0:
            self.bad.append(Problem(gt.file, str(video), "expected an object of frames"))
            return
        frames = _frame_range(gt, gv)
        humans = gt.frame_humans[frames]
        if (humans < 0).any():
            self.bad += [Problem(gt.file, gt.where_frame(f), "expected {'humans': [...]}")
                         for f in frames[humans < 0].tolist()]
            return
        scored = frames[humans > 0]
        self.counted[v] = len(scored)
        if not len(scored):
            return
        pv = pred.video_index.get(video)
        if pv is None:
            self.missing_video.append(video)
        elif pred.video_frames[pv] < 0:
            self.bad.append(Problem(pred.file, str(video), "expected an object of frames"))
        else:
            self.present(v, video, scored, _frame_range(pred, pv))

    def present(self, v: int, video, scored: np.ndarray, pred_frames: np.ndarray) -> None:
        keys = dict(zip(map(self.pred.frame_key.__getitem__, pred_frames.tolist()), pred_frames.tolist()))
        pf = np.fromiter(map(keys.get, map(self.gt.frame_key.__getitem__, scored.tolist()), [-1] * len(scored)),
                         np.int64, len(scored))
        self.missing.append(scored[pf < 0])
        scored, pf = scored[pf >= 0], pf[pf >= 0]
        bad = self.pred.frame_humans[pf] < 0
        if bad.any():
            self.bad += [Problem(self.pred.file, f"{video}/{self.gt.frame_key[f]}", "expected {'humans': [...]}")
                         for f in scored[bad].tolist()]
            return
        self.matched.append((np.full(len(scored), v, dtype=np.int64), scored, pf))

    def result(self) -> _Frames:
        if self.missing_video:
            raise ScoringError(f"{len(self.missing_video)} ground-truth video(s) with annotated humans are missing "
                               "from pred_part_result",
                               [Problem(self.pred.file, str(v), "video missing") for v in self.missing_video])
        if self.bad:
            raise ScoringError(f"{len(self.bad)} malformed frame(s)", self.bad)
        video, gt, pred = (np.concatenate(c) if c else np.zeros(0, np.int64) for c in zip(*self.matched)) \
            if self.matched else (np.zeros(0, np.int64),) * 3
        missing = np.concatenate(self.missing) if self.missing else np.zeros(0, np.int64)
        return _within_limit(self.names, self.gt, self.pred, _Frames(video, gt, pred, self.counted, missing))


def _within_limit(names: list, gt: PartColumns, pred: PartColumns, frames: _Frames) -> _Frames:
    over = np.nonzero(pred.frame_humans[frames.pred] > MAX_HUMANS)[0]
    if len(over):
        raise ScoringError(f"{len(over)} frame(s) have more than {MAX_HUMANS} predicted humans", [
            Problem(pred.file, f"{names[frames.video[i]]}/{gt.frame_key[frames.gt[i]]}",
                    f"{pred.frame_humans[frames.pred[i]]} humans, at most {MAX_HUMANS} allowed") for i in over])
    return frames


def _match_frames(names: list, gt: PartColumns, pred: PartColumns) -> _Frames:
    """The GT frames the scorer matches, all videos at once; when something is wrong, the scorer's loop
    over the videos (:class:`_FrameMatcher`) says what, in its order."""
    gv = np.fromiter(map(gt.video_index.__getitem__, names), np.int64, len(names))
    nf = np.maximum(gt.video_frames[gv], 0)
    frames = ranges(gt.frame_start[gv], nf)  # GT frames of the videos, in video order
    scored = gt.frame_humans[frames] > 0
    video = np.repeat(np.arange(len(names)), nf)[scored]
    pv = np.fromiter(map(pred.video_index.get, names, repeat(-1)), np.int64, len(names))
    used = np.unique(video)
    if (gt.video_frames[gv] < 0).any() or (gt.frame_humans[frames] < 0).any() or (pv[used] < 0).any() \
            or (pred.video_frames[pv[used]] < 0).any():
        return _loop_frames(names, gt, pred)
    lookup = dict(zip(zip(pred.frame_video.tolist(), pred.frame_key), range(len(pred.frame_key))))
    frames = frames[scored]
    keys = zip(pv[video].tolist(), map(gt.frame_key.__getitem__, frames.tolist()))
    pf = np.fromiter(map(lookup.get, keys, repeat(-1)), np.int64, len(frames))
    present = pf >= 0
    if (pred.frame_humans[pf[present]] < 0).any():
        return _loop_frames(names, gt, pred)
    counted = np.bincount(video, minlength=len(names))
    return _within_limit(names, gt, pred, _Frames(video[present], frames[present], pf[present], counted,
                                                  frames[~present]))


def _loop_frames(names: list, gt: PartColumns, pred: PartColumns) -> _Frames:
    matcher = _FrameMatcher(names, gt, pred)
    for v, video in enumerate(names):
        matcher.video(v, video)
    return matcher.result()


def _human_boxes(cols: PartColumns, humans: np.ndarray) -> np.ndarray:
    """float32 (n, 4) boxes of ``humans`` (column indices), checked as the scorer reads them."""
    clean = cols.clean_human_boxes(humans)
    if clean is None:
        boxes = cols.human_box_values(humans)
        if has_missing(boxes):
            raise ScoringError(f"humans without 'box' in {cols.file}", [
                Problem(cols.file, cols.where_human(h) + ".box", "missing")
                for h, b in zip(humans.tolist(), boxes) if b is MISSING])
        clean = box_array(boxes, lambda i: cols.where_human(int(humans[i])) + ".box", cols.file)
    with np.errstate(over="ignore"):  # beyond float32's range a coordinate is infinite, as in the scorer
        return clean.astype(np.float32)


@dataclass
class _Humans:
    """The humans of the matched frames, GT and predicted: column indices, counts per frame, boxes."""

    gt: np.ndarray
    pred: np.ndarray
    gt_count: np.ndarray
    pred_count: np.ndarray
    gt_box: np.ndarray
    pred_box: np.ndarray

    @classmethod
    def read(cls, frames: _Frames, gt: PartColumns, pred: PartColumns) -> "_Humans":
        g, p = gt.humans_of(frames.gt), pred.humans_of(frames.pred)
        out = cls(g, p, gt.frame_humans[frames.gt], pred.frame_humans[frames.pred],
                  _human_boxes(gt, g), _human_boxes(pred, p))
        counts = gt.human_parts[g]
        if (counts == NO_PARTS).any():
            raise ScoringError("ground-truth humans without 'parts'", [
                Problem(gt.file, gt.where_human(h) + ".parts", "missing") for h in g[counts == NO_PARTS].tolist()])
        if (counts == BAD_PARTS).any():
            h = int(g[np.argmax(counts == BAD_PARTS)])
            suffix, message = gt.parts_problems[h]
            raise ScoringError(f"malformed parts in {gt.file}", [Problem(gt.file, gt.where_human(h) + suffix, message)])
        return out

    @property
    def gt_start(self) -> np.ndarray:
        return starts_of(self.gt_count)

    @property
    def pred_start(self) -> np.ndarray:
        return starts_of(self.pred_count)

    @property
    def gt_frame(self) -> np.ndarray:
        """The matched frame of each GT human."""
        return np.repeat(np.arange(len(self.gt_count)), self.gt_count)


class _Denominators:
    """What the sums of every score share: GT parts per matched frame, the frames kept (those with parts:
    a frame whose humans have none leaves its video's denominator), frames counted per video, and the
    ordered sums of humans per frame and of kept frames per video."""

    def __init__(self, frames: _Frames, humans: _Humans, gt_nparts: np.ndarray, n_videos: int):
        self.frame_nparts = np.bincount(humans.gt_frame, weights=gt_nparts, minlength=len(frames.gt)).astype(np.int64)
        self.keep = self.frame_nparts > 0
        self.counted = frames.counted - np.bincount(frames.video[~self.keep], minlength=n_videos)
        self.per_frame = OrderedSums(humans.gt_count)
        self.per_video = OrderedSums(np.bincount(frames.video[self.keep], minlength=n_videos))


@dataclass
class _Pairs:
    """The assignment's pairs of overlapping boxes, all frames: GT and predicted human (positions in
    :class:`_Humans`), their frame, IoU (float32) and whether the frame's matrix was square."""

    g: np.ndarray
    p: np.ndarray
    frame: np.ndarray
    iou: np.ndarray
    square: np.ndarray

    @classmethod
    def assign(cls, humans: _Humans, gt: PartColumns, pred: PartColumns) -> "_Pairs":
        g, p = humans.gt_count, humans.pred_count
        f_of_pair, k = segments(g * p)
        gglob = humans.gt_start[f_of_pair] + k // p[f_of_pair]
        pglob = humans.pred_start[f_of_pair] + k % p[f_of_pair]
        iou, zero_union = iou32(humans.gt_box[gglob], humans.pred_box[pglob])
        if zero_union.any():
            raise ScoringError("human boxes with an empty union (the scorer would divide by zero)", [
                Problem(pred.file, pred.where_human(int(humans.pred[pglob[i]])) + ".box",
                        f"union with GT {gt.where_human(int(humans.gt[gglob[i]]))} is 0")
                for i in np.nonzero(zero_union)[0]])
        assigned = assign_frames(iou, g, p)
        gidx = np.nonzero(assigned >= 0)[0]
        frame = humans.gt_frame[gidx]
        local_p = assigned[gidx]
        pair_iou = iou[starts_of(g * p)[frame] + (gidx - humans.gt_start[frame]) * p[frame] + local_p]
        keep = pair_iou > np.float32(-1)  # pairs of disjoint boxes never count
        frame = frame[keep]
        return cls(g=gidx[keep], p=humans.pred_start[frame] + local_p[keep], frame=frame, iou=pair_iou[keep],
                   square=g[frame] == p[frame])

    def valid(self, human_iou: float) -> np.ndarray:
        """Which pairs count at this human threshold, compared in the scorer's precision."""
        return np.where(self.square, self.iou > np.float32(human_iou), self.iou.astype(np.float64) > human_iou)


# ----------------------------------------------------------------------------------------------------
# The scorer


class TPSScorer:
    """A submission flattened and matched once, to score at any thresholds or with oracle substitutions.

    ``TPSScorer(gt_vid, gt_part, pred_vid, pred_part, mode="list")`` checks and flattens the input (same
    errors as :func:`tps_score`); ``.score(human_iou, part_iou, details=False, oracle=())`` gives a
    :class:`TPSResult`. The human assignment does not depend on the thresholds, so it is computed once.
    The part files may be dicts, paths, JSON text or :class:`~tpslab.challenge.PartColumns`.
    """

    def __init__(self, gt_vid, gt_part, pred_vid, pred_part, mode="list", pairing="matched", videos=None, *,
                 legacy_pairing=None):
        """``gt_vid=None`` prepares the human matching only (for ``videos``, default all of ``gt_part``)."""
        self.pairing = _resolve_pairing(pairing, legacy_pairing)
        self.mode = check_mode(mode)
        with gc_paused():
            self.gt = part_columns(gt_part, "gt_part_result", "single")
            self.pred = part_columns(pred_part, "pred_part_result", mode)
            self.videos = _Videos.read(gt_vid, pred_vid, self.gt, videos)
            self.frames = _match_frames(self.videos.names, self.gt, self.pred)
            self.humans = _Humans.read(self.frames, self.gt, self.pred)
            self.pairs = _Pairs.assign(self.humans, self.gt, self.pred)
            self.gt_nparts = self.gt.human_parts[self.humans.gt]  # GT parts of each human of the matched frames
            self._denominators = _Denominators(self.frames, self.humans, self.gt_nparts, len(self.videos.names))
        self._aligned = {}
        self._supersets = []

    @property
    def legacy_pairing(self) -> bool:
        """True when humans are paired as the 2021 script before its fix (``pairing="pre-fix-2021"``)."""
        return self.pairing == "pre-fix-2021"

    def valid_pairs(self, human_iou: float):
        """(GT human, predicted human) pairs (positions among the matched frames' humans) that count at
        this human threshold."""
        pairs = self.pairs
        valid = pairs.valid(human_iou)
        g, p, frame = pairs.g[valid], pairs.p[valid], pairs.frame[valid]
        if self.legacy_pairing and len(g):
            # The i-th valid match of a frame (GT order) takes the frame's i-th predicted human.
            _, rank = segments(np.bincount(frame, minlength=len(self.frames.gt))[np.unique(frame)])
            p = self.humans.pred_start[frame] + rank
        return g, p

    def prepare(self, human_iou: float | None = None, full: bool = False) -> None:
        """Read the parts of every pair valid at ``human_iou`` (default: every pair of overlapping boxes, as
        the ``humans`` oracle uses) once, so that scores at higher thresholds only select from them.

        ``full`` also reads the boxes the details and the part oracles need. Without it each threshold
        reads its own pairs on first use, exactly those the public scorer looks at."""
        mask = np.ones(len(self.pairs.g), bool) if human_iou is None else \
            self.pairs.valid(_check_threshold(human_iou, "human_iou"))
        with gc_paused():
            self._aligned_for(mask, full)

    def _align(self, g: np.ndarray, p: np.ndarray, full: bool) -> Alignment:
        """:func:`~tpslab.metrics.alignment.align` of pairs ``g``, ``p`` (positions), cached."""
        key = (g.tobytes(), p.tobytes(), full)
        if key not in self._aligned:
            self._aligned[key] = align(self.gt, self.pred, self.humans.gt[g], self.humans.pred[p], self.mode, full)
        return self._aligned[key]

    def _aligned_for(self, mask: np.ndarray, full: bool) -> Alignment:
        """Aligned part data of the assignment pairs in ``mask``, cut from a prepared superset if any."""
        for have, have_full, aligned in self._supersets:
            if (have_full or not full) and not (mask & ~have).any():
                return aligned.select(mask[have])
        aligned = self._align(self.pairs.g[mask], self.pairs.p[mask], full)
        self._supersets.append((mask, full, aligned))
        return aligned

    # -- scores -----------------------------------------------------------------------------------

    def part_scores(self, human_iou: float, part_iou: float, full: bool = False, oracle=frozenset()):
        """Per GT part of the counted pairs: its score, with the arrays the details need.

        Returns ``(g, al, score, box_ok, same)``: the GT humans of the pairs (positions), their aligned part
        data, the score of every aligned GT part, and per proposal whether its box reaches the part IoU and
        its verb is right.
        """
        full = full or bool(oracle & {"part_boxes", "part_states"})
        if "humans" in oracle:
            mask = np.ones(len(self.pairs.g), bool)  # every pair of overlapping boxes, as if the box were exact
        elif not self.legacy_pairing:
            mask = self.pairs.valid(human_iou)
        if "humans" in oracle or not self.legacy_pairing:
            g, al = self.pairs.g[mask], self._aligned_for(mask, full)
        else:
            g, p = self.valid_pairs(human_iou)
            al = self._align(g, p, full)
        over = np.nonzero(al.nprop > MAX_PROPOSALS)[0]
        if len(over):
            raise ScoringError(f"{len(over)} scored part(s) have more than {MAX_PROPOSALS} proposals",
                               [Problem(self.pred.file, where_pred(al, self.gt, self.pred, int(i)),
                                        f"{al.nprop[i]} proposals") for i in over])
        box_ok = al.prop_iou >= part_iou if "part_boxes" not in oracle else np.ones(len(al.prop_iou), bool)
        same = al.prop_same if "part_states" not in oracle else np.ones(len(al.prop_same), bool)
        correct = np.bincount(al.prop_part[box_ok & same], minlength=len(al.nprop)) > 0
        score = np.where(correct, 1.0 / np.maximum(al.nprop, 1), 0.0)
        return g, al, score, box_ok, same

    def score(self, human_iou: float = 0.5, part_iou: float = 0.3, details: bool = False,
              oracle=()) -> TPSResult:
        """The score at these thresholds; see :func:`tps_score` for ``details`` and ``oracle``."""
        with gc_paused():
            return self._score(human_iou, part_iou, details, oracle)

    def _psc(self, g: np.ndarray, al: Alignment, score: np.ndarray) -> np.ndarray:
        """Per video PSC: part scores summed per human, humans per frame, frames per video, in order."""
        human_sum = np.zeros(len(self.humans.gt), dtype=np.float64)
        human_sum[g] = group_sum(score, al.nparts)
        d = self._denominators
        frame_value = d.per_frame(human_sum)[d.keep] / d.frame_nparts[d.keep]
        counted = d.counted
        return np.where(counted > 0, d.per_video(frame_value) / np.maximum(counted, 1), 1.0)

    def _score(self, human_iou, part_iou, details, oracle) -> TPSResult:
        human_iou = _check_threshold(human_iou, "human_iou")
        part_iou = _check_threshold(part_iou, "part_iou")
        oracle = frozenset(oracle)
        unknown = oracle - set(ORACLES)
        if unknown:
            raise ValueError(f"unknown oracle(s) {sorted(unknown)}; known: {ORACLES}")
        g, al, score, box_ok, same = self.part_scores(human_iou, part_iou, full=details, oracle=oracle)
        psc = self._psc(g, al, score)
        videos = self.videos
        correct = videos.correct if "actions" not in oracle else np.ones(len(videos.names), bool)
        predicted = videos.predicted if "actions" not in oracle else videos.labels
        thresholds, acc, area_raw = curve(psc, correct)

        def per_video():
            import pandas as pd

            return pd.DataFrame({"video": videos.names, "psc": psc, "correct": correct,
                                 "label": videos.labels, "predicted": predicted})

        result = TPSResult(area=round(area_raw, 6), area_raw=area_raw, accuracy=float(correct.mean()),
                           mean_psc=float(psc.mean()), per_video=per_video, thresholds=thresholds, acc=acc,
                           human_iou=human_iou, part_iou=part_iou, mode=self.mode, pairing=self.pairing,
                           psc=psc, correct=correct)
        if details:
            result.per_part = _PerPart(self).table(g, al, score, box_ok, same)
        return result

    def grid(self, human_ious=GRID_IOUS, part_ious=GRID_IOUS, psc_thresholds=GRID_PSC):
        """One row per (human IoU, part IoU): see :func:`tps_grid`."""
        import pandas as pd

        if not self.legacy_pairing and len(human_ious):
            self.prepare(min(human_ious))
        rows = []
        for hi in human_ious:
            for pi in part_ious:
                r = self.score(hi, pi)
                row = {"human_iou": hi, "part_iou": pi, "area": r.area, "area_raw": r.area_raw,
                       "accuracy": r.accuracy, "mean_psc": r.mean_psc}
                row.update({f"acc@{t:g}": r.acc_at(t) for t in psc_thresholds})
                rows.append(row)
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------
# Details


class _PerPart:
    """The ``per_part`` table: one row per GT part of every counted frame."""

    def __init__(self, scorer: TPSScorer):
        self.scorer = scorer

    def table(self, g, al: Alignment, score, box_ok, same):
        """Rows of the matched frames (frame, human and part order), then those of the frames missing
        from the prediction."""
        import pandas as pd

        table = pd.concat([self._matched(g, al, score, box_ok, same), self._missing()], ignore_index=True)
        table.insert(1, "frame", frame_column(table["frame_key"].tolist()))
        return table.reset_index(drop=True)

    def _aligned_position(self, g, al: Alignment) -> np.ndarray:
        """Per GT part of the matched frames, its position among the aligned parts (-1: human not paired)."""
        nparts = self.scorer.gt_nparts
        pair_of = np.full(len(nparts), -1, dtype=np.int64)
        pair_of[g] = np.arange(len(g))
        pair = pair_of[np.repeat(np.arange(len(nparts)), nparts)]
        return np.where(pair >= 0, starts_of(al.nparts)[np.maximum(pair, 0)] + segments(nparts)[1], -1)

    def _matched(self, g, al: Alignment, score, box_ok, same):
        import pandas as pd

        s, humans = self.scorer, self.scorer.humans
        aligned = self._aligned_position(g, al)
        m = aligned >= 0

        def per_part(values, fill):
            out = np.full(len(aligned), fill, dtype=np.asarray(values).dtype)
            out[m] = values[aligned[m]]
            return out

        hit = [np.bincount(al.prop_part[ok], minlength=len(al.nprop)) > 0 for ok in (box_ok, same, box_ok & same)]
        nprop = per_part(al.nprop, 0)
        pred_state = np.full(len(aligned), None, dtype=object)
        first = starts_of(al.nprop)[aligned[nprop > 0]]  # first proposal of each predicted part
        pred_state[nprop > 0] = [al.verbs[i] for i in al.verb_index[first].tolist()]
        table = self._gt_columns(humans.gt, s.videos.names, s.frames.video[humans.gt_frame])
        table.update(human_matched=m, predicted=nprop > 0, n_proposals=nprop, box_ok=per_part(hit[0], False),
                     state_ok=per_part(hit[1], False), correct=per_part(hit[2], False),
                     score=per_part(score, 0.0), pred_state=pred_state)
        return pd.DataFrame(table)

    def _gt_columns(self, humans: np.ndarray, names: list, human_video: np.ndarray) -> dict:
        """``video, frame_key, human, part, gt_state`` of the parts of GT ``humans`` (``human_video``:
        the index in ``names`` of each human's video)."""
        gt = self.scorer.gt
        parts = gt.parts_of(humans)
        owner = gt.part_human[parts]
        frame = gt.human_frame[owner]
        video = np.repeat(human_video, np.maximum(gt.human_parts[humans], 0))
        return {"video": [names[v] for v in video.tolist()],
                "frame_key": [gt.frame_key[f] for f in frame.tolist()],
                "human": owner - gt.human_start[frame],
                "part": [gt.part_name[i] for i in parts.tolist()],
                "gt_state": [None if v is MISSING else v for v in gt.part_verb_values(parts)]}

    def _missing(self):
        """Parts of GT frames absent from the prediction: counted, never matched."""
        import pandas as pd

        s, gt = self.scorer, self.scorer.gt
        humans = gt.humans_of(s.frames.missing)
        bad = gt.human_parts[humans] == BAD_PARTS
        if bad.any():
            h = int(humans[np.argmax(bad)])
            suffix, message = gt.parts_problems[h]
            raise ScoringError(f"malformed parts in {gt.file}", [Problem(gt.file, gt.where_human(h) + suffix, message)])
        table = pd.DataFrame(self._gt_columns(humans, gt.videos, gt.frame_video[gt.human_frame[humans]]))
        for col, val in (("human_matched", False), ("predicted", False), ("n_proposals", 0), ("box_ok", False),
                         ("state_ok", False), ("correct", False), ("score", 0.0)):
            table[col] = val
        table["pred_state"] = None
        return table


# ----------------------------------------------------------------------------------------------------
# Public API


def tps_score(gt_vid, gt_part, pred_vid, pred_part, human_iou: float = 0.5, part_iou: float = 0.3,
              mode: str = "list", *, pairing: str = "matched", details: bool = False,
              oracle=(), legacy_pairing: bool | None = None) -> TPSResult:
    """The official Kinetics-TPS score of a submission.

    ``gt_vid``/``pred_vid`` are ``{video: class}``; ``gt_part``/``pred_part`` are
    ``{video: {"img_00001.json": {"humans": [{"box": b, "parts": {name: {"box": ..., "verb": ...}}}]}}}``,
    given as dicts (as loaded) or as paths to the JSON files (read straight into columns). Predicted parts
    hold lists (``{"box": [b1, b2], "verb": [s1, s2]}``, up to 5 proposals) in ``mode="list"`` and one box
    and one verb in ``mode="single"`` (the 2022 scorer). Parts may also be given in the raw list form
    (``[{"name": ..., "box": ..., "verb": ...}]``). Thresholds must lie in [0, 1].

    With ``details=True`` the result also has ``per_part``: one row per GT part of every counted frame
    with ``video, frame`` (the frame number, as in the dataset's tables), ``frame_key`` (``img_00001.json``),
    ``human, part, gt_state, human_matched, predicted, n_proposals, box_ok`` (some proposal reaches the part
    IoU), ``state_ok`` (some proposal has the GT verb), ``correct`` (one proposal has both), ``score`` (its
    contribution, 1/N or 0) and ``pred_state`` (first proposal's verb).

    ``oracle`` replaces parts of the prediction with the ground truth (for error analysis; any of
    :data:`ORACLES`): ``"humans"``: every GT human that the assignment paired with an overlapping
    prediction counts as matched, as if the predicted box were exact; ``"part_boxes"``: every proposal of
    a predicted part with a GT name gets the GT box; ``"part_states"``: ... the GT verb; ``"actions"``:
    every video's class is right. Missing humans, parts and frames stay missing.

    ``pairing``: ``"matched"`` (default) scores each GT human against its matched prediction, as the
    public 2021 script since commit 4cd5815 (2021-06-13, its current revision) and the 2022 script do;
    ``"pre-fix-2021"`` reproduces the 2021 script before that fix (see the module docstring).
    ``legacy_pairing`` is the deprecated spelling (True: ``"pre-fix-2021"``, False: ``"matched"``).

    Raises :class:`ScoringError` (a ``ValueError``) listing every offending video/frame for GT videos
    missing from the prediction, over-limit frames or parts, and malformed input.
    """
    scorer = TPSScorer(gt_vid, gt_part, pred_vid, pred_part, mode=mode, pairing=pairing,
                       legacy_pairing=legacy_pairing)
    return scorer.score(human_iou, part_iou, details=details, oracle=oracle)


def tps_grid(gt_vid, gt_part, pred_vid, pred_part, human_ious=GRID_IOUS, part_ious=GRID_IOUS,
             mode: str = "list", *, pairing: str = "matched", psc_thresholds=GRID_PSC,
             legacy_pairing: bool | None = None):
    """The grid the public script prints: for every (human IoU, part IoU), the area and acc(t).

    Returns a DataFrame with columns ``human_iou, part_iou, area, area_raw, accuracy, mean_psc`` and one
    ``acc@t`` column per PSC threshold ``t``. The submission is flattened and matched once.
    """
    scorer = TPSScorer(gt_vid, gt_part, pred_vid, pred_part, mode=mode, pairing=pairing,
                       legacy_pairing=legacy_pairing)
    return scorer.grid(human_ious, part_ious, psc_thresholds)


def assign_humans(gt_part, pred_part, videos=None):
    """The scorer's human assignment, threshold-free: one row per GT human paired with a prediction.

    Columns ``video, frame`` (the frame number), ``frame_key`` (``img_00001.json``), ``gt_human,
    pred_human, iou`` (float32 IoU as the scorer computes it; pairs of disjoint boxes, IoU -1, are not
    listed). Only frames the scorer matches appear (GT humans present and the frame in the prediction).
    ``videos`` restricts to those videos (default: all of ``gt_part``).
    """
    import pandas as pd

    prep = TPSScorer(None, gt_part, None, pred_part, videos=videos)
    pairs, humans = prep.pairs, prep.humans
    keys = [prep.gt.frame_key[f] for f in prep.frames.gt[pairs.frame].tolist()]
    return pd.DataFrame({
        "video": [prep.videos.names[v] for v in prep.frames.video[pairs.frame].tolist()],
        "frame": frame_column(keys),
        "frame_key": keys,
        "gt_human": pairs.g - humans.gt_start[pairs.frame],
        "pred_human": pairs.p - humans.pred_start[pairs.frame],
        "iou": pairs.iou,
    })


__all__ = ["GRID_IOUS", "GRID_PSC", "HUMAN_LIMIT", "MAX_HUMANS", "MAX_PROPOSALS", "MODES", "ORACLES", "PAIRINGS",
           "PROPOSAL_LIMIT", "SCRIPT_REVISIONS", "STEPS", "ScoringError", "TPSResult", "TPSScorer", "assign_humans",
           "box_problem", "curve", "load_json", "loads_json", "tps_grid", "tps_score", "video_labels"]
