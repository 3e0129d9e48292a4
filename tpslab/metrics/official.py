"""The Kinetics-TPS challenge score, computed exactly as the public scorer does, but vectorised.

The score combines part state correctness (PSC) per video with action accuracy: ``acc(t)`` is the
fraction of GT videos whose predicted class is right AND whose PSC is at least ``t``, and the score is
the area under ``acc`` over the thresholds ``t = k/10000, k = 1..9999`` (a perfect submission scores
0.9999). The rules, with the scorer's own quirks, are in ``shared/docs/kinetics-tps.md``; the ones that
decide the last digit are:

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
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from itertools import chain, compress, repeat
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tpslab.errors import Problem
from tpslab.memory import gc_paused

HUMAN_LIMIT = 10
PROPOSAL_LIMIT = 5
STEPS = 10000
#: The IoU thresholds of the grid the public script prints (human x part).
GRID_IOUS = (0.001, 0.3, 0.5, 0.9, 0.99)
#: The PSC thresholds at which the public script prints acc(t) for each grid cell.
GRID_PSC = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MODES = ("list", "single")
#: How GT humans are paired with predictions: ``matched`` (default; the scripts' current revisions) or
#: ``pre-fix-2021`` (the 2021 script before commit 4cd5815, 2021-06-13); see the module docstring.
PAIRINGS = ("matched", "pre-fix-2021")
#: The public script revision that each (mode, pairing) reproduces, in words.
SCRIPT_REVISIONS = {
    ("list", "matched"): "xiadingZ/Kinetics-TPS-evaluation (2021) at 4cd5815 and later (current head)",
    ("list", "pre-fix-2021"): "xiadingZ/Kinetics-TPS-evaluation (2021) before 4cd5815 (before 2021-06-13)",
    ("single", "matched"): "Andy1621/Kinetics-TPS-evaluation (2022), its asserts off",
    ("single", "pre-fix-2021"): "no public script: the 2021 pre-fix pairing on the 2022 single format",
}
#: What ``oracle=`` can replace with the ground truth.
ORACLES = ("humans", "part_boxes", "part_states", "actions")

# Two costs closer than this are treated as a possible tie and left to SciPy (costs lie in [0, 2];
# SciPy's own rounding is around 1e-15).
_TIE_TOL = 1e-9
# Items per block when flattening: each block is read in several C-level passes (map, chain, fromiter), and a
# block small enough to stay in cache makes the later passes cheap.
_CHUNK = 4096
_MAX_LISTED = 20

_get_box = operator.itemgetter("box")
_get_verb = operator.itemgetter("verb")
_get_parts = operator.itemgetter("parts")
_get_humans = operator.itemgetter("humans")


class ScoringError(ValueError):
    """Input the scorer cannot score. ``problems`` lists each offending place (file, field, message)."""

    def __init__(self, summary: str, problems=()):
        self.problems = list(problems)
        lines = [summary] + [f"  {p.path}: {p.field}: {p.message}" for p in self.problems[:_MAX_LISTED]]
        if len(self.problems) > _MAX_LISTED:
            lines.append(f"  ... and {len(self.problems) - _MAX_LISTED} more")
        super().__init__("\n".join(lines))


# ----------------------------------------------------------------------------------------------------
# Results


@dataclass
class TPSResult:
    """The score of one submission.

    ``area`` is rounded to 6 decimals like the leaderboard, ``area_raw`` is the unrounded sum.
    ``accuracy`` is plain top-1 video accuracy and ``mean_psc`` the mean of the per-video PSC.
    ``per_video`` has columns ``video, psc, correct, label, predicted`` in GT order.
    ``thresholds``/``acc`` are the curve (k/10000 for k = 1..9999). ``per_part`` (only with
    ``details=True``) has one row per GT part of every counted frame, see :func:`tps_score`.
    """

    area: float
    area_raw: float
    accuracy: float
    mean_psc: float
    per_video: Any
    thresholds: np.ndarray
    acc: np.ndarray
    human_iou: float = 0.5
    part_iou: float = 0.3
    mode: str = "list"
    per_part: Any = None
    pairing: str = "matched"

    def acc_at(self, t: float) -> float:
        """acc(t): share of GT videos that are correct with PSC >= t (any t, like the public script)."""
        pv = self.per_video
        return float(np.count_nonzero((pv["psc"].to_numpy() >= t) & pv["correct"].to_numpy())) / len(pv)

    def summary(self) -> dict:
        return {"area": self.area, "area_raw": self.area_raw, "accuracy": self.accuracy,
                "mean_psc": self.mean_psc, "videos": int(len(self.per_video)),
                "human_iou": self.human_iou, "part_iou": self.part_iou, "mode": self.mode,
                "pairing": self.pairing, "reproduces": SCRIPT_REVISIONS[(self.mode, self.pairing)]}

    def __str__(self) -> str:
        return (f"TPS score {self.area:.6f} (accuracy {self.accuracy:.4f}, mean PSC {self.mean_psc:.4f}, "
                f"{len(self.per_video)} videos, human IoU {self.human_iou}, part IoU {self.part_iou}, "
                f"mode {self.mode}, {self.pairing} pairing)")


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


# ----------------------------------------------------------------------------------------------------
# Input loading and small helpers


def _json_kind(obj) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true/false"
    if isinstance(obj, (int, float)):
        return "a number"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, (list, tuple)):
        return "a list"
    return type(obj).__name__


def _expect_object(obj, name: str):
    """``obj`` when it is a JSON object (a mapping); else a ScoringError saying what it is."""
    if not isinstance(obj, Mapping):
        raise ScoringError(f"{name}: expected a JSON object {{...}}, got {_json_kind(obj)}")
    return obj


def loads_json(data, name: str = "input"):
    """Parse JSON text (bytes, bytearray or str) with orjson, the garbage collector paused.

    Every file of the challenge holds one JSON object: anything else (a list, a number, ...) raises
    :class:`ScoringError` naming ``name`` and what it holds."""
    import orjson

    try:
        with gc_paused():
            obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ScoringError(f"{name} is not valid JSON: {e}") from None
    return _expect_object(obj, name)


def load_json(obj, name: str = "input"):
    """``obj`` itself when it is a mapping, else the JSON file at path ``obj`` (which must hold an object).

    A JSON value that is not an object (a list, a number, ``None``, ...) raises :class:`ScoringError`."""
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, (str, Path)):
        path = Path(obj)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ScoringError(f"cannot read {name} from {path}: {e}") from e
        return loads_json(data, f"{name} ({path})")
    if obj is None or isinstance(obj, (list, tuple, int, float)):
        return _expect_object(obj, name)
    raise TypeError(f"{name} must be a dict (as loaded from JSON) or a path, got {type(obj).__name__}")


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


def _is_number(v) -> bool:
    """A finite int or float; not a bool (JSON ``true`` is not a coordinate, though bool subclasses int)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def box_problem(box) -> str | None:
    """What is wrong with one box (it must be a list of 4 finite numbers), or None."""
    if not isinstance(box, (list, tuple)):
        return f"expected a box [x1, y1, x2, y2], got {type(box).__name__}"
    if len(box) != 4:
        return f"expected 4 numbers, got {len(box)}"
    if not all(_is_number(v) for v in box):
        return f"expected 4 finite numbers, got {box!r}"
    return None


_JSON_NUMBERS = frozenset((int, float))


def _boxes_fast(boxes: list):
    """(n, 4) float64 array when every box is a list of 4 finite JSON numbers, else None (look closer).

    Only ``int`` and ``float`` pass: ``bool``, ``str`` and ``None``, which ``np.fromiter`` would silently
    convert, do not (nor tuples or NumPy scalars, which :func:`box_problem` then accepts)."""
    n = len(boxes)
    try:
        lengths = np.fromiter(map(list.__len__, boxes), np.int64, n)  # TypeError for anything but lists
    except TypeError:
        return None
    if n and (lengths.min() != 4 or lengths.max() != 4):
        return None
    flat = list(chain.from_iterable(boxes))
    if not _JSON_NUMBERS.issuperset(map(type, flat)):
        return None
    try:
        arr = np.fromiter(flat, np.float64, 4 * n).reshape(n, 4)
    except OverflowError:  # an int beyond the float range
        return None
    return arr if np.isfinite(arr).all() else None


def box_problems(boxes: list) -> list:
    """``(index, what is wrong)`` for every malformed box of ``boxes`` (see :func:`box_problem`).

    The check the scorer makes, in blocks: quick when every box is well formed."""
    found = []
    for s in range(0, len(boxes), _CHUNK):
        block = boxes[s:s + _CHUNK]
        if _boxes_fast(block) is None:
            found += [(s + i, msg) for i, msg in enumerate(map(box_problem, block)) if msg]
    return found


def _box_array(boxes: list, where, file: str) -> np.ndarray:
    """(n, 4) float64 array of a list of boxes; on any malformed box, a ScoringError listing them."""
    if len(boxes) > _CHUNK:
        return np.concatenate([_box_array(boxes[s:s + _CHUNK], lambda i, s=s: where(s + i), file)
                               for s in range(0, len(boxes), _CHUNK)])
    n = len(boxes)
    arr = _boxes_fast(boxes)
    if arr is not None:
        return arr
    problems = [Problem(file, where(i), msg) for i, msg in enumerate(map(box_problem, boxes)) if msg]
    if problems:
        raise ScoringError(f"{len(problems)} malformed box(es) in {file}", problems)
    # Well-formed boxes the fast path does not take (tuples, NumPy numbers, from Python callers).
    return np.array([[float(v) for v in box] for box in boxes], dtype=np.float64).reshape(n, 4)


def _parts_dict(parts, file: str, where: str) -> dict:
    """Parts as {name: part}: the evaluation form (a dict) as is, the raw form (a list with names) converted.

    A ScoringError names the first part that is not an object with a string ``name``, or ``parts`` itself
    when it is neither an object nor a list (``validate_submission`` shares this judgement)."""
    if isinstance(parts, dict):
        return parts
    if isinstance(parts, list):
        out = {}
        for k, p in enumerate(parts):
            if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                raise ScoringError(f"malformed parts in {file}",
                                   [Problem(file, f"{where}.parts[{k}]", "expected an object with a 'name' string")])
            out[p["name"]] = p
        return out
    raise ScoringError(f"malformed parts in {file}",
                       [Problem(file, f"{where}.parts", f"expected an object or a list, got {_json_kind(parts)}")])


def _group_sum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per group of consecutive ``values`` (sizes ``counts``), the sum added strictly left to right.

    Groups are laid out in a zero-padded (groups x max size) matrix and its columns are added one by one,
    which performs exactly the additions ``((0 + v0) + v1) + ...`` of a Python loop (adding 0.0 is exact).
    """
    counts = np.asarray(counts, dtype=np.int64)
    out = np.zeros(len(counts), dtype=np.float64)
    if len(values) == 0:
        return out
    width = int(counts.max())
    starts = np.cumsum(counts) - counts
    col = np.arange(len(values)) - np.repeat(starts, counts)
    padded = np.zeros((len(counts), width), dtype=np.float64)
    padded[np.repeat(np.arange(len(counts)), counts), col] = values
    for j in range(width):
        out += padded[:, j]
    return out


def _segments(counts: np.ndarray):
    """(group index, position within group) for each item of consecutive groups of sizes ``counts``."""
    counts = np.asarray(counts, dtype=np.int64)
    group = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return group, np.arange(int(counts.sum())) - starts[group]


# ----------------------------------------------------------------------------------------------------
# IoU


def _iou32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of float32 boxes, every step in float32 (as the scorer's NumPy scalars); -1 if disjoint."""
    one = np.float32(1)
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + one
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + one
    inter = w * h
    union = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one) + \
        (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one) - inter
    overlap = (w > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(overlap, inter / union, np.float32(-1))
    return iou.astype(np.float32), overlap & (union == 0)


def _iou64(a: np.ndarray, b: np.ndarray):
    """Row-wise IoU in float64, the additions in the scorer's order; -1 if disjoint."""
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1
    inter = w * h
    union = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1) + (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1) \
        - inter
    overlap = (w > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(overlap, inter / union, -1.0)
    return iou, overlap & (union == 0)


# ----------------------------------------------------------------------------------------------------
# Human assignment


def _assign_shape(iou: np.ndarray):
    """Assignment of a stack of same-shape frames ``iou`` (k, g, p), as the scorer's SciPy call gives it.

    Returns ``(rows, cols, frames_left)``: for each frame, arrays (k, g) of the assigned prediction per GT
    human (-1: none or a disjoint one) where the optimum is provably unique, and the indices of the frames
    that must go to SciPy. Unique means: every real row (g <= p) or column (g >= p) has a strict
    minimum cost with distinct argmins, except rows/columns made only of disjoint pairs (IoU -1), which
    cost the same wherever they go and never pass a threshold in [0, 1].
    """
    k, g, p = iou.shape
    if g == p:
        cost = (np.float32(1) - iou).astype(np.float64)  # the scorer's square matrix stays float32
    else:
        cost = 1.0 - iou.astype(np.float64)
    assigned = np.full((k, g), -1, dtype=np.int64)
    disjoint = iou == np.float32(-1)
    ok = np.zeros(k, dtype=bool)
    if g <= p:
        order = np.sort(cost, axis=2)
        best = np.argmin(cost, axis=2)
        gap = order[:, :, 1] - order[:, :, 0] if p > 1 else np.full((k, g), np.inf)
        strict = gap > _TIE_TOL
        idle = disjoint.all(axis=2)
        hits = np.zeros((k, p), dtype=np.int64)
        np.add.at(hits, (np.repeat(np.arange(k), g)[strict.ravel()], best.ravel()[strict.ravel()]), 1)
        ok = (strict | idle).all(axis=1) & (hits.max(axis=1) <= 1)
        assigned = np.where(strict, best, -1)
    if g >= p:
        order = np.sort(cost, axis=1)
        best = np.argmin(cost, axis=1)  # (k, p): the GT row taking each prediction
        gap = order[:, 1, :] - order[:, 0, :] if g > 1 else np.full((k, p), np.inf)
        strict = gap > _TIE_TOL
        idle = disjoint.all(axis=1)
        hits = np.zeros((k, g), dtype=np.int64)
        np.add.at(hits, (np.repeat(np.arange(k), p)[strict.ravel()], best.ravel()[strict.ravel()]), 1)
        col_ok = (strict | idle).all(axis=1) & (hits.max(axis=1) <= 1)
        by_col = np.full((k, g), -1, dtype=np.int64)
        fi, cj = np.nonzero(strict)
        by_col[fi, best[fi, cj]] = cj
        use_cols = col_ok & ~ok
        assigned[use_cols] = by_col[use_cols]
        ok = ok | col_ok
    return assigned, np.nonzero(~ok)[0]


def _scipy_assign(iou: np.ndarray) -> np.ndarray:
    """The scorer's own call for one frame: (g,) assigned prediction per GT human, -1 for none."""
    from scipy.optimize import linear_sum_assignment

    g, p = iou.shape
    m = iou
    if g != p:
        n = max(g, p)
        m = np.zeros((n, n), dtype=np.float64)
        m[:g, :p] = iou
    rows, cols = linear_sum_assignment(1 - m)
    out = np.full(g, -1, dtype=np.int64)
    real = (rows < g) & (cols < p)
    out[rows[real]] = cols[real]
    return out


# ----------------------------------------------------------------------------------------------------
# The prepared submission


@dataclass
class _Frames:
    """GT frames that the scorer matches: GT humans present and the frame present in the prediction."""

    video: np.ndarray  # video index per scored frame
    name: list  # frame key per scored frame
    gt_humans: list  # per frame: list of GT human dicts
    pred_humans: list  # per frame: list of predicted human dicts


class TPSScorer:
    """A submission flattened and matched once, to score at any thresholds or with oracle substitutions.

    ``TPSScorer(gt_vid, gt_part, pred_vid, pred_part, mode="list")`` checks and flattens the input (same
    errors as :func:`tps_score`); ``.score(human_iou, part_iou, details=False, oracle=())`` gives a
    :class:`TPSResult`. The human assignment does not depend on the thresholds, so it is computed once.
    """

    def __init__(self, gt_vid, gt_part, pred_vid, pred_part, mode="list", pairing="matched", videos=None, *,
                 legacy_pairing=None):
        """``gt_vid=None`` prepares the human matching only (for ``videos``, default all of ``gt_part``)."""
        pairing = _resolve_pairing(pairing, legacy_pairing)
        with gc_paused():
            self._setup(gt_vid, gt_part, pred_vid, pred_part, mode, pairing, videos)

    @property
    def legacy_pairing(self) -> bool:
        """True when humans are paired as the 2021 script before its fix (``pairing="pre-fix-2021"``)."""
        return self.pairing == "pre-fix-2021"

    def _setup(self, gt_vid, gt_part, pred_vid, pred_part, mode, pairing, videos):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.pairing = pairing
        self.gt_part = load_json(gt_part, "gt_part_result")
        self.pred_part = load_json(pred_part, "pred_part_result")
        if gt_vid is None:
            self.videos = list(self.gt_part) if videos is None else list(videos)
            self._check_gt_videos()
        else:
            self.gt_vid = load_json(gt_vid, "gt_vid_result")
            self.pred_vid = load_json(pred_vid, "pred_vid_result")
            self.videos = list(self.gt_vid)
            if not self.videos:
                raise ScoringError("gt_vid_result has no videos: nothing to score")
            self._check_gt_videos()
            self._check_labels()
        self._walk_frames()
        self._flatten_humans()
        self._assign()
        self._aligned = {}
        self._supersets = []

    # -- videos and frames ------------------------------------------------------------------------

    def _check_gt_videos(self):
        missing_gt = [v for v in self.videos if v not in self.gt_part]
        if missing_gt:
            raise ScoringError(f"{len(missing_gt)} ground-truth video(s) are missing from gt_part_result",
                               [Problem("gt_part_result.json", str(v), "video missing") for v in missing_gt])

    def _check_labels(self):
        missing = [v for v in self.videos if v not in self.pred_vid]
        if missing:
            raise ScoringError(f"{len(missing)} ground-truth video(s) are missing from pred_vid_result",
                               [Problem("pred_vid_result.json", str(v), "video missing") for v in missing])
        self.labels = [self.gt_vid[v] for v in self.videos]
        self.predicted = [self.pred_vid[v] for v in self.videos]
        self.correct = np.fromiter(map(operator.eq, self.labels, self.predicted), bool, len(self.videos))

    def _walk_frames(self):
        gt_part, pred_part = self.gt_part, self.pred_part
        n_videos = len(self.videos)
        counted = np.zeros(n_videos, dtype=np.int64)  # frames in each video's denominator (before part-less)
        f_video, f_name, f_gt, f_pred = [], [], [], []
        missing_video, bad = [], []
        missing_frames = []  # (video index, frame key, gt humans) of frames absent from the prediction
        for v, video in enumerate(self.videos):
            frames = gt_part[video]
            if not isinstance(frames, dict):
                bad.append(Problem("gt_part_result.json", str(video), "expected an object of frames"))
                continue
            names = list(frames)
            try:
                humans = list(map(_get_humans, frames.values()))
                sizes = list(map(list.__len__, humans))  # TypeError unless every 'humans' is a list
            except (KeyError, TypeError):
                for name, fr in frames.items():
                    if not isinstance(fr, dict) or not isinstance(fr.get("humans"), list):
                        bad.append(Problem("gt_part_result.json", f"{video}/{name}", "expected {'humans': [...]}"))
                continue
            scored = list(compress(names, sizes))  # frames with humans
            counted[v] = len(scored)
            if not scored:
                continue
            pred_frames = pred_part.get(video)
            if pred_frames is None and video not in pred_part:
                missing_video.append(video)
                continue
            if not isinstance(pred_frames, dict):
                bad.append(Problem("pred_part_result.json", str(video), "expected an object of frames"))
                continue
            scored_humans = list(compress(humans, sizes))
            present = list(map(pred_frames.__contains__, scored))
            if not all(present):
                missing_frames += [(v, n, h) for n, h, p in zip(scored, scored_humans, present) if not p]
                scored = list(compress(scored, present))
                scored_humans = list(compress(scored_humans, present))
            try:
                pred_humans = list(map(_get_humans, map(pred_frames.__getitem__, scored)))
                list(map(list.__len__, pred_humans))
            except (KeyError, TypeError):
                for name in scored:
                    pf = pred_frames[name]
                    if not isinstance(pf, dict) or not isinstance(pf.get("humans"), list):
                        bad.append(Problem("pred_part_result.json", f"{video}/{name}", "expected {'humans': [...]}"))
                continue
            f_video += repeat(v, len(scored))
            f_name += scored
            f_gt += scored_humans
            f_pred += pred_humans
        if missing_video:
            raise ScoringError(f"{len(missing_video)} ground-truth video(s) with annotated humans are missing "
                               "from pred_part_result",
                               [Problem("pred_part_result.json", str(v), "video missing") for v in missing_video])
        if bad:
            raise ScoringError(f"{len(bad)} malformed frame(s)", bad)
        over = [Problem("pred_part_result.json", f"{self.videos[v]}/{n}",
                        f"{len(ph)} humans, at most {HUMAN_LIMIT} allowed")
                for v, n, ph in zip(f_video, f_name, f_pred) if len(ph) > HUMAN_LIMIT]
        if over:
            raise ScoringError(f"{len(over)} frame(s) have more than {HUMAN_LIMIT} predicted humans", over)
        self.frames = _Frames(np.asarray(f_video, dtype=np.int64), f_name, f_gt, f_pred)
        self.missing_frames = missing_frames
        self.counted_frames = counted

    # -- humans -----------------------------------------------------------------------------------

    def _where_gt_human(self, k):
        f = int(self.gh_frame[k])
        return f"{self.videos[self.frames.video[f]]}/{self.frames.name[f]}/humans[{k - self.gh_start[f]}]"

    def _where_pred_human(self, k):
        f = int(self.ph_frame[k])
        return f"{self.videos[self.frames.video[f]]}/{self.frames.name[f]}/humans[{k - self.ph_start[f]}]"

    def _flatten_humans(self):
        fr = self.frames
        self.gh_count = np.fromiter(map(len, fr.gt_humans), np.int64, len(fr.name))
        self.ph_count = np.fromiter(map(len, fr.pred_humans), np.int64, len(fr.name))
        self.gh_frame, _ = _segments(self.gh_count)
        self.ph_frame, _ = _segments(self.ph_count)
        self.gh_start = np.cumsum(self.gh_count) - self.gh_count
        self.ph_start = np.cumsum(self.ph_count) - self.ph_count
        self.gh = list(chain.from_iterable(fr.gt_humans))
        self.ph = list(chain.from_iterable(fr.pred_humans))
        self.gh_box = self._human_boxes(self.gh, "gt_part_result.json", self._where_gt_human)
        self.ph_box = self._human_boxes(self.ph, "pred_part_result.json", self._where_pred_human)
        try:
            gparts = list(map(_get_parts, self.gh))
        except (KeyError, TypeError):
            problems = [Problem("gt_part_result.json", self._where_gt_human(k) + ".parts", "missing")
                        for k, h in enumerate(self.gh) if not isinstance(h, dict) or "parts" not in h]
            raise ScoringError("ground-truth humans without 'parts'", problems) from None
        if set(map(type, gparts)) - {dict}:
            gparts = [p if type(p) is dict else _parts_dict(p, "gt_part_result.json", self._where_gt_human(k))
                      for k, p in enumerate(gparts)]
        self.gh_parts = gparts
        self.gh_nparts = np.fromiter(map(len, gparts), np.int64, len(gparts))
        # Parts per scored frame; a frame whose humans have none is dropped from its video's denominator.
        frame_parts = np.bincount(self.gh_frame, weights=self.gh_nparts, minlength=len(fr.name))
        self.frame_nparts = frame_parts.astype(np.int64)
        partless = self.frame_nparts == 0
        self.counted_frames = self.counted_frames - np.bincount(fr.video[partless], minlength=len(self.videos))

    def _human_boxes(self, humans, file, where):
        """float32 (n, 4) boxes of humans, read in cache-sized blocks."""
        blocks = []
        for start in range(0, len(humans), _CHUNK):
            block = humans[start:start + _CHUNK]
            try:
                boxes = list(map(_get_box, block))
            except (KeyError, TypeError):
                problems = [Problem(file, where(start + k) + ".box", "missing")
                            for k, h in enumerate(block) if not isinstance(h, dict) or "box" not in h]
                raise ScoringError(f"humans without 'box' in {file}", problems) from None
            blocks.append(_box_array(boxes, lambda k, start=start: where(start + k) + ".box", file))
        return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros((0, 4), np.float32)

    # -- assignment -------------------------------------------------------------------------------

    def _assign(self):
        """Pairs (GT human, predicted human, IoU, square) of the scorer's Hungarian assignment, all frames."""
        g, p = self.gh_count, self.ph_count
        n_pairs = g * p
        f_of_pair, k = _segments(n_pairs)
        gi = k // p[f_of_pair]
        pj = k % p[f_of_pair]
        gglob = self.gh_start[f_of_pair] + gi
        pglob = self.ph_start[f_of_pair] + pj
        iou, zero_union = _iou32(self.gh_box[gglob], self.ph_box[pglob])
        if zero_union.any():
            bad = np.nonzero(zero_union)[0]
            raise ScoringError("human boxes with an empty union (the scorer would divide by zero)",
                               [Problem("pred_part_result.json", self._where_pred_human(int(pglob[i])) + ".box",
                                        f"union with GT {self._where_gt_human(int(gglob[i]))} is 0") for i in bad])
        pair_start = np.cumsum(n_pairs) - n_pairs
        assigned = np.full(len(self.gh), -1, dtype=np.int64)  # local prediction index per GT human
        shapes = np.stack([g, p], axis=1)
        active = (g > 0) & (p > 0)
        if active.any():
            uniq, inverse = np.unique(shapes[active], axis=0, return_inverse=True)
            frames_active = np.nonzero(active)[0]
            for s, (gs, ps) in enumerate(uniq):
                fs = frames_active[inverse.ravel() == s]
                idx = pair_start[fs][:, None] + np.arange(gs * ps)[None, :]
                stack = iou[idx].reshape(len(fs), gs, ps)
                got, left = _assign_shape(stack)
                for j in left:
                    got[j] = _scipy_assign(stack[j])
                rows = self.gh_start[fs][:, None] + np.arange(gs)[None, :]
                assigned[rows.ravel()] = got.ravel()
        has = assigned >= 0
        gidx = np.nonzero(has)[0]
        frame = self.gh_frame[gidx]
        local_p = assigned[gidx]
        local_g = gidx - self.gh_start[frame]
        pair_iou = iou[pair_start[frame] + local_g * p[frame] + local_p]
        self.pair_g = gidx  # global GT human index, increasing (frame order, then GT order)
        self.pair_frame = frame
        self.pair_p = self.ph_start[frame] + local_p
        self.pair_iou = pair_iou
        self.pair_square = g[frame] == p[frame]

    def _valid_mask(self, human_iou: float) -> np.ndarray:
        """Which assignment pairs count at this human threshold, compared in the scorer's precision."""
        iou = self.pair_iou
        return np.where(self.pair_square, iou > np.float32(human_iou), iou.astype(np.float64) > human_iou)

    def valid_pairs(self, human_iou: float):
        """(GT human, predicted human) pairs that count at this human threshold."""
        valid = self._valid_mask(human_iou)
        g, p, frame = self.pair_g[valid], self.pair_p[valid], self.pair_frame[valid]
        if self.legacy_pairing and len(g):
            # The i-th valid match of a frame (GT order) takes the frame's i-th predicted human.
            _, rank = _segments(np.bincount(frame, minlength=len(self.frames.name))[np.unique(frame)])
            p = self.ph_start[frame] + rank
        return g, p

    def prepare(self, human_iou: float | None = None, full: bool = False) -> None:
        """Read the parts of every pair valid at ``human_iou`` (default: every pair of overlapping boxes, as
        the ``humans`` oracle uses) once, so that scores at higher thresholds only select from them.

        ``full`` also reads the boxes the details and the part oracles need. Without it each threshold
        reads its own pairs on first use, exactly those the public scorer looks at."""
        mask = self.pair_iou > np.float32(-1) if human_iou is None else \
            self._valid_mask(_check_threshold(human_iou, "human_iou"))
        with gc_paused():
            self._aligned_for(mask, full)

    def _aligned_for(self, mask: np.ndarray, full: bool):
        """Aligned part data of the assignment pairs in ``mask``, cut from a prepared superset if any."""
        for have, have_full, aligned in self._supersets:
            if (have_full or not full) and not (mask & ~have).any():
                return self._select_pairs(aligned, mask[have])
        aligned = self._align(self.pair_g[mask], self.pair_p[mask], full)
        self._supersets.append((mask, full, aligned))
        return aligned

    @staticmethod
    def _select_pairs(al: dict, keep_pair: np.ndarray) -> dict:
        """The aligned data of the pairs ``keep_pair`` (a mask over the aligned pairs)."""
        if keep_pair.all():
            return al
        part_pair = np.repeat(np.arange(len(al["nparts"])), al["nparts"])
        keep_part = keep_pair[part_pair]
        keep_prop = keep_part[al["prop_part"]]
        new_index = np.cumsum(keep_part) - 1
        old_part = np.nonzero(keep_part)[0]
        return dict(nparts=al["nparts"][keep_pair], nprop=al["nprop"][keep_part],
                    prop_part=new_index[al["prop_part"][keep_prop]], prop_iou=al["prop_iou"][keep_prop],
                    prop_same=al["prop_same"][keep_prop], pverbs=al["pverbs"],
                    pverb_index=al["pverb_index"][keep_prop],
                    where_pred=lambda i: al["where_pred"](int(old_part[i])))

    # -- parts ------------------------------------------------------------------------------------

    def _where_gt_part(self, gparts, g, part_pair, i):
        pair = int(part_pair[i])
        name = list(gparts[pair])[i - int(np.searchsorted(part_pair, pair))]
        return f"{self._where_gt_human(int(g[pair]))}.parts.{name}"

    def _align(self, g: np.ndarray, p: np.ndarray, full: bool = False):
        """Part-level data of GT humans ``g`` paired with predicted humans ``p`` (threshold-free, cached).

        For every GT part of the pairs (in order): whether the paired prediction has that part name and how
        many proposals it holds; for every proposal: its GT part, verb equality and IoU with the GT part box.
        Boxes are read (and checked) only for parts with a proposal of the right verb, the only ones whose
        IoU can matter; ``full=True`` reads them all (for the per-part details). Pairs are read in blocks.
        """
        key = (g.tobytes(), p.tobytes(), full)
        if key in self._aligned:
            return self._aligned[key]
        step = max(1, _CHUNK // 8)  # pairs per block (a few parts each)
        blocks = [self._align_block(g[s:s + step], p[s:s + step], full) for s in range(0, len(g), step)]
        if not blocks:
            blocks = [self._align_block(g, p, full)]
        part_offsets = np.cumsum([0] + [len(b["nprop"]) for b in blocks])

        def where_pred(i):
            b = int(np.searchsorted(part_offsets, i, side="right")) - 1
            return blocks[b]["where_pred"](i - int(part_offsets[b]))

        aligned = dict(
            nparts=np.concatenate([b["nparts"] for b in blocks]),
            nprop=np.concatenate([b["nprop"] for b in blocks]),
            prop_part=np.concatenate([b["prop_part"] + off for b, off in zip(blocks, part_offsets)]),
            prop_iou=np.concatenate([b["prop_iou"] for b in blocks]),
            prop_same=np.concatenate([b["prop_same"] for b in blocks]),
            pverbs=list(chain.from_iterable(b["pverbs"] for b in blocks)),
            where_pred=where_pred)
        aligned["pverb_index"] = np.arange(len(aligned["pverbs"]))  # proposal -> its verb in ``pverbs``
        self._aligned[key] = aligned
        return aligned

    def _align_block(self, g: np.ndarray, p: np.ndarray, full: bool):
        """:meth:`_align` for one block of pairs."""
        PRED, GT = "pred_part_result.json", "gt_part_result.json"
        gparts = [self.gh_parts[i] for i in g.tolist()]
        ph = self.ph
        try:
            pparts = [ph[j]["parts"] for j in p.tolist()]
        except (KeyError, TypeError):
            problems = [Problem(PRED, self._where_pred_human(j) + ".parts", "missing")
                        for j in p.tolist() if not isinstance(ph[j], dict) or "parts" not in ph[j]]
            raise ScoringError("matched predicted humans without 'parts'", problems) from None
        if not all(type(x) is dict for x in pparts):
            pparts = [x if type(x) is dict else _parts_dict(x, PRED, self._where_pred_human(j))
                      for x, j in zip(pparts, p.tolist())]
        nparts = np.fromiter(map(len, gparts), np.int64, len(gparts))
        part_pair, _ = _segments(nparts)
        gvals = list(chain.from_iterable(map(dict.values, gparts)))
        # For every GT part, the predicted part of the same name (None when the prediction lacks it).
        pvals = list(chain.from_iterable(map(map, map(operator.attrgetter("get"), pparts), gparts)))
        present = np.fromiter(map(operator.is_not, pvals, repeat(None)), bool, len(pvals))
        sel = np.nonzero(present)[0]
        shown = list(compress(pvals, present.tolist()))
        shown_gt = list(compress(gvals, present.tolist()))

        def where_gt(i):
            return self._where_gt_part(gparts, g, part_pair, i)

        def where_pred(i):
            pair = int(part_pair[i])
            return f"{self._where_pred_human(int(p[pair]))}.parts.{where_gt(i).rsplit('.parts.', 1)[1]}"

        def malformed(file, items, index, what, keys):
            problems = [Problem(file, (where_gt if file == GT else where_pred)(int(i)), f"expected {what}")
                        for i, x in zip(index, items) if not isinstance(x, dict) or any(k not in x for k in keys)]
            return ScoringError(f"malformed parts in {file}", problems)

        try:
            gverbs = list(map(_get_verb, shown_gt))
        except (KeyError, TypeError):
            raise malformed(GT, shown_gt, sel.tolist(), "{'box': [...], 'verb': ...}", ("verb",)) from None
        try:
            pverbs = list(map(_get_verb, shown))
        except (KeyError, TypeError):
            raise malformed(PRED, shown, sel.tolist(), "{'box': ..., 'verb': ...}", ("verb",)) from None
        if self.mode == "list":
            nprop = self._check_verb_lists(pverbs, sel, where_pred)
            pverbs = list(chain.from_iterable(pverbs))
        else:
            if list in set(map(type, pverbs)):
                raise ScoringError("proposal lists in mode 'single'", [
                    Problem(PRED, where_pred(int(i)), "mode 'single' expects one verb, got a list (use mode='list')")
                    for i, v in zip(sel.tolist(), pverbs) if isinstance(v, list)])
            nprop = np.ones(len(shown), dtype=np.int64)
        owner = np.repeat(np.arange(len(sel)), nprop)  # position in ``shown`` of each proposal's part
        same_verb = np.fromiter(map(operator.eq, chain.from_iterable(map(repeat, gverbs, nprop.tolist())), pverbs),
                                bool, len(pverbs))
        # Parts whose IoU can matter: some proposal has the GT verb (all parts with ``full``).
        need = np.bincount(owner[same_verb], minlength=len(sel)) > 0 if not full else np.ones(len(sel), bool)
        need_list = need.tolist()
        need_idx = np.nonzero(need)[0]
        try:
            gboxes = list(map(_get_box, compress(shown_gt, need_list)))
        except (KeyError, TypeError):
            raise malformed(GT, list(compress(shown_gt, need_list)), sel[need_idx].tolist(),
                            "{'box': [...], 'verb': ...}", ("box",)) from None
        gbox = _box_array(gboxes, lambda i: where_gt(int(sel[need_idx[i]])) + ".box", GT)
        try:
            pboxes = list(map(_get_box, compress(shown, need_list)))
        except (KeyError, TypeError):
            raise malformed(PRED, list(compress(shown, need_list)), sel[need_idx].tolist(),
                            "{'box': ..., 'verb': ...}", ("box",)) from None
        if self.mode == "list":
            self._check_box_lists(pboxes, nprop[need_idx], sel[need_idx], where_pred)
            pboxes = list(chain.from_iterable(pboxes))
        else:
            self._check_single_boxes(pboxes, sel[need_idx], where_pred)
        prop_need = need[owner]
        owner_need = owner[prop_need]
        _, rank = _segments(nprop[need_idx])
        pbox = _box_array(pboxes, lambda i: f"{where_pred(int(sel[owner_need[i]]))}.box[{rank[i]}]", PRED)
        box_row = np.cumsum(need) - 1  # row of each needed part in ``gbox``
        iou = np.full(len(pverbs), -np.inf)
        iou_need, zero_union = _iou64(gbox[box_row[owner_need]], pbox)
        if zero_union.any():
            raise ScoringError("part boxes with an empty union (the scorer would divide by zero)",
                               [Problem(PRED, where_pred(int(sel[owner_need[i]])), "box union with the GT part is 0")
                                for i in np.nonzero(zero_union)[0]])
        iou[prop_need] = iou_need
        n = np.zeros(len(gvals), dtype=np.int64)
        n[sel] = nprop
        return dict(nparts=nparts, nprop=n, prop_part=sel[owner], prop_iou=iou, prop_same=same_verb,
                    pverbs=pverbs, where_pred=where_pred)

    @staticmethod
    def _check_verb_lists(pverbs, sel, where_pred):
        """List mode: every 'verb' is a list; returns N (proposals) per part."""
        try:
            return np.fromiter(map(list.__len__, pverbs), np.int64, len(pverbs))  # TypeError if not a list
        except TypeError:
            pass
        raise ScoringError("malformed proposals", [
            Problem("pred_part_result.json", where_pred(int(i)),
                    "mode 'list' expects 'verb': [verb, ...]" + (" (got one verb: use mode='single')"
                                                                 if isinstance(v, str) else ""))
            for i, v in zip(sel.tolist(), pverbs) if type(v) is not list])

    @staticmethod
    def _check_box_lists(pboxes, nprop, sel, where_pred):
        """List mode: every 'box' is a list of as many boxes as the part has verbs."""
        try:
            if np.array_equal(np.fromiter(map(list.__len__, pboxes), np.int64, len(pboxes)), nprop):
                return
        except TypeError:
            pass
        raise ScoringError("malformed proposals", [
            Problem("pred_part_result.json", where_pred(int(i)),
                    f"mode 'list' expects 'box': [box, ...] with one box per verb ({n})")
            for i, b, n in zip(sel.tolist(), pboxes, nprop.tolist()) if type(b) is not list or len(b) != n])

    @staticmethod
    def _check_single_boxes(pboxes, sel, where_pred):
        """Single mode: one box per part, not a list of boxes."""
        try:
            first = set(map(type, map(operator.itemgetter(0), pboxes)))
        except (IndexError, KeyError, TypeError):
            return  # malformed boxes: reported by the box check
        if list not in first:
            return
        raise ScoringError("proposal lists in mode 'single'", [
            Problem("pred_part_result.json", where_pred(int(i)),
                    "mode 'single' expects one box, got a list of boxes (use mode='list')")
            for i, b in zip(sel.tolist(), pboxes) if isinstance(b, list) and b and isinstance(b[0], list)])

    # -- scores -----------------------------------------------------------------------------------

    def part_scores(self, human_iou: float, part_iou: float, full: bool = False, oracle=frozenset()):
        """Per GT part of the counted pairs: its score, with the arrays the details need.

        Returns ``(g, p, aligned, score, box_ok, same)``: the pairs, their aligned part data, the score of
        every aligned GT part, and per proposal whether its box reaches the part IoU and its verb is right.
        """
        full = full or bool(oracle & {"part_boxes", "part_states"})
        if "humans" in oracle:
            mask = self.pair_iou > np.float32(-1)  # every pair of overlapping boxes, as if the box were exact
        elif not self.legacy_pairing:
            mask = self._valid_mask(human_iou)
        if "humans" in oracle or not self.legacy_pairing:
            g, p = self.pair_g[mask], self.pair_p[mask]
            al = self._aligned_for(mask, full)
        else:
            g, p = self.valid_pairs(human_iou)
            al = self._align(g, p, full)
        nprop = al["nprop"]
        over = np.nonzero(nprop > PROPOSAL_LIMIT)[0]
        if len(over):
            raise ScoringError(f"{len(over)} scored part(s) have more than {PROPOSAL_LIMIT} proposals",
                               [Problem("pred_part_result.json", al["where_pred"](int(i)),
                                        f"{nprop[i]} proposals") for i in over])
        box_ok = al["prop_iou"] >= part_iou if "part_boxes" not in oracle else np.ones(len(al["prop_iou"]), bool)
        same = al["prop_same"] if "part_states" not in oracle else np.ones(len(al["prop_same"]), bool)
        correct = np.bincount(al["prop_part"][box_ok & same], minlength=len(nprop)) > 0
        score = np.where(correct, 1.0 / np.maximum(nprop, 1), 0.0)
        return g, p, al, score, box_ok, same

    def score(self, human_iou: float = 0.5, part_iou: float = 0.3, details: bool = False,
              oracle=()) -> TPSResult:
        """The score at these thresholds; see :func:`tps_score` for ``details`` and ``oracle``."""
        with gc_paused():
            return self._score(human_iou, part_iou, details, oracle)

    def _score(self, human_iou, part_iou, details, oracle) -> TPSResult:
        import pandas as pd

        human_iou = _check_threshold(human_iou, "human_iou")
        part_iou = _check_threshold(part_iou, "part_iou")
        oracle = frozenset(oracle)
        unknown = oracle - set(ORACLES)
        if unknown:
            raise ValueError(f"unknown oracle substitution(s) {sorted(unknown)}; known: {ORACLES}")
        g, p, al, score, box_ok, same = self.part_scores(human_iou, part_iou, full=details, oracle=oracle)
        human_sum = np.zeros(len(self.gh), dtype=np.float64)
        human_sum[g] = _group_sum(score, al["nparts"])
        frame_sum = _group_sum(human_sum, self.gh_count)
        keep = self.frame_nparts > 0
        frame_value = frame_sum[keep] / self.frame_nparts[keep]
        video_sum = _group_sum(frame_value, np.bincount(self.frames.video[keep], minlength=len(self.videos)))
        counted = self.counted_frames
        psc = np.where(counted > 0, video_sum / np.maximum(counted, 1), 1.0)
        correct = self.correct if "actions" not in oracle else np.ones(len(self.videos), bool)
        predicted = self.predicted if "actions" not in oracle else self.labels
        thresholds, acc, area_raw = curve(psc, correct)
        per_video = pd.DataFrame({"video": self.videos, "psc": psc, "correct": correct,
                                  "label": self.labels, "predicted": predicted})
        result = TPSResult(area=round(area_raw, 6), area_raw=area_raw, accuracy=float(correct.mean()),
                           mean_psc=float(psc.mean()), per_video=per_video, thresholds=thresholds, acc=acc,
                           human_iou=human_iou, part_iou=part_iou, mode=self.mode, pairing=self.pairing)
        if details:
            result.per_part = self._per_part(g, al, score, box_ok, same)
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

    def _per_part(self, g, al, score, box_ok, same):
        """One row per GT part of every counted frame (frames missing from the prediction included)."""
        import pandas as pd

        matched_of = np.full(len(self.gh), -1, dtype=np.int64)
        matched_of[g] = np.arange(len(g))
        rows_g = np.repeat(np.arange(len(self.gh)), self.gh_nparts)
        _, part_pos = _segments(self.gh_nparts)
        names = list(chain.from_iterable(self.gh_parts))
        vals = list(chain.from_iterable(map(dict.values, self.gh_parts)))
        frame = self.gh_frame[rows_g]
        pair = matched_of[rows_g]
        # Position of each part among the aligned parts: pair starts + position within the human.
        pair_start = np.cumsum(al["nparts"]) - al["nparts"]
        aligned_idx = np.where(pair >= 0, pair_start[np.maximum(pair, 0)] + part_pos, -1)
        m = aligned_idx >= 0
        nprop = np.zeros(len(names), dtype=np.int64)
        nprop[m] = al["nprop"][aligned_idx[m]]
        part_score = np.zeros(len(names))
        part_score[m] = score[aligned_idx[m]]
        box_hit_al = np.bincount(al["prop_part"][box_ok], minlength=len(al["nprop"])) > 0
        state_hit_al = np.bincount(al["prop_part"][same], minlength=len(al["nprop"])) > 0
        both_al = np.bincount(al["prop_part"][box_ok & same], minlength=len(al["nprop"])) > 0
        box_ok = np.zeros(len(names), bool)
        state_ok = np.zeros(len(names), bool)
        correct = np.zeros(len(names), bool)
        box_ok[m] = box_hit_al[aligned_idx[m]]
        state_ok[m] = state_hit_al[aligned_idx[m]]
        correct[m] = both_al[aligned_idx[m]]
        first = np.cumsum(al["nprop"]) - al["nprop"]  # first proposal of each aligned part
        pred_state = np.full(len(names), None, dtype=object)
        has_prop = m.copy()
        has_prop[m] = al["nprop"][aligned_idx[m]] > 0
        pverbs, verb_of = al["pverbs"], al["pverb_index"]
        pred_state[has_prop] = [pverbs[i] for i in verb_of[first[aligned_idx[has_prop]]].tolist()]
        table = pd.DataFrame({
            "video": [self.videos[v] for v in self.frames.video[frame].tolist()],
            "frame": [self.frames.name[f] for f in frame.tolist()],
            "human": (np.arange(len(self.gh)) - self.gh_start[self.gh_frame])[rows_g],
            "part": names,
            "gt_state": [v.get("verb") if isinstance(v, dict) else None for v in vals],
            "human_matched": pair >= 0,
            "predicted": nprop > 0,
            "n_proposals": nprop,
            "box_ok": box_ok,
            "state_ok": state_ok,
            "correct": correct,
            "score": part_score,
            "pred_state": pred_state,
        })
        missing = self._missing_frame_parts()
        if len(missing):
            table = pd.concat([table, missing], ignore_index=True)
        return table.reset_index(drop=True)

    def _missing_frame_parts(self):
        """Parts of GT frames absent from the prediction: counted, never matched."""
        import pandas as pd

        rows = []
        for v, name, humans in self.missing_frames:
            for h, human in enumerate(humans):
                parts = _parts_dict(human.get("parts", {}) if isinstance(human, dict) else {},
                                    "gt_part_result.json", f"{self.videos[v]}/{name}/humans[{h}]")
                for part, gp in parts.items():
                    rows.append((self.videos[v], name, h, part, gp.get("verb") if isinstance(gp, dict) else None))
        t = pd.DataFrame(rows, columns=["video", "frame", "human", "part", "gt_state"])
        for col, val in (("human_matched", False), ("predicted", False), ("n_proposals", 0), ("box_ok", False),
                         ("state_ok", False), ("correct", False), ("score", 0.0)):
            t[col] = val
        t["pred_state"] = None
        return t


# ----------------------------------------------------------------------------------------------------
# Public API


def tps_score(gt_vid, gt_part, pred_vid, pred_part, human_iou: float = 0.5, part_iou: float = 0.3,
              mode: str = "list", *, pairing: str = "matched", details: bool = False,
              oracle=(), legacy_pairing: bool | None = None) -> TPSResult:
    """The official Kinetics-TPS score of a submission.

    ``gt_vid``/``pred_vid`` are ``{video: class}``; ``gt_part``/``pred_part`` are
    ``{video: {"img_00001.json": {"humans": [{"box": b, "parts": {name: {"box": ..., "verb": ...}}}]}}}``,
    given as dicts (as loaded) or as paths to the JSON files. Predicted parts hold lists
    (``{"box": [b1, b2], "verb": [s1, s2]}``, up to 5 proposals) in ``mode="list"`` and one box and one
    verb in ``mode="single"`` (the 2022 scorer). Parts may also be given in the raw list form
    (``[{"name": ..., "box": ..., "verb": ...}]``). Thresholds must lie in [0, 1].

    With ``details=True`` the result also has ``per_part``: one row per GT part of every counted frame
    with ``video, frame, human, part, gt_state, human_matched, predicted, n_proposals, box_ok`` (some
    proposal reaches the part IoU), ``state_ok`` (some proposal has the GT verb), ``correct`` (one
    proposal has both), ``score`` (its contribution, 1/N or 0) and ``pred_state`` (first proposal's verb).

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

    Columns ``video, frame, gt_human, pred_human, iou`` (float32 IoU as the scorer computes it; pairs of
    disjoint boxes, IoU -1, are not listed). Only frames the scorer matches appear (GT humans present and
    the frame in the prediction). ``videos`` restricts to those videos (default: all of ``gt_part``).
    """
    import pandas as pd

    prep = TPSScorer(None, gt_part, None, pred_part, videos=videos)
    videos = prep.videos
    keep = prep.pair_iou > -1
    f = prep.pair_frame[keep]
    return pd.DataFrame({
        "video": [videos[v] for v in prep.frames.video[f].tolist()],
        "frame": [prep.frames.name[i] for i in f.tolist()],
        "gt_human": (prep.pair_g - prep.gh_start[prep.pair_frame])[keep],
        "pred_human": (prep.pair_p - prep.ph_start[prep.pair_frame])[keep],
        "iou": prep.pair_iou[keep],
    })
