"""Challenge files: ground truth from a dataset, predictions from tables, validation, zip in and out.

- :func:`export_ground_truth` writes ``gt_vid_result.json`` and ``gt_part_result.json`` for any set of videos
  of a loaded dataset (e.g. the validation split): scored frames only (img_00001, img_00006, ...), parts
  keyed by name, part-less humans and frames without humans kept.
- :func:`build_predictions` turns prediction tables (the long format below) into ``pred_vid_result`` and
  ``pred_part_result`` structures; :func:`write_prediction_files` and :func:`write_submission_zip` write them.
- :func:`validate_submission` checks schema, vocabulary names, limits and coverage of the ground truth and
  returns a readable :class:`SubmissionReport`; it accepts nothing the scorer refuses.
- :func:`read_submission` reads a folder or a zip safely (no absolute paths or ``..``; the two files at the
  root or inside one folder; no encrypted members; at most :data:`MAX_SUBMISSION_BYTES`, inflated in chunks).

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

import errno
import io
import re
import zipfile
import zlib
from collections import Counter
from itertools import repeat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from tpslab.annotations import frame_key
from tpslab.fileio import atomic_write_bytes
from tpslab.errors import Problem
from tpslab.memory import gc_paused
from tpslab.metrics.official import ScoringError, loads_json
from tpslab.vocab import PARTS

GT_VID, GT_PART = "gt_vid_result.json", "gt_part_result.json"
PRED_VID, PRED_PART = "pred_vid_result.json", "pred_part_result.json"
SCORED_STRIDE = 5
MAX_HUMANS = 10
MAX_PROPOSALS = 5
#: Videos of the test split, and scored frames per video (about 151 annotated frames / stride 5).
TEST_VIDEOS = 932
SCORED_FRAMES_PER_VIDEO = 30
#: Bytes of the default bound on a submission (its two JSON files together, as inflated from the zip):
#: the largest test-set submission the challenge's limits allow, written as compact JSON with room to
#: spare. 932 test videos x 30 scored frames (img_00001, img_00006, ... of ~151 annotated frames) x
#: 10 humans x 10 parts x 5 proposals; a proposal is a box of four numbers of up to 20 characters and
#: a verb (~112 bytes with brackets, quotes and commas), a part adds 48 bytes of keys, a human 128 (its
#: box and keys), a frame 32 (its key), a video 64 (its name and class). That is 1,736,711,168 bytes
#: (1.6 GiB; real submissions are far smaller). Override with ``read_submission(..., max_bytes=)`` or
#: ``tpslab evaluate --max-bytes``.
MAX_SUBMISSION_BYTES = TEST_VIDEOS * (64 + SCORED_FRAMES_PER_VIDEO * (32 + MAX_HUMANS * (
    128 + len(PARTS) * (48 + MAX_PROPOSALS * 112))))
#: Submissions (JSON of numbers and names) deflate 2-6 times; a zip whose files inflate more than this
#: many times their compressed size is refused as a zip bomb once they pass ``RATIO_FREE_BYTES``
#: (small files may compress as they like). A real one can be read unzipped, from its folder.
MAX_INFLATE_RATIO = 100
RATIO_FREE_BYTES = 64 << 20
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


def _read_bounded(f, limit: int, chunk: int = 1 << 20) -> bytearray:
    """At most ``limit + 1`` bytes of binary stream ``f``, read ``chunk`` bytes at a time.

    Memory stays within the bound whatever the stream holds: a result longer than ``limit`` means the
    stream holds more (the caller refuses it) and nothing past that was read."""
    data = bytearray()
    while len(data) <= limit:
        block = f.read(min(chunk, limit + 1 - len(data)))
        if not block:
            break
        data += block
    return data


def read_submission(path, max_bytes: int = MAX_SUBMISSION_BYTES,
                    max_ratio: float | None = MAX_INFLATE_RATIO) -> tuple[dict, dict]:
    """``(pred_vid, pred_part)`` from a submission folder or zip.

    A zip must hold ``pred_vid_result.json`` and ``pred_part_result.json`` at its root or inside one
    folder (``__MACOSX`` entries and other files are ignored). Absolute member names, drive letters and
    ``..`` are rejected, and so are encrypted members. The two files may not hold more than ``max_bytes``
    together (default :data:`MAX_SUBMISSION_BYTES`, the largest test-set submission the limits allow):
    checked on the sizes the zip declares, then on the bytes actually inflated, which are read in chunks
    and stop as soon as the bound is crossed, so a zip bomb costs at most ``max_bytes`` of memory.
    Beyond :data:`RATIO_FREE_BYTES` the files may also not inflate more than ``max_ratio`` times their
    compressed size (default :data:`MAX_INFLATE_RATIO`; ``None`` turns the check off): a 591 KB zip
    inflating to 600 MB is refused after 64 MiB, not parsed at 1.3 GB of memory. Nothing is extracted
    to disk. Each file must hold one JSON object.

    Raises :class:`SubmissionError` naming the file and the problem, ``FileNotFoundError`` when ``path``
    does not exist.
    """
    path = Path(path)
    max_bytes = int(max_bytes)
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if path.is_dir():
        files = [path / name for name in (PRED_VID, PRED_PART)]
        for f in files:
            if not f.is_file():
                raise SubmissionError(f"{f} is missing (expected {PRED_VID} and {PRED_PART} in {path})")
        total = sum(f.stat().st_size for f in files)
        if total > max_bytes:
            raise SubmissionError(f"{path}: the two files hold {total} bytes, more than {max_bytes} bytes "
                                  "(raise max_bytes if the submission is real)")
        return tuple(_loads(f.read_bytes(), str(f)) for f in files)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no submission folder or zip here", str(path))
    if not zipfile.is_zipfile(path):
        raise SubmissionError(f"{path} is neither a folder nor a zip file")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise SubmissionError(f"{path}: not a readable zip file ({e})") from None
    with z:
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
        members = [found[n][0][1] for n in (PRED_VID, PRED_PART)]
        encrypted = [m.filename for m in members if m.flag_bits & 0x1]
        if encrypted:
            raise SubmissionError(f"{path}: {' and '.join(encrypted)} {'is' if len(encrypted) == 1 else 'are'} "
                                  "encrypted (password-protected); zip the files without a password")
        declared = sum(m.file_size for m in members)
        packed = sum(m.compress_size for m in members)
        limit = max_bytes if max_ratio is None else min(max_bytes, max(RATIO_FREE_BYTES, int(max_ratio * packed)))

        def too_big(inflated: int | None) -> SubmissionError:
            size = f"{inflated} bytes" if inflated is not None else f"more than {limit} bytes"
            if limit < max_bytes:  # the ratio was the tighter bound
                return SubmissionError(
                    f"{path}: the two files inflate to {size} from {packed} compressed, over {max_ratio:g} times "
                    "(JSON submissions deflate 2-6 times): refused as a zip bomb; if it is real, unzip it and "
                    "pass the folder")
            return SubmissionError(f"{path}: the two files inflate to {size}, more than {max_bytes} bytes "
                                   "(raise max_bytes if the submission is real)")

        if declared > limit:
            raise too_big(declared)
        out, budget = [], limit
        for name, member in zip((PRED_VID, PRED_PART), members):
            try:
                with z.open(member) as f:
                    data = _read_bounded(f, budget)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
                raise SubmissionError(f"{path}: cannot read {name} from the zip: {e}") from None
            if len(data) > budget:
                raise too_big(None)
            budget -= len(data)
            out.append(_loads(data, f"{path}:{name}"))
            del data
    return out[0], out[1]


# ----------------------------------------------------------------------------------------------------
# Validation


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
        return "\n".join(lines)


def _load_pred(obj, name: str, err) -> dict:
    """A prediction file as a dict; one that cannot be read or is not a JSON object becomes an error."""
    from tpslab.metrics.official import load_json

    try:
        return load_json(obj, name)
    except ScoringError as e:
        err(f"{name}.json", "", str(e))
        return {}


def _ground_truth_names(gt_vid, gt_part) -> tuple[set, set, set]:
    """Classes, part names and states that the ground truth uses (skipping whatever is malformed)."""
    from tpslab.metrics.official import _parts_dict

    classes = {v for v in (gt_vid or {}).values() if isinstance(v, str)}
    parts, states = set(), set()
    for frames in (gt_part or {}).values():
        for fr in frames.values() if isinstance(frames, dict) else ():
            humans = fr.get("humans") if isinstance(fr, dict) else None
            for person in humans if isinstance(humans, list) else ():
                try:
                    named = _parts_dict(person.get("parts") if isinstance(person, dict) else None, "", "")
                except ScoringError:
                    continue
                for name, part in named.items():
                    parts.add(name)
                    if isinstance(part, dict) and isinstance(part.get("verb"), str):
                        states.add(part["verb"])
    return classes, parts, states


@gc_paused()  # builds or walks millions of small objects
def validate_submission(pred_vid, pred_part, gt_vid=None, gt_part=None, vocab=None, mode: str = "list",
                        max_humans: int = MAX_HUMANS, max_proposals: int = MAX_PROPOSALS) -> SubmissionReport:
    """Check a submission (dicts or paths) and return a :class:`SubmissionReport`.

    The validator checks everything; the scorer reads only what the score needs, so every submission
    the validator accepts scores without error, and every one the scorer rejects is rejected here.

    Errors: a file that is not valid JSON or not a JSON object, wrong structure or types, a human without
    ``parts`` (``{}`` when it has none: the public script reads them from every matched human), parts
    listed without a string ``name``, boxes that are not 4 finite numbers (``true``/``false`` are not
    numbers), more than ``max_humans`` humans in a frame or ``max_proposals`` proposals for a part, box
    and verb lists of different lengths, parts written in the other mode (the report says which mode the
    submission looks like), and (when ``gt_vid`` is given) ground-truth videos missing from
    ``pred_vid_result`` or, when ``gt_part`` is given, videos with annotated humans missing from
    ``pred_part_result``. Warnings: class, part and state names outside ``vocab`` (default: the built-in
    vocabularies) and the ground truth (such names never score; counted in ``unknown_names``), frame keys
    not of the form ``img_00001.json`` or not on the scored grid, extra videos, and scored ground-truth
    frames the prediction lacks (each counts 0).

    Problems of the submission never raise; ground truth that cannot be read raises :class:`ScoringError`.
    """
    from tpslab.metrics.official import _parts_dict, box_problems, load_json
    from tpslab.vocab import Vocab

    if mode not in ("list", "single"):
        raise ValueError(f"mode must be 'list' or 'single', got {mode!r}")
    vocab = vocab or Vocab.default()
    problems: list[Problem] = []

    def err(file, where, msg):
        problems.append(Problem(file, where, msg, "error"))

    def warn(file, where, msg):
        problems.append(Problem(file, where, msg, "warning"))

    gt_vid = load_json(gt_vid, "gt_vid_result") if gt_vid is not None else None
    gt_part = load_json(gt_part, "gt_part_result") if gt_part is not None else None
    gt_classes, gt_parts, gt_states = _ground_truth_names(gt_vid, gt_part)
    known_classes, known_parts, known_states = (set(vocab.actions) | gt_classes, set(vocab.parts) | gt_parts,
                                                set(vocab.states) | gt_states)
    vocab_of = {"class": vocab.actions, "part": vocab.parts, "state": vocab.states}
    what = {"class": "action", "part": "body-part", "state": "part-state"}
    report = SubmissionReport(mode=mode)
    hints = {}  # (kind, name) -> the warning's message, made once per name

    def unknown(kind, name, where, file=PRED_PART):
        report.unknown_names[kind][name] += 1
        message = hints.get((kind, name))
        if message is None:
            near = vocab_of[kind].suggest(name) if len(hints) < 1000 else []
            report.suggestions[(kind, name)] = near
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            message = hints[kind, name] = f"{kind} {name!r} not in the {what[kind]} vocabulary{hint}"
        warn(file, where, message)

    pred_vid = _load_pred(pred_vid, "pred_vid_result", err)
    pred_part = _load_pred(pred_part, "pred_part_result", err)
    stats = Counter(videos=0, frames=0, humans=0, parts=0, proposals=0)
    shapes = Counter()  # parts whose verb is a list / a string
    human_boxes, human_where, part_boxes, part_where = [], [], [], []
    for video, label in pred_vid.items():
        stats["videos"] += 1
        if not isinstance(label, str):
            err(PRED_VID, str(video), f"class must be a string, got {type(label).__name__}")
        elif label not in known_classes:
            unknown("class", label, str(video), PRED_VID)
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
                human_boxes.append(person.get("box"))
                human_where.append(hw)
                if "parts" not in person:
                    err(PRED_PART, hw + ".parts", "missing 'parts' (use {} for a human without parts)")
                    continue
                try:
                    parts = _parts_dict(person["parts"], PRED_PART, hw)
                except ScoringError as e:
                    problems.extend(e.problems)
                    continue
                for name, part in parts.items():
                    stats["parts"] += 1
                    pw = f"{hw}.parts.{name}"
                    if name not in known_parts:
                        unknown("part", name, pw)
                    if not isinstance(part, dict) or "box" not in part or "verb" not in part:
                        err(PRED_PART, pw, "expected {'box': ..., 'verb': ...}")
                        continue
                    box, verb = part["box"], part["verb"]
                    shapes["list" if isinstance(verb, list) else "single" if isinstance(verb, str) else None] += 1
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
                    part_boxes += boxes
                    part_where += repeat(pw, len(boxes))
                    for v in verbs:
                        if not isinstance(v, str):
                            err(PRED_PART, pw + ".verb", f"verb must be a string, got {type(v).__name__}")
                        elif v not in known_states:
                            unknown("state", v, pw + ".verb")
    # Boxes are checked together, as the scorer checks them (quick when all are well formed).
    for i, _ in box_problems(human_boxes):
        err(PRED_PART, human_where[i] + ".box", "box is not 4 finite numbers")
    for where in dict.fromkeys(part_where[i] for i, _ in box_problems(part_boxes)):
        err(PRED_PART, where + ".box", "a box is not 4 finite numbers")
    if shapes["list"] and not shapes["single"] and not shapes[None]:
        report.looks_like = "list"
    elif shapes["single"] and not shapes["list"] and not shapes[None]:
        report.looks_like = "single"
    if report.looks_like not in (None, mode):
        held = "lists of boxes and verbs" if report.looks_like == "list" else "one box and one verb"
        problems.insert(0, Problem(PRED_PART, "", f"every part holds {held}: this looks like a mode "
                                   f"'{report.looks_like}' submission, not mode '{mode}'"))
    if gt_vid is not None:
        for video in gt_vid:
            if video not in pred_vid:
                err(PRED_VID, str(video), "ground-truth video missing")
        for video in pred_vid:
            if video not in gt_vid:
                warn(PRED_VID, str(video), "video not in the ground truth (ignored)")
    if gt_part is not None:
        for video, frames in gt_part.items():
            if gt_vid is not None and video not in gt_vid or not isinstance(frames, dict):
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
    report.problems, report.stats = problems, dict(stats)
    return report


__all__ = ["GT_PART", "GT_VID", "MAX_SUBMISSION_BYTES", "PRED_PART", "PRED_VID", "SubmissionError", "SubmissionReport",
           "build_predictions", "export_ground_truth", "frame_key", "frame_number", "is_scored", "read_ground_truth",
           "read_submission", "validate_submission", "write_json_pair", "write_prediction_files", "write_submission_zip"]
