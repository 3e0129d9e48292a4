"""Challenge files: ground truth from a dataset, predictions from tables, validation, zip in and out.

- :func:`export_ground_truth` writes ``gt_vid_result.json`` and ``gt_part_result.json`` for any set of videos
  of a loaded dataset (e.g. the validation split): scored frames only (img_00001, img_00006, ...), parts
  keyed by name, part-less humans and frames without humans kept.
- :func:`build_predictions` turns prediction tables (the long format below) into ``pred_vid_result`` and
  ``pred_part_result`` structures; :func:`write_prediction_files` and :func:`write_submission_zip` write them.
- :func:`validate_submission` checks schema, vocabulary names, limits and coverage of the ground truth and
  returns a readable :class:`SubmissionReport`.
- :func:`read_submission` reads a folder or a zip safely (no absolute paths or ``..``; the two files at the
  root or inside one folder; bounded size).

Prediction tables (input of :func:`build_predictions`)
------------------------------------------------------
``parts``: one row per proposal of one part of one predicted human, columns

- ``video`` (str), ``frame`` (int, 1-based as in ``img_00001.json``), ``human`` (any id, unique within
  the frame; humans are written in ascending id order),
- ``human_x1, human_y1, human_x2, human_y2``: the human box (the same on every row of that human),
- ``part`` (body part name; NA for a human predicted without parts), ``part_x1 .. part_y2``, ``state``,
- optional ``proposal``: the rank of the proposal (ascending; default: row order).

``videos``: the predicted class per video, as a ``{video: label}`` mapping, a Series indexed by video, or a
DataFrame with columns ``video`` and ``label`` (or ``predicted``). ``frames`` (optional): (video, frame)
pairs to write even where no human was predicted; see :func:`build_predictions` for why that matters.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from tpslab.annotations import frame_key
from tpslab.fileio import atomic_write_bytes
from tpslab.errors import Problem
from tpslab.memory import gc_paused
from tpslab.metrics.official import ScoringError, box_problem, loads_json

GT_VID, GT_PART = "gt_vid_result.json", "gt_part_result.json"
PRED_VID, PRED_PART = "pred_vid_result.json", "pred_part_result.json"
SCORED_STRIDE = 5
MAX_HUMANS = 10
MAX_PROPOSALS = 5
MAX_ZIP_BYTES = 4 << 30
_FRAME_KEY = re.compile(r"img_(\d{5,})\.json")
_BOX_COLS = ("x1", "y1", "x2", "y2")


class SubmissionError(ScoringError):
    """A submission or prediction table that cannot be used; ``problems`` lists every offending place."""


def frame_number(key: str) -> int:
    """1 for ``img_00001.json``; ValueError for any other shape."""
    m = _FRAME_KEY.fullmatch(str(key))
    if not m:
        raise ValueError(f"not a frame key of the form img_00001.json: {key!r}")
    return int(m.group(1))


def is_scored(frame, stride: int = SCORED_STRIDE) -> bool:
    """Whether a 1-based frame number is one the challenge scores (1, 6, 11, ...)."""
    return (int(frame) - 1) % stride == 0


def _number(v):
    """A float that is an integer becomes an int (as annotations usually store pixels); floats stay floats."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2 ** 53 else f


def _box(values) -> list:
    return [_number(v) for v in values]


def _dumps(obj) -> bytes:
    import orjson

    return orjson.dumps(obj)


def _loads(data: bytes, name: str):
    try:
        return loads_json(data, name)
    except ScoringError as e:
        raise SubmissionError(str(e)) from None


# ----------------------------------------------------------------------------------------------------
# Ground truth


@gc_paused()  # builds or walks millions of small objects
def export_ground_truth(dataset, out=None, videos: Iterable[str] | None = None, stride: int = SCORED_STRIDE):
    """The evaluation ground truth of ``videos`` (default: every train-split video) of a loaded dataset.

    ``dataset`` is a :class:`tpslab.dataset.TPSDataset` (or any object with its ``videos``, ``frames``,
    ``humans`` and ``parts`` tables). Returns ``(gt_vid, gt_part)``: ``{video: label}`` and
    ``{video: {"img_00001.json": {"humans": [{"box": [...], "parts": {name: {"box": [...], "verb": s}}}]}}}``
    with the scored frames only (1, 1 + stride, ...), in frame order, humans in file order, parts keyed by
    name in file order. Frames without humans and humans without parts are kept (both matter to the score).
    With ``out``, also writes ``gt_vid_result.json`` and ``gt_part_result.json`` into that folder.

    Raises :class:`SubmissionError` for unknown videos, test-split videos (no released annotations) and
    humans that repeat a part name (a dict keyed by name cannot hold both).
    """
    vt = dataset.videos
    labels = dict(zip(vt["video"].astype(str), vt["label"].astype(object)))
    if videos is None:
        chosen = [v for v, s in zip(vt["video"].astype(str), vt["split"].astype(str)) if s == "train"]
    else:
        chosen = [str(v) for v in videos]
        unknown = [v for v in chosen if v not in labels]
        if unknown:
            raise SubmissionError(f"{len(unknown)} unknown video(s)",
                                  [Problem("videos", v, "not in the dataset") for v in unknown])
        splits = dict(zip(vt["video"].astype(str), vt["split"].astype(str)))
        test = [v for v in chosen if splits[v] != "train"]
        if test:
            raise SubmissionError(f"{len(test)} video(s) of the test split have no released annotations",
                                  [Problem("videos", v, "test split") for v in test])
    chosen = list(dict.fromkeys(chosen))
    keep = set(chosen)

    def rows(table):
        t = table[table["video"].astype(str).isin(keep) & ((table["frame"].to_numpy() - 1) % stride == 0)]
        return t

    frames = rows(dataset.frames)
    humans = rows(dataset.humans)
    parts = rows(dataset.parts)
    gt_part = {v: {} for v in chosen}
    for video, frame in sorted(zip(frames["video"].astype(str), frames["frame"].astype(int)),
                               key=lambda x: (x[0], x[1])):
        gt_part[video][frame_key(frame)] = {"humans": []}
    people = {}
    order = np.lexsort((humans["human"].to_numpy(), humans["frame"].to_numpy()))
    h = humans.iloc[order]
    for video, frame, human, *box in zip(h["video"].astype(str), h["frame"].astype(int), h["human"].astype(int),
                                         *(h[c].to_numpy(dtype=float) for c in _BOX_COLS)):
        person = {"box": _box(box), "parts": {}}
        people[(video, frame, human)] = person
        frame_dict = gt_part[video].setdefault(frame_key(frame), {"humans": []})
        frame_dict["humans"].append(person)
    duplicates = []
    cols = [parts[f"part_{c}"].to_numpy(dtype=float) for c in _BOX_COLS]
    for video, frame, human, name, state, *box in zip(parts["video"].astype(str), parts["frame"].astype(int),
                                                      parts["human"].astype(int), parts["part"].astype(str),
                                                      parts["state"].astype(str), *cols):
        person = people.get((video, frame, human))
        if person is None:
            raise SubmissionError("parts table refers to a human missing from the humans table",
                                  [Problem(GT_PART, f"{video}/{frame_key(frame)}/humans[{human}]", "no such human")])
        if name in person["parts"]:
            duplicates.append(Problem(GT_PART, f"{video}/{frame_key(frame)}/humans[{human}].parts.{name}",
                                      "part name repeated in one human"))
            continue
        person["parts"][name] = {"box": _box(box), "verb": state}
    if duplicates:
        raise SubmissionError(f"{len(duplicates)} repeated part name(s): the ground truth keys parts by name",
                              duplicates)
    gt_vid = {v: str(labels[v]) for v in chosen}
    if out is not None:
        write_json_pair(out, GT_VID, gt_vid, GT_PART, gt_part)
    return gt_vid, gt_part


def write_json_pair(out, vid_name: str, vid: dict, part_name: str, part: dict) -> tuple[Path, Path]:
    """Write two JSON files into folder ``out`` (atomically: each appears only when complete)."""
    out = Path(out)
    paths = out / vid_name, out / part_name
    atomic_write_bytes(paths[1], _dumps(part))
    atomic_write_bytes(paths[0], _dumps(vid))
    return paths


def read_ground_truth(gt_dir) -> tuple[dict, dict]:
    """``(gt_vid, gt_part)`` from a folder holding ``gt_vid_result.json`` and ``gt_part_result.json``."""
    gt_dir = Path(gt_dir)
    out = []
    for name in (GT_VID, GT_PART):
        path = gt_dir / name
        if not path.is_file():
            raise SubmissionError(f"{path} is missing (expected {GT_VID} and {GT_PART} in {gt_dir})")
        out.append(_loads(path.read_bytes(), str(path)))
    return out[0], out[1]


# ----------------------------------------------------------------------------------------------------
# Predictions from tables


def _video_labels(videos) -> dict:
    if isinstance(videos, pd.DataFrame):
        col = "label" if "label" in videos.columns else "predicted" if "predicted" in videos.columns else None
        if "video" not in videos.columns or col is None:
            raise SubmissionError("the videos table needs columns 'video' and 'label' (or 'predicted')")
        pairs = zip(videos["video"], videos[col])
    elif isinstance(videos, pd.Series):
        pairs = videos.items()
    elif isinstance(videos, Mapping):
        pairs = videos.items()
    else:
        raise TypeError(f"videos must be a mapping, a Series or a DataFrame, got {type(videos).__name__}")
    out, bad = {}, []
    for video, label in pairs:
        if isinstance(label, (list, dict, tuple)) or pd.isna(label):
            bad.append(Problem("videos", str(video), f"no predicted label ({label!r})"))
        elif str(video) in out and out[str(video)] != str(label):
            bad.append(Problem("videos", str(video), "two different labels"))
        else:
            out[str(video)] = str(label)
    if bad:
        raise SubmissionError(f"{len(bad)} bad video label(s)", bad)
    return out


@gc_paused()  # builds or walks millions of small objects
def build_predictions(parts: pd.DataFrame, videos, frames=None, mode: str = "list",
                      max_humans: int = MAX_HUMANS, max_proposals: int = MAX_PROPOSALS):
    """``(pred_vid, pred_part)`` from prediction tables (see the module docstring for the long format).

    ``mode="list"`` writes every part as ``{"box": [b, ...], "verb": [s, ...]}`` (proposals in ``proposal``
    order, at most ``max_proposals``); ``mode="single"`` writes ``{"box": b, "verb": s}`` and allows one row
    per part. ``frames``: (video, frame) pairs (a DataFrame with those columns or an iterable of pairs) to
    write even without predicted humans. It matters: a ground-truth frame absent from the prediction scores
    0, and a ground-truth frame whose humans have no annotated parts is dropped from the score only when the
    prediction contains it. Videos of ``videos`` without rows get an empty ``{}``.

    Raises :class:`SubmissionError` listing every problem: missing columns, a human whose box differs
    between rows, non-finite boxes, too many humans in a frame or proposals for a part, repeated parts
    in ``single`` mode.
    """
    if mode not in ("list", "single"):
        raise ValueError(f"mode must be 'list' or 'single', got {mode!r}")
    pred_vid = _video_labels(videos)
    need = ["video", "frame", "human", *(f"human_{c}" for c in _BOX_COLS), "part", *(f"part_{c}" for c in _BOX_COLS),
            "state"]
    missing = [c for c in need if c not in parts.columns]
    if missing:
        raise SubmissionError(f"the parts table lacks columns {missing}")
    t = parts.reset_index(drop=True)
    if "proposal" in t.columns:
        t = t.iloc[np.argsort(t["proposal"].to_numpy(), kind="stable")]
    t = t.sort_values(["video", "frame", "human"], kind="stable")
    def where(i):
        row = t.iloc[i]
        return f"{row['video']}/{frame_key(row['frame'])}/human {row['human']}"

    problems = []
    hbox = t[[f"human_{c}" for c in _BOX_COLS]].to_numpy(dtype=float)
    has_part = t["part"].notna().to_numpy()
    pbox = t[[f"part_{c}" for c in _BOX_COLS]].to_numpy(dtype=float)
    for i in np.nonzero(~np.isfinite(hbox).all(axis=1))[0]:
        problems.append(Problem("parts table", where(i), "human box is not 4 finite numbers"))
    for i in np.nonzero(has_part & ~np.isfinite(pbox).all(axis=1))[0]:
        problems.append(Problem("parts table", f"{where(i)} part {t['part'].iloc[i]}",
                                "part box is not 4 finite numbers"))
    for i in np.nonzero(has_part & t["state"].isna().to_numpy())[0]:
        problems.append(Problem("parts table", f"{where(i)} part {t['part'].iloc[i]}", "no state"))
    unknown = sorted(set(t["video"].astype(str)) - set(pred_vid))
    for v in unknown:
        problems.append(Problem("parts table", v, "video has parts but no predicted label"))
    pred_part = {v: {} for v in pred_vid}
    humans_seen = {}
    for i, (video, frame, human, part, state) in enumerate(zip(t["video"].astype(str), t["frame"].astype(int),
                                                              t["human"], t["part"], t["state"])):
        frames_of = pred_part.setdefault(video, {})
        frame_dict = frames_of.setdefault(frame_key(frame), {"humans": []})
        key = (video, frame, human)
        person = humans_seen.get(key)
        box = _box(hbox[i])
        if person is None:
            person = {"box": box, "parts": {}}
            humans_seen[key] = person
            frame_dict["humans"].append(person)
        elif person["box"] != box:
            problems.append(Problem("parts table", where(i), f"human box {box} differs from {person['box']}"))
        if not has_part[i]:
            continue
        pb = _box(pbox[i])
        entry = person["parts"].get(part)
        if mode == "single":
            if entry is not None:
                problems.append(Problem("parts table", f"{where(i)} part {part}", "more than one row in mode 'single'"))
                continue
            person["parts"][part] = {"box": pb, "verb": str(state)}
        else:
            if entry is None:
                entry = person["parts"][part] = {"box": [], "verb": []}
            entry["box"].append(pb)
            entry["verb"].append(str(state))
    for video, frames_of in pred_part.items():
        for key, fr in frames_of.items():
            if len(fr["humans"]) > max_humans:
                problems.append(Problem("parts table", f"{video}/{key}",
                                        f"{len(fr['humans'])} humans, at most {max_humans} allowed"))
            if mode == "list":
                for h, person in enumerate(fr["humans"]):
                    for name, entry in person["parts"].items():
                        if len(entry["verb"]) > max_proposals:
                            problems.append(Problem("parts table", f"{video}/{key}/humans[{h}].parts.{name}",
                                                    f"{len(entry['verb'])} proposals, at most {max_proposals}"))
    if frames is not None:
        pairs = zip(frames["video"], frames["frame"]) if isinstance(frames, pd.DataFrame) else frames
        for video, frame in pairs:
            if str(video) not in pred_vid:
                problems.append(Problem("frames", str(video), "video has frames but no predicted label"))
                continue
            pred_part[str(video)].setdefault(frame_key(frame), {"humans": []})
    if problems:
        raise SubmissionError(f"{len(problems)} problem(s) in the prediction tables", problems)
    for video, frames_of in pred_part.items():
        pred_part[video] = dict(sorted(frames_of.items()))
    return pred_vid, pred_part


def write_prediction_files(out, pred_vid: dict, pred_part: dict) -> tuple[Path, Path]:
    """Write ``pred_vid_result.json`` and ``pred_part_result.json`` into folder ``out``."""
    return write_json_pair(out, PRED_VID, pred_vid, PRED_PART, pred_part)


def write_submission_zip(path, pred_vid: dict, pred_part: dict) -> Path:
    """Write the challenge zip: the two prediction files at its root, no folder (atomic)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(PRED_VID, _dumps(pred_vid))
        z.writestr(PRED_PART, _dumps(pred_part))
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


# ----------------------------------------------------------------------------------------------------
# Reading a submission


def _member_parts(name: str) -> tuple[str, ...] | None:
    """Path components of a zip member name, or None when it is unsafe (absolute, drive, ``..``)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return None
    parts = tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))
    if ".." in parts:
        return None
    return parts


def read_submission(path, max_bytes: int = MAX_ZIP_BYTES) -> tuple[dict, dict]:
    """``(pred_vid, pred_part)`` from a submission folder or zip.

    A zip must hold ``pred_vid_result.json`` and ``pred_part_result.json`` at its root or inside one
    folder (``__MACOSX`` entries and other files are ignored). Absolute member names, drive letters and
    ``..`` are rejected, and the two files may not hold more than ``max_bytes`` together (checked on the
    bytes actually inflated, not only on what the zip declares). Nothing is extracted to disk.
    """
    path = Path(path)
    if path.is_dir():
        out = []
        for name in (PRED_VID, PRED_PART):
            f = path / name
            if not f.is_file():
                raise SubmissionError(f"{f} is missing (expected {PRED_VID} and {PRED_PART} in {path})")
            if f.stat().st_size > max_bytes:
                raise SubmissionError(f"{f} is larger than {max_bytes} bytes")
            out.append(_loads(f.read_bytes(), str(f)))
        return out[0], out[1]
    if not path.is_file():
        raise FileNotFoundError(f"no submission at {path}")
    if not zipfile.is_zipfile(path):
        raise SubmissionError(f"{path} is neither a folder nor a zip file")
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        unsafe = [i.filename for i in infos if _member_parts(i.filename) is None]
        if unsafe:
            raise SubmissionError(f"{path}: unsafe member names (absolute or with '..')",
                                  [Problem(str(path), n, "unsafe name") for n in unsafe])
        found = {}
        for info in infos:
            parts = _member_parts(info.filename)
            if info.is_dir() or not parts or parts[0] == "__MACOSX" or parts[-1] not in (PRED_VID, PRED_PART):
                continue
            found.setdefault(parts[-1], []).append((parts[:-1], info))
        for name in (PRED_VID, PRED_PART):
            if name not in found:
                raise SubmissionError(f"{path}: {name} not found in the zip")
        folders = {folder for entries in found.values() for folder, _ in entries}
        if len(folders) != 1 or any(len(entries) != 1 for entries in found.values()):
            raise SubmissionError(f"{path}: expected one {PRED_VID} and one {PRED_PART}, at the root or in one "
                                  f"folder; found them in {sorted('/'.join(f) or '(root)' for f in folders)}")
        folder = next(iter(folders))
        if len(folder) > 1:
            raise SubmissionError(f"{path}: the files are nested {len(folder)} folders deep ({'/'.join(folder)}); "
                                  "at most one folder is accepted")
        declared = sum(found[n][0][1].file_size for n in (PRED_VID, PRED_PART))
        if declared > max_bytes:
            raise SubmissionError(f"{path}: the two files inflate to {declared} bytes, more than {max_bytes} bytes")
        out, budget = [], max_bytes
        for name in (PRED_VID, PRED_PART):
            try:
                with z.open(found[name][0][1]) as f:
                    data = f.read(budget + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
                raise SubmissionError(f"{path}: cannot read {name} from the zip: {e}") from None
            if len(data) > budget:
                raise SubmissionError(f"{path}: the two files inflate to more than {max_bytes} bytes")
            budget -= len(data)
            out.append(_loads(data, f"{path}:{name}"))
    return out[0], out[1]


# ----------------------------------------------------------------------------------------------------
# Validation


@dataclass
class SubmissionReport:
    """Problems found in a submission (``severity`` "error" or "warning") and counts of what it holds."""

    problems: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

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

    def __str__(self, limit: int = 5) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.stats.items())
        head = (f"submission {'OK' if self.ok else 'NOT OK'}: {len(self.errors)} error(s), "
                f"{len(self.warnings)} warning(s); {counts}")
        lines = [head]
        by_kind = {}
        for p in self.problems:
            by_kind.setdefault((p.severity, p.message), []).append(p)
        for (severity, message), items in sorted(by_kind.items(), key=lambda kv: (kv[0][0] != "error", -len(kv[1]))):
            lines.append(f"{severity}: {message} ({len(items)}x)")
            for p in items[:limit]:
                lines.append(f"    {p.path}: {p.field}")
            if len(items) > limit:
                lines.append(f"    ... and {len(items) - limit} more")
        return "\n".join(lines)


def _is_box(b) -> bool:
    return isinstance(b, list) and box_problem(b) is None


@gc_paused()  # builds or walks millions of small objects
def validate_submission(pred_vid, pred_part, gt_vid=None, gt_part=None, vocab=None, mode: str = "list",
                        max_humans: int = MAX_HUMANS, max_proposals: int = MAX_PROPOSALS) -> SubmissionReport:
    """Check a submission (dicts or paths) and return a :class:`SubmissionReport` (no exception).

    Errors: wrong structure or types, boxes that are not 4 finite numbers, more than ``max_humans`` humans in
    a frame or ``max_proposals`` proposals for a part, box and verb lists of different lengths, and (when
    ``gt_vid`` is given) ground-truth videos missing from ``pred_vid_result`` or, when ``gt_part`` is given,
    videos with annotated humans missing from ``pred_part_result``. Warnings: names outside ``vocab``
    (default: the built-in vocabularies; such names never score), frame keys not of the form
    ``img_00001.json`` or not on the scored grid, extra videos, and scored ground-truth frames the
    prediction lacks (each counts 0).
    """
    from tpslab.metrics.official import load_json
    from tpslab.vocab import Vocab

    if mode not in ("list", "single"):
        raise ValueError(f"mode must be 'list' or 'single', got {mode!r}")
    vocab = vocab or Vocab.default()
    problems: list[Problem] = []

    def err(file, where, msg):
        problems.append(Problem(file, where, msg, "error"))

    def warn(file, where, msg):
        problems.append(Problem(file, where, msg, "warning"))

    pred_vid = load_json(pred_vid, "pred_vid_result")
    pred_part = load_json(pred_part, "pred_part_result")
    stats = Counter(videos=0, frames=0, humans=0, parts=0, proposals=0)
    if not isinstance(pred_vid, dict):
        err(PRED_VID, "", "expected an object {video: class}")
        pred_vid = {}
    for video, label in pred_vid.items():
        stats["videos"] += 1
        if not isinstance(label, str):
            err(PRED_VID, str(video), f"class must be a string, got {type(label).__name__}")
        elif label not in vocab.actions:
            warn(PRED_VID, str(video), "class not in the action vocabulary")
    if not isinstance(pred_part, dict):
        err(PRED_PART, "", "expected an object {video: {frame: {...}}}")
        pred_part = {}
    for video, frames in pred_part.items():
        if video not in pred_vid:
            warn(PRED_PART, str(video), "video has parts but no class in pred_vid_result")
        if not isinstance(frames, dict):
            err(PRED_PART, str(video), "expected an object of frames")
            continue
        for key, fr in frames.items():
            stats["frames"] += 1
            here = f"{video}/{key}"
            m = _FRAME_KEY.fullmatch(str(key))
            if not m:
                warn(PRED_PART, here, "frame key is not of the form img_00001.json (never scored)")
            elif not is_scored(int(m.group(1))):
                warn(PRED_PART, here, "frame is not a scored frame (1, 6, 11, ...): ignored by the scorer")
            humans = fr.get("humans") if isinstance(fr, dict) else None
            if not isinstance(humans, list):
                err(PRED_PART, here, "expected {'humans': [...]}")
                continue
            if len(humans) > max_humans:
                err(PRED_PART, here, f"more than {max_humans} humans")
            for h, person in enumerate(humans):
                stats["humans"] += 1
                hw = f"{here}/humans[{h}]"
                if not isinstance(person, dict):
                    err(PRED_PART, hw, "expected an object with 'box' and 'parts'")
                    continue
                if not _is_box(person.get("box")):
                    err(PRED_PART, hw + ".box", "box is not 4 finite numbers")
                parts = person.get("parts", {})
                if isinstance(parts, list):
                    named = [p for p in parts if isinstance(p, dict) and "name" in p]
                    if len(named) != len(parts):
                        err(PRED_PART, hw + ".parts", "parts given as a list need a 'name' each")
                    parts = {p["name"]: p for p in named}
                if not isinstance(parts, dict):
                    err(PRED_PART, hw + ".parts", "expected an object {part: {...}}")
                    continue
                for name, part in parts.items():
                    stats["parts"] += 1
                    pw = f"{hw}.parts.{name}"
                    if name not in vocab.parts:
                        warn(PRED_PART, pw, "part name not in the body-part vocabulary")
                    if not isinstance(part, dict) or "box" not in part or "verb" not in part:
                        err(PRED_PART, pw, "expected {'box': ..., 'verb': ...}")
                        continue
                    box, verb = part["box"], part["verb"]
                    if mode == "list":
                        if not isinstance(verb, list) or not isinstance(box, list):
                            err(PRED_PART, pw, "mode 'list' expects lists of boxes and verbs")
                            continue
                        if len(box) != len(verb):
                            err(PRED_PART, pw, "box and verb lists differ in length")
                        if len(verb) > max_proposals:
                            err(PRED_PART, pw, f"more than {max_proposals} proposals")
                        boxes, verbs = box, verb
                    else:
                        if isinstance(verb, list):
                            err(PRED_PART, pw, "mode 'single' expects one verb, got a list")
                            continue
                        boxes, verbs = [box], [verb]
                    stats["proposals"] += len(verbs)
                    if not all(_is_box(b) for b in boxes):
                        err(PRED_PART, pw + ".box", "a box is not 4 finite numbers")
                    for v in verbs:
                        if not isinstance(v, str):
                            err(PRED_PART, pw + ".verb", f"verb must be a string, got {type(v).__name__}")
                        elif v not in vocab.states:
                            warn(PRED_PART, pw + ".verb", "state not in the part-state vocabulary")
    if gt_vid is not None:
        gt_vid = load_json(gt_vid, "gt_vid_result")
        for video in gt_vid:
            if video not in pred_vid:
                err(PRED_VID, str(video), "ground-truth video missing")
        for video in pred_vid:
            if video not in gt_vid:
                warn(PRED_VID, str(video), "video not in the ground truth (ignored)")
    if gt_part is not None:
        gt_part = load_json(gt_part, "gt_part_result")
        for video, frames in gt_part.items():
            if gt_vid is not None and video not in gt_vid:
                continue
            scored = [k for k, fr in frames.items() if isinstance(fr, dict) and fr.get("humans")]
            if not scored:
                continue
            pframes = pred_part.get(video)
            if not isinstance(pframes, dict):
                err(PRED_PART, str(video), "ground-truth video with annotated humans missing")
                continue
            for key in scored:
                if key not in pframes:
                    warn(PRED_PART, f"{video}/{key}", "ground-truth frame missing from the prediction (counts 0)")
    return SubmissionReport(problems, dict(stats))


__all__ = ["GT_PART", "GT_VID", "PRED_PART", "PRED_VID", "SubmissionError", "SubmissionReport", "build_predictions",
           "export_ground_truth", "frame_key", "frame_number", "is_scored", "read_ground_truth", "read_submission",
           "validate_submission", "write_json_pair", "write_prediction_files", "write_submission_zip"]
