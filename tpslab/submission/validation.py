"""Checking a submission: schema, vocabulary names, limits and coverage of the ground truth, with the
scorer's judgement (what it accepts scores, what the scorer refuses it refuses), as a readable report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Mapping

import numpy as np

from tpslab.challenge import (BAD_PARTS, MAX_HUMANS, MAX_PROPOSALS, MISSING, NO_PARTS, PART_OBJECT, PRED_PART,
                              PRED_VID, PartColumns, ScoringError, box_problems, check_mode, file_label, frame_numbers,
                              is_scored, load_json, part_columns, segments, walk_part_file)
from tpslab.errors import Problem, printable
from tpslab.memory import gc_paused
from tpslab.submission.files import SubmissionError

NAME_KINDS = ("class", "part", "state")


@dataclass
class SubmissionReport:
    """Problems found in a submission (``severity`` "error" or "warning") and counts of what it holds.

    ``mode`` is the mode it was checked against and ``looks_like`` the mode its parts are written in
    ("list": every verb a list, "single": every verb a string, None: no parts or a mix).
    ``unknown_names`` counts, per kind ("class", "part", "state"), the names outside the vocabulary and
    the ground truth (they never score); :meth:`describe_unknown_names` lists them with suggestions.
    """

    problems: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    mode: str = "list"
    looks_like: str | None = None
    unknown_names: dict = field(default_factory=lambda: {k: Counter() for k in NAME_KINDS})
    suggestions: dict = field(default_factory=dict, repr=False)  # (kind, name) -> nearest known names
    unknown_messages: set = field(default_factory=set, repr=False)  # the messages of the unknown-name warnings

    @property
    def errors(self) -> list:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SubmissionError(f"the submission has {len(self.errors)} error(s)", self.errors)

    def refusing_unknown_names(self) -> "SubmissionReport":
        """This report with its unknown-name warnings made errors: what ``tpslab evaluate`` refuses unless
        ``--allow-unknown-names``."""
        problems = [replace(p, severity="error") if p.severity == "warning" and p.message in self.unknown_messages
                    else p for p in self.problems]
        return replace(self, problems=problems)

    def describe_unknown_names(self, limit: int = 10) -> str:
        """One line: ``class 'lunges' (3x; did you mean 'lunge'?), state ...``, the most frequent first."""
        items = [(kind, name, n) for kind in NAME_KINDS for name, n in self.unknown_names[kind].most_common()]
        text = []
        for kind, name, n in items[:limit]:
            near = self.suggestions.get((kind, name)) or []
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            text.append(f"{kind} {name!r} ({n}x{hint})")
        if len(items) > limit:
            text.append(f"... and {len(items) - limit} more")
        return ", ".join(text)

    def __str__(self, limit: int = 5) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.stats.items())
        head = (f"submission {'OK' if self.ok else 'NOT OK'}: {len(self.errors)} error(s), "
                f"{len(self.warnings)} warning(s); {counts}")
        lines = [head]
        by_kind = {}
        for p in self.problems:
            by_kind.setdefault((p.severity, p.message), []).append(p)
        # Errors first, those about a whole file (no field: not JSON, the other mode, ...) before the rest.
        for (severity, message), items in sorted(by_kind.items(), key=lambda kv: (kv[0][0] != "error",
                                                                                  bool(kv[1][0].field), -len(kv[1]))):
            lines.append(f"{severity}: {message} ({len(items)}x)")
            for p in items[:limit]:
                if p.field:
                    lines.append(f"    {p.path}: {p.field}")
            if len(items) > limit:
                lines.append(f"    ... and {len(items) - limit} more")
        return "\n".join(map(printable, lines))  # names from the files cannot break or colour a line


_VOCAB_WORD = {"class": "action", "part": "body-part", "state": "part-state"}
# Where a problem of the prediction file's walk sorts: its place, then the order of the checks there.
_AT_VIDEO, _AT_FRAME, _AT_HUMAN, _AT_PART = range(4)


class _Validator:
    """One validation: the known names, the report, and every problem with the place it sorts at.

    Problems are found check by check over the columns and put back in the order of a walk through the
    files (each video, frame, human and part in turn, the checks of one place in a fixed order)."""

    def __init__(self, vocab, mode: str, gt_vid, gt: PartColumns | None):
        self.vocab, self.mode = vocab, mode
        self.report = SubmissionReport(mode=mode)
        classes = {v for v in (gt_vid or {}).values() if isinstance(v, str)}
        parts = set(gt.part_name) if gt is not None else set()
        states = set(_string_verbs(gt)) if gt is not None else set()
        self.known = {"class": set(vocab.actions) | classes, "part": set(vocab.parts) | parts,
                      "state": set(vocab.states) | states}
        self.hints = {}  # (kind, name) -> the warning's message, made once per name
        # The prediction files as they were read (a path, zip:member; the bare names for dicts): set by _load_pred.
        self.vid_file, self.part_file = PRED_VID, PRED_PART
        self.found = []  # (sort key, Problem)

    def add(self, key: tuple, file: str, where: str, message: str, severity: str = "error") -> None:
        self.found.append((key, Problem(file, where, message, severity)))

    def unknown(self, key: tuple, kind: str, name, where: str, file: str | None = None) -> None:
        self.report.unknown_names[kind][name] += 1
        message = self.hints.get((kind, name))
        if message is None:
            vocabulary = {"class": self.vocab.actions, "part": self.vocab.parts, "state": self.vocab.states}[kind]
            near = vocabulary.suggest(name) if len(self.hints) < 1000 else []
            self.report.suggestions[(kind, name)] = near
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            message = self.hints[kind, name] = f"{kind} {name!r} not in the {_VOCAB_WORD[kind]} vocabulary{hint}"
            self.report.unknown_messages.add(message)
        self.add(key, file or self.part_file, where, message, "warning")

    def problems(self) -> list:
        self.found.sort(key=lambda kp: kp[0])
        return [p for _, p in self.found]


def _string_verbs(cols: PartColumns) -> list:
    """The verbs of object parts that are strings (the names a ground truth contributes)."""
    if cols.form is not None:  # decoded in the strict form: all are
        return cols.part_verb if cols.part_verb is not None else cols.proposal_verb
    verbs = cols.part_verb_values(np.arange(len(cols.part_name)))
    return [v for v, k in zip(verbs, cols.part_kind.tolist()) if k == PART_OBJECT and isinstance(v, str)]


def _check_labels(val: _Validator, pred_vid: Mapping) -> None:
    for i, (video, label) in enumerate(pred_vid.items()):
        if not isinstance(label, str):
            val.add((1, i), val.vid_file, str(video), f"class must be a string, got {type(label).__name__}")
        elif label not in val.known["class"]:
            val.unknown((1, i), "class", label, str(video), val.vid_file)


def _check_frames(val: _Validator, pred: PartColumns, pred_vid: Mapping) -> None:
    """Videos (a class, an object of frames) and frames (the key, ``{'humans': [...]}``, the limit)."""
    for v in np.nonzero(~np.fromiter(map(pred_vid.__contains__, pred.videos), bool, len(pred.videos)))[0].tolist():
        val.add((2, v, _AT_VIDEO, 0), val.part_file, str(pred.videos[v]),
                "video has parts but no class in pred_vid_result", "warning")
    for v in np.nonzero(pred.video_frames < 0)[0].tolist():
        val.add((2, v, _AT_VIDEO, 1), val.part_file, str(pred.videos[v]), "expected an object of frames")
    video = pred.frame_video
    number = frame_numbers(pred.frame_key)
    for f in np.nonzero(number == 0)[0].tolist():
        val.add((2, video[f], _AT_FRAME, f, 0), val.part_file, pred.where_frame(f),
                "frame key is not of the form img_00001.json (never scored)", "warning")
    for f in np.nonzero((number > 0) & ~is_scored(number))[0].tolist():
        val.add((2, video[f], _AT_FRAME, f, 0), val.part_file, pred.where_frame(f),
                "frame is not a scored frame (1, 6, 11, ...): ignored by the scorer", "warning")
    for f in np.nonzero(pred.frame_humans < 0)[0].tolist():
        val.add((2, video[f], _AT_FRAME, f, 1), val.part_file, pred.where_frame(f), "expected {'humans': [...]}")
    for f in np.nonzero(pred.frame_humans > MAX_HUMANS)[0].tolist():
        val.add((2, video[f], _AT_FRAME, f, 2), val.part_file, pred.where_frame(f), f"more than {MAX_HUMANS} humans")


def _human_key(pred: PartColumns, h: int, step: int) -> tuple:
    f = int(pred.human_frame[h])
    return 2, int(pred.frame_video[f]), _AT_FRAME, f, 3, h, step


def _check_humans(val: _Validator, pred: PartColumns) -> None:
    """Humans: objects with ``parts`` that can be read, and boxes of 4 finite numbers."""
    for h in np.nonzero(~pred.human_is_object)[0].tolist():
        val.add(_human_key(pred, h, 0), val.part_file, pred.where_human(h), "expected an object with 'box' and 'parts'")
    for h in np.nonzero(pred.human_is_object & (pred.human_parts == NO_PARTS))[0].tolist():
        val.add(_human_key(pred, h, 1), val.part_file, pred.where_human(h) + ".parts",
                "missing 'parts' (use {} for a human without parts)")
    for h in np.nonzero(pred.human_parts == BAD_PARTS)[0].tolist():
        suffix, message = pred.parts_problems[h]
        val.add(_human_key(pred, h, 2), val.part_file, pred.where_human(h) + suffix, message)
    if pred.human_box_array is not None:
        return  # decoded in the strict form: every box is 4 finite numbers
    humans = np.nonzero(pred.human_is_object)[0]
    boxes = [None if b is MISSING else b for b in pred.human_box_values(humans)]
    for i, _ in box_problems(boxes):
        h = int(humans[i])
        val.add((3, h), val.part_file, pred.where_human(h) + ".box", "box is not 4 finite numbers")


def _part_key(pred: PartColumns, p: int, step: int) -> tuple:
    return _human_key(pred, int(pred.part_human[p]), 3) + (p, step)


def _check_part_names(val: _Validator, pred: PartColumns) -> None:
    known = val.known["part"]
    for p in np.nonzero(~np.fromiter(map(known.__contains__, pred.part_name), bool, len(pred.part_name)))[0].tolist():
        val.unknown(_part_key(pred, p, 0), "part", pred.part_name[p], pred.where_part(p))


def _check_verbs(val: _Validator, pred: PartColumns, parts: np.ndarray, nverb: np.ndarray, verbs: list) -> None:
    """Each proposal's verb: a string, in the vocabulary (``verbs`` flat, ``nverb`` per part)."""
    known = val.known["state"]
    strings = verbs if pred.form is not None else map(_string_or_none, verbs)  # strict form: all strings
    ok = np.fromiter(map(known.__contains__, strings), bool, len(verbs))
    group, rank = segments(nverb)
    owner = parts[group]
    for i in np.nonzero(~ok)[0].tolist():
        p, v = int(owner[i]), verbs[i]
        where = pred.where_part(p) + ".verb"
        if not isinstance(v, str):
            val.add(_part_key(pred, p, 5) + (int(rank[i]),), val.part_file, where,
                    f"verb must be a string, got {type(v).__name__}")
        else:
            val.unknown(_part_key(pred, p, 5) + (int(rank[i]),), "state", v, where)


def _string_or_none(v):
    return v if isinstance(v, str) else None  # None is never a known name (and lists are not hashable)


class _PartChecks:
    """The part level of the raw columns: shapes of ``box``/``verb`` in the mode, and their boxes."""

    def __init__(self, val: _Validator, pred: PartColumns):
        self.val, self.pred = val, pred
        self.verbs = pred.part_verb_values(np.arange(len(pred.part_name)))
        self.boxes = pred.part_box_values(np.arange(len(pred.part_name)))
        self.shapes = Counter()

    def error(self, p: int, step: int, message: str, suffix: str = "") -> None:
        self.val.add(_part_key(self.pred, p, step), self.val.part_file, self.pred.where_part(p) + suffix, message)

    def run(self, mode: str) -> tuple[np.ndarray, np.ndarray, list, list]:
        """Checks every part; returns the parts that hold proposals, their counts, verbs and boxes."""
        kept, nverb, verbs, boxes = [], [], [], []
        for p, (kind, verb, box) in enumerate(zip(self.pred.part_kind.tolist(), self.verbs, self.boxes)):
            if kind != PART_OBJECT or verb is MISSING or box is MISSING:
                self.error(p, 1, "expected {'box': ..., 'verb': ...}")
                continue
            self.shapes["list" if isinstance(verb, list) else "single" if isinstance(verb, str) else None] += 1
            got = self.list_part(p, verb, box) if mode == "list" else self.single_part(p, verb, box)
            if got is not None:
                kept.append(p)
                nverb.append(len(got[0]))
                verbs += got[0]
                boxes.append(got[1])
        return np.asarray(kept, dtype=np.int64), np.asarray(nverb, dtype=np.int64), verbs, boxes

    def list_part(self, p: int, verb, box):
        if not isinstance(verb, list) or not isinstance(box, list):
            self.error(p, 2, "mode 'list' expects lists of boxes and verbs")
            return None
        if len(box) != len(verb):
            self.error(p, 3, "box and verb lists differ in length")
        if len(verb) > MAX_PROPOSALS:
            self.error(p, 4, f"more than {MAX_PROPOSALS} proposals")
        return verb, box

    def single_part(self, p: int, verb, box):
        if isinstance(verb, list):
            self.error(p, 2, "mode 'single' expects one verb, got a list")
            return None
        return [verb], [box]

    def check_boxes(self, parts: np.ndarray, boxes: list) -> None:
        """Every proposal box is 4 finite numbers (one error per part)."""
        flat = list(chain.from_iterable(boxes))
        owner = np.repeat(parts, [len(b) for b in boxes]) if len(boxes) else np.zeros(0, np.int64)
        for p in dict.fromkeys(int(owner[i]) for i, _ in box_problems(flat)):
            self.val.add((4, p), self.val.part_file, self.pred.where_part(p) + ".box", "a box is not 4 finite numbers")


def _check_parts(val: _Validator, pred: PartColumns, mode: str) -> tuple[Counter, int]:
    """Parts: names, shapes, limits, verbs and boxes. Returns how many parts hold lists or single values,
    and the number of proposals."""
    _check_part_names(val, pred)
    if pred.form == mode == "list":  # decoded in the strict form: only lengths and limits to check
        n = len(pred.part_name)
        for p in np.nonzero(pred.part_nbox != pred.part_nverb)[0].tolist():
            val.add(_part_key(pred, p, 3), val.part_file, pred.where_part(p), "box and verb lists differ in length")
        for p in np.nonzero(pred.part_nverb > MAX_PROPOSALS)[0].tolist():
            val.add(_part_key(pred, p, 4), val.part_file, pred.where_part(p), f"more than {MAX_PROPOSALS} proposals")
        _check_verbs(val, pred, np.arange(n), pred.part_nverb, pred.proposal_verb)
        return Counter(list=n), len(pred.proposal_verb)
    checks = _PartChecks(val, pred)
    parts, nverb, verbs, boxes = checks.run(mode)
    _check_verbs(val, pred, parts, nverb, verbs)
    if pred.form is None:
        checks.check_boxes(parts, boxes)
    return checks.shapes, len(verbs)


def _part_boxes(pred: PartColumns, mode: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """All part boxes (proposals in list mode) as an (n, 4) array and the part each belongs to; (None,
    None) when some are malformed (those are errors already)."""
    n = len(pred.part_name)
    if pred.form == "single":
        return pred.part_box_array, np.arange(n)
    if pred.form == "list":
        return pred.proposal_box_array, np.repeat(np.arange(n), pred.part_nbox)
    values = pred.part_box_values(np.arange(n))
    try:
        if mode == "single":
            return np.array(values, dtype=np.float64).reshape(-1, 4), np.arange(n)
        counts = [len(v) for v in values]
        return (np.array(list(chain.from_iterable(values)), dtype=np.float64).reshape(-1, 4),
                np.repeat(np.arange(n), counts))
    except (TypeError, ValueError, OverflowError):
        return None, None


def _check_corner_order(val: _Validator, pred: PartColumns, mode: str) -> None:
    """One warning each for human and part boxes whose corners are out of order (x2 < x1 or y2 < y1: often
    [x, y, w, h] written for [x1, y1, x2, y2]): such a box covers nothing and never matches."""
    humans = pred.clean_human_boxes(np.arange(len(pred.human_parts)))
    parts, owner = _part_boxes(pred, mode)
    for boxes, kind in ((humans, "human"), (parts, "part")):
        if boxes is None or not len(boxes):
            continue
        bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
        if not len(bad):
            continue
        if kind == "human":
            key, where = _human_key(pred, int(bad[0]), 9), pred.where_human(int(bad[0]))
        else:
            key, where = _part_key(pred, int(owner[bad[0]]), 9), pred.where_part(int(owner[bad[0]]))
        val.add(key, val.part_file, where + ".box", f"{len(bad)} {kind} box(es) have x2 < x1 or y2 < y1, this one "
                f"{boxes[bad[0]].tolist()}: such a box covers nothing and never matches (boxes are [x1, y1, x2, "
                "y2]; [x, y, w, h] written instead?)", "warning")


def _looks_like(shapes: Counter) -> str | None:
    if shapes["list"] and not shapes["single"] and not shapes[None]:
        return "list"
    if shapes["single"] and not shapes["list"] and not shapes[None]:
        return "single"
    return None


def _check_coverage(val: _Validator, pred_vid: Mapping, pred: PartColumns, gt_vid, gt: PartColumns | None) -> None:
    """Ground-truth videos and frames the submission lacks; videos it has that the GT lacks."""
    if gt_vid is not None:
        for i, video in enumerate(gt_vid):
            if video not in pred_vid:
                val.add((5, 0, i), val.vid_file, str(video), "ground-truth video missing")
        for i, video in enumerate(pred_vid):
            if video not in gt_vid:
                val.add((5, 1, i), val.vid_file, str(video), "video not in the ground truth (ignored)", "warning")
    for v, video in enumerate(gt.videos if gt is not None else ()):
        if (gt_vid is None or video in gt_vid) and gt.video_frames[v] >= 0:
            _check_video_coverage(val, pred, gt, v, video)


def _annotated(gt: PartColumns, frames: np.ndarray) -> np.ndarray:
    """Which GT frames have humans: a non-empty list, or (in a malformed file) anything else but empty."""
    counts = gt.frame_humans[frames]
    annotated = counts > 0
    if gt.frame_value is not None and (counts < 0).any():
        for i in np.nonzero(counts < 0)[0].tolist():
            frame = gt.frame_value[frames[i]]
            annotated[i] = isinstance(frame, dict) and bool(frame.get("humans"))
    return annotated


def _check_video_coverage(val: _Validator, pred: PartColumns, gt: PartColumns, v: int, video) -> None:
    """A GT video with annotated humans: in the prediction, with every such frame (else it counts 0)."""
    frames = np.arange(gt.frame_start[v], gt.frame_start[v] + gt.video_frames[v])
    scored = frames[_annotated(gt, frames)]
    if not len(scored):
        return
    pv = pred.video_index.get(video)
    if pv is None or pred.video_frames[pv] < 0:
        val.add((6, v), val.part_file, str(video), "ground-truth video with annotated humans missing")
        return
    have = set(pred.frame_key[pred.frame_start[pv]:pred.frame_start[pv] + pred.video_frames[pv]])
    for f in scored.tolist():
        if gt.frame_key[f] not in have:
            val.add((6, v, f), val.part_file, f"{video}/{gt.frame_key[f]}",
                    "ground-truth frame missing from the prediction (counts 0)", "warning")


def _load_pred(val: _Validator, pred_vid, pred_part, mode: str) -> tuple[Mapping, PartColumns]:
    """The prediction files; one that cannot be read or is not a JSON object becomes an error (and empty)."""
    out = []
    for step, (name, read) in enumerate((("pred_vid_result", lambda x: load_json(x, "pred_vid_result")),
                                          ("pred_part_result", lambda x: part_columns(x, "pred_part_result", mode)))):
        try:
            out.append(read((pred_vid, pred_part)[step]))
        except ScoringError as e:
            val.add((0, step), f"{name}.json", "", str(e))
            out.append({} if step == 0 else walk_part_file({}, PRED_PART))
    val.vid_file, val.part_file = file_label(out[0], PRED_VID), out[1].file
    return out[0], out[1]


@gc_paused()  # walks millions of small objects
def validate_submission(pred_vid, pred_part, gt_vid=None, gt_part=None, vocab=None,
                        mode: str = "list") -> SubmissionReport:
    """Check a submission and return a :class:`SubmissionReport`.

    The files are dicts (as loaded), paths, or (the part files) columns from :func:`open_submission` and
    :func:`open_ground_truth`. The validator checks everything; the scorer reads only what the score
    needs, so every submission the validator accepts scores without error, and every one the scorer
    rejects is rejected here.

    Errors: a file that is not valid JSON or not a JSON object, wrong structure or types, a human without
    ``parts`` (``{}`` when it has none: the public script reads them from every matched human), parts
    listed without a string ``name``, boxes that are not 4 finite numbers (``true``/``false`` are not
    numbers), more than 10 humans in a frame or 5 proposals for a part, box and verb lists of different
    lengths, parts written in the other mode (the report says which mode the submission looks like), and
    (when ``gt_vid`` is given) ground-truth videos missing from ``pred_vid_result`` or, when ``gt_part`` is
    given, videos with annotated humans missing from ``pred_part_result``. Warnings: class, part and state
    names outside ``vocab`` (default: the built-in vocabularies) and the ground truth (such names never
    score; counted in ``unknown_names``), frame keys not of the form ``img_00001.json`` or not on the scored
    grid, extra videos, and scored ground-truth frames the prediction lacks (each counts 0).

    Problems of the submission never raise; ground truth that cannot be read raises :class:`ScoringError`.
    """
    from tpslab.vocab import Vocab

    check_mode(mode)
    gt_vid = load_json(gt_vid, "gt_vid_result") if gt_vid is not None else None
    gt = part_columns(gt_part, "gt_part_result", "single") if gt_part is not None else None
    val = _Validator(vocab or Vocab.default(), mode, gt_vid, gt)
    pred_vid, pred = _load_pred(val, pred_vid, pred_part, mode)
    _check_labels(val, pred_vid)
    _check_frames(val, pred, pred_vid)
    _check_humans(val, pred)
    report = val.report
    shapes, proposals = _check_parts(val, pred, mode)
    report.looks_like = _looks_like(shapes)
    _check_coverage(val, pred_vid, pred, gt_vid, gt)
    _check_corner_order(val, pred, mode)
    report.problems = val.problems()
    if report.looks_like not in (None, mode):
        held = "lists of boxes and verbs" if report.looks_like == "list" else "one box and one verb"
        report.problems.insert(0, Problem(val.part_file, "", f"every part holds {held}: this looks like a mode "
                                          f"'{report.looks_like}' submission, not mode '{mode}'"))
    report.stats = {"videos": len(pred_vid), "frames": len(pred.frame_key), "humans": len(pred.human_parts),
                    "parts": len(pred.part_name), "proposals": proposals}
    return report
