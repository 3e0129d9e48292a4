"""Challenge files: ground truth from a dataset, predictions from tables, validation, zip in and out.

- :func:`export_ground_truth` writes ``gt_vid_result.json`` and ``gt_part_result.json`` for any set of videos
  of a loaded dataset (e.g. the validation split): scored frames only (img_00001, img_00006, ...), parts
  keyed by name, part-less humans and frames without humans kept.
- :func:`build_predictions` turns prediction tables (the long format below) into ``pred_vid_result`` and
  ``pred_part_result`` structures; :func:`write_prediction_files` and :func:`write_submission_zip` write them.
- :func:`validate_submission` checks schema, vocabulary names, limits and coverage of the ground truth and
  returns a readable :class:`SubmissionReport`; it accepts nothing the scorer refuses.
- :func:`read_submission` reads a folder or a zip safely (no absolute paths or ``..``; the two files at the
  root or inside one folder; no encrypted members; at most :data:`MAX_SUBMISSION_BYTES`, inflated in chunks);
  :func:`open_submission` and :func:`open_ground_truth` read the part file straight into columns
  (:class:`tpslab.challenge.PartColumns`), which the validator and the scorer take as they are.

The challenge's conventions (frame keys, the scored stride, the limits, the file names) live in
:mod:`tpslab.challenge`; the names below are kept for existing code.

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
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

import numpy as np

from tpslab.challenge import (BAD_PARTS, GT_PART, GT_VID, MAX_HUMANS, MAX_PROPOSALS, MISSING, NO_PARTS, PART_OBJECT,
                              PRED_PART, PRED_VID, PartColumns, ScoringError, box_problems, check_mode, frame_key,
                              frame_number, is_scored, load_json, loads_json, part_columns, segments, walk_part_file)
from tpslab.challenge import SCORED_STRIDE  # noqa: F401 (the old home of the convention)
from tpslab.errors import Problem
from tpslab.fileio import atomic_write_bytes
from tpslab.memory import gc_paused
from tpslab.vocab import PARTS

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
_BOX_COLS = ("x1", "y1", "x2", "y2")


class SubmissionError(ScoringError):
    """A submission or prediction table that cannot be used; ``problems`` lists every offending place."""


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


def _part_columns(data: bytes, name: str, form: str, label: str) -> PartColumns:
    try:
        return part_columns(data, name, form, label=label)
    except ScoringError as e:
        raise SubmissionError(str(e)) from None


# ----------------------------------------------------------------------------------------------------
# Ground truth


def _chosen_videos(vt, videos) -> list:
    """The videos to export (default: the train split), checked against the videos table."""
    labels = dict(zip(vt["video"].astype(str), vt["label"].astype(object)))
    if videos is None:
        return [v for v, s in zip(vt["video"].astype(str), vt["split"].astype(str)) if s == "train"]
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
    return list(dict.fromkeys(chosen))


def _gt_humans(gt_part: dict, humans) -> dict:
    """Every human of the scored frames as ``{"box": ..., "parts": {}}`` in its frame (file order);
    returns them by (video, frame, human)."""
    people = {}
    order = np.lexsort((humans["human"].to_numpy(), humans["frame"].to_numpy()))
    h = humans.iloc[order]
    for video, frame, human, *box in zip(h["video"].astype(str), h["frame"].astype(int), h["human"].astype(int),
                                         *(h[c].to_numpy(dtype=float) for c in _BOX_COLS)):
        person = {"box": _box(box), "parts": {}}
        people[(video, frame, human)] = person
        gt_part[video].setdefault(frame_key(frame), {"humans": []})["humans"].append(person)
    return people


def _gt_parts(people: dict, parts) -> None:
    """Each part into its human's ``parts`` (keyed by name, file order)."""
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


@gc_paused()  # builds or walks millions of small objects
def export_ground_truth(dataset, out=None, videos: Iterable[str] | None = None):
    """The evaluation ground truth of ``videos`` (default: every train-split video) of a loaded dataset.

    ``dataset`` is a :class:`tpslab.dataset.TPSDataset` (or any object with its ``videos``, ``frames``,
    ``humans`` and ``parts`` tables). Returns ``(gt_vid, gt_part)``: ``{video: label}`` and
    ``{video: {"img_00001.json": {"humans": [{"box": [...], "parts": {name: {"box": [...], "verb": s}}}]}}}``
    with the scored frames only (1, 6, 11, ...), in frame order, humans in file order, parts keyed by name
    in file order. Frames without humans and humans without parts are kept (both matter to the score).
    With ``out``, also writes ``gt_vid_result.json`` and ``gt_part_result.json`` into that folder.

    Raises :class:`SubmissionError` for unknown videos, test-split videos (no released annotations) and
    humans that repeat a part name (a dict keyed by name cannot hold both).
    """
    vt = dataset.videos
    chosen = _chosen_videos(vt, videos)
    keep = set(chosen)

    def rows(table):
        return table[table["video"].astype(str).isin(keep) & is_scored(table["frame"].to_numpy())]

    frames = rows(dataset.frames)
    gt_part = {v: {} for v in chosen}
    for video, frame in sorted(zip(frames["video"].astype(str), frames["frame"].astype(int)),
                               key=lambda x: (x[0], x[1])):
        gt_part[video][frame_key(frame)] = {"humans": []}
    _gt_parts(_gt_humans(gt_part, rows(dataset.humans)), rows(dataset.parts))
    labels = dict(zip(vt["video"].astype(str), vt["label"].astype(object)))
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


def _ground_truth_bytes(gt_dir) -> tuple[bytes, bytes, tuple[str, str]]:
    gt_dir = Path(gt_dir)
    out = []
    for name in (GT_VID, GT_PART):
        path = gt_dir / name
        if not path.is_file():
            raise SubmissionError(f"{path} is missing (expected {GT_VID} and {GT_PART} in {gt_dir})")
        out.append(path.read_bytes())
    return out[0], out[1], (str(gt_dir / GT_VID), str(gt_dir / GT_PART))


def read_ground_truth(gt_dir) -> tuple[dict, dict]:
    """``(gt_vid, gt_part)`` from a folder holding ``gt_vid_result.json`` and ``gt_part_result.json``."""
    vid, part, names = _ground_truth_bytes(gt_dir)
    return _loads(vid, names[0]), _loads(part, names[1])


def open_ground_truth(gt_dir) -> tuple[dict, PartColumns]:
    """``(gt_vid, gt_part)`` like :func:`read_ground_truth`, the part file read straight into columns."""
    vid, part, names = _ground_truth_bytes(gt_dir)
    return _loads(vid, names[0]), _part_columns(part, "gt_part_result", "single", names[1])


# ----------------------------------------------------------------------------------------------------
# Predictions from tables


def _label_pairs(videos):
    import pandas as pd

    if isinstance(videos, pd.DataFrame):
        col = "label" if "label" in videos.columns else "predicted" if "predicted" in videos.columns else None
        if "video" not in videos.columns or col is None:
            raise SubmissionError("the videos table needs columns 'video' and 'label' (or 'predicted')")
        return zip(videos["video"], videos[col])
    if isinstance(videos, (pd.Series, Mapping)):
        return videos.items()
    raise TypeError(f"videos must be a mapping, a Series or a DataFrame, got {type(videos).__name__}")


def _video_labels(videos) -> dict:
    import pandas as pd

    out, bad = {}, []
    for video, label in _label_pairs(videos):
        if isinstance(label, (list, dict, tuple)) or pd.isna(label):
            bad.append(Problem("videos", str(video), f"no predicted label ({label!r})"))
        elif str(video) in out and out[str(video)] != str(label):
            bad.append(Problem("videos", str(video), "two different labels"))
        else:
            out[str(video)] = str(label)
    if bad:
        raise SubmissionError(f"{len(bad)} bad video label(s)", bad)
    return out


class _TableBuilder:
    """The prediction structures from the long table, collecting every problem on the way."""

    NEED = ["video", "frame", "human", *(f"human_{c}" for c in _BOX_COLS), "part",
            *(f"part_{c}" for c in _BOX_COLS), "state"]

    def __init__(self, parts, pred_vid: dict, mode: str):
        missing = [c for c in self.NEED if c not in parts.columns]
        if missing:
            raise SubmissionError(f"the parts table lacks columns {missing}")
        t = parts.reset_index(drop=True)
        if "proposal" in t.columns:
            t = t.iloc[np.argsort(t["proposal"].to_numpy(), kind="stable")]
        self.t = t.sort_values(["video", "frame", "human"], kind="stable")
        self.pred_vid, self.mode = pred_vid, mode
        self.problems = []
        self.pred_part = {v: {} for v in pred_vid}

    def where(self, i: int) -> str:
        row = self.t.iloc[i]
        return f"{row['video']}/{frame_key(row['frame'])}/human {row['human']}"

    def check_values(self) -> None:
        """Boxes that are not 4 finite numbers, parts without a state, videos without a label."""
        t = self.t
        self.hbox = t[[f"human_{c}" for c in _BOX_COLS]].to_numpy(dtype=float)
        self.has_part = t["part"].notna().to_numpy()
        self.pbox = t[[f"part_{c}" for c in _BOX_COLS]].to_numpy(dtype=float)
        for i in np.nonzero(~np.isfinite(self.hbox).all(axis=1))[0]:
            self.problems.append(Problem("parts table", self.where(i), "human box is not 4 finite numbers"))
        for i in np.nonzero(self.has_part & ~np.isfinite(self.pbox).all(axis=1))[0]:
            self.problems.append(Problem("parts table", f"{self.where(i)} part {t['part'].iloc[i]}",
                                         "part box is not 4 finite numbers"))
        for i in np.nonzero(self.has_part & t["state"].isna().to_numpy())[0]:
            self.problems.append(Problem("parts table", f"{self.where(i)} part {t['part'].iloc[i]}", "no state"))
        for v in sorted(set(t["video"].astype(str)) - set(self.pred_vid)):
            self.problems.append(Problem("parts table", v, "video has parts but no predicted label"))

    def add_rows(self) -> None:
        t, humans_seen = self.t, {}
        for i, (video, frame, human, part, state) in enumerate(zip(t["video"].astype(str), t["frame"].astype(int),
                                                                  t["human"], t["part"], t["state"])):
            frame_dict = self.pred_part.setdefault(video, {}).setdefault(frame_key(frame), {"humans": []})
            person = humans_seen.get((video, frame, human))
            box = _box(self.hbox[i])
            if person is None:
                person = humans_seen[(video, frame, human)] = {"box": box, "parts": {}}
                frame_dict["humans"].append(person)
            elif person["box"] != box:
                self.problems.append(Problem("parts table", self.where(i),
                                             f"human box {box} differs from {person['box']}"))
            if self.has_part[i]:
                self.add_part(i, person["parts"], part, _box(self.pbox[i]), str(state))

    def add_part(self, i: int, parts: dict, name, box: list, state: str) -> None:
        entry = parts.get(name)
        if self.mode == "single":
            if entry is not None:
                self.problems.append(Problem("parts table", f"{self.where(i)} part {name}",
                                             "more than one row in mode 'single'"))
            else:
                parts[name] = {"box": box, "verb": state}
            return
        if entry is None:
            entry = parts[name] = {"box": [], "verb": []}
        entry["box"].append(box)
        entry["verb"].append(state)

    def check_limits(self) -> None:
        for video, frames_of in self.pred_part.items():
            for key, fr in frames_of.items():
                if len(fr["humans"]) > MAX_HUMANS:
                    self.problems.append(Problem("parts table", f"{video}/{key}",
                                                 f"{len(fr['humans'])} humans, at most {MAX_HUMANS} allowed"))
                for h, person in enumerate(fr["humans"] if self.mode == "list" else ()):
                    for name, entry in person["parts"].items():
                        if len(entry["verb"]) > MAX_PROPOSALS:
                            self.problems.append(Problem(
                                "parts table", f"{video}/{key}/humans[{h}].parts.{name}",
                                f"{len(entry['verb'])} proposals, at most {MAX_PROPOSALS}"))

    def add_frames(self, frames) -> None:
        import pandas as pd

        pairs = zip(frames["video"], frames["frame"]) if isinstance(frames, pd.DataFrame) else frames
        for video, frame in pairs:
            if str(video) not in self.pred_vid:
                self.problems.append(Problem("frames", str(video), "video has frames but no predicted label"))
                continue
            self.pred_part[str(video)].setdefault(frame_key(frame), {"humans": []})


@gc_paused()  # builds or walks millions of small objects
def build_predictions(parts, videos, frames=None, mode: str = "list"):
    """``(pred_vid, pred_part)`` from prediction tables (see the module docstring for the long format).

    ``mode="list"`` writes every part as ``{"box": [b, ...], "verb": [s, ...]}`` (proposals in ``proposal``
    order, at most 5); ``mode="single"`` writes ``{"box": b, "verb": s}`` and allows one row per part.
    ``frames``: (video, frame) pairs (a DataFrame with those columns or an iterable of pairs) to write even
    without predicted humans. It matters: a ground-truth frame absent from the prediction scores 0, and a
    ground-truth frame whose humans have no annotated parts is dropped from the score only when the
    prediction contains it. Videos of ``videos`` without rows get an empty ``{}``.

    Raises :class:`SubmissionError` listing every problem: missing columns, a human whose box differs
    between rows, non-finite boxes, too many humans in a frame (over 10) or proposals for a part (over 5),
    repeated parts in ``single`` mode.
    """
    check_mode(mode)
    builder = _TableBuilder(parts, _video_labels(videos), mode)
    builder.check_values()
    builder.add_rows()
    builder.check_limits()
    if frames is not None:
        builder.add_frames(frames)
    if builder.problems:
        raise SubmissionError(f"{len(builder.problems)} problem(s) in the prediction tables", builder.problems)
    pred_part = builder.pred_part
    for video, frames_of in pred_part.items():
        pred_part[video] = dict(sorted(frames_of.items()))
    return builder.pred_vid, pred_part


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


def _folder_bytes(path: Path, max_bytes: int) -> tuple[list, list]:
    files = [path / name for name in (PRED_VID, PRED_PART)]
    for f in files:
        if not f.is_file():
            raise SubmissionError(f"{f} is missing (expected {PRED_VID} and {PRED_PART} in {path})")
    total = sum(f.stat().st_size for f in files)
    if total > max_bytes:
        raise SubmissionError(f"{path}: the two files hold {total} bytes, more than {max_bytes} bytes "
                              "(raise max_bytes if the submission is real)")
    return [f.read_bytes() for f in files], [str(f) for f in files]


def _prediction_members(path: Path, infos: list) -> dict:
    """{file name: [(folder, member)]} of the two prediction files in the zip (other files ignored)."""
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
    return found


def _zip_members(path: Path, z: zipfile.ZipFile) -> list:
    """The two prediction files of the zip: at its root or in one folder, safe names, not encrypted."""
    found = _prediction_members(path, z.infolist())
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
    return members


def _inflate(path: Path, z: zipfile.ZipFile, members: list, max_bytes: int, max_ratio) -> list:
    """The members' bytes, inflated in chunks within the size bound and the ratio bound."""
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
        out.append(data)
    return out


def _submission_bytes(path, max_bytes: int, max_ratio) -> tuple[list, list]:
    """The two files' bytes and the names errors give them (see :func:`read_submission`)."""
    path = Path(path)
    max_bytes = int(max_bytes)
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if path.is_dir():
        return _folder_bytes(path, max_bytes)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no submission folder or zip here", str(path))
    if not zipfile.is_zipfile(path):
        raise SubmissionError(f"{path} is neither a folder nor a zip file")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise SubmissionError(f"{path}: not a readable zip file ({e})") from None
    with z:
        data = _inflate(path, z, _zip_members(path, z), max_bytes, max_ratio)
    return data, [f"{path}:{name}" for name in (PRED_VID, PRED_PART)]


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
    data, names = _submission_bytes(path, max_bytes, max_ratio)
    vid = _loads(data[0], names[0])
    return vid, _loads(data[1], names[1])


def open_submission(path, mode: str = "list", max_bytes: int = MAX_SUBMISSION_BYTES,
                    max_ratio: float | None = MAX_INFLATE_RATIO) -> tuple[dict, PartColumns]:
    """``(pred_vid, pred_part)`` like :func:`read_submission` (same checks and errors), the part file read
    straight into columns (decoded as ``mode`` writes it) for :func:`validate_submission` and the scorer."""
    data, names = _submission_bytes(path, max_bytes, max_ratio)
    vid = _loads(data[0], names[0])
    return vid, _part_columns(data[1], "pred_part_result", check_mode(mode), names[1])


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
        self.found = []  # (sort key, Problem)

    def add(self, key: tuple, file: str, where: str, message: str, severity: str = "error") -> None:
        self.found.append((key, Problem(file, where, message, severity)))

    def unknown(self, key: tuple, kind: str, name, where: str, file: str = PRED_PART) -> None:
        self.report.unknown_names[kind][name] += 1
        message = self.hints.get((kind, name))
        if message is None:
            vocabulary = {"class": self.vocab.actions, "part": self.vocab.parts, "state": self.vocab.states}[kind]
            near = vocabulary.suggest(name) if len(self.hints) < 1000 else []
            self.report.suggestions[(kind, name)] = near
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            message = self.hints[kind, name] = f"{kind} {name!r} not in the {_VOCAB_WORD[kind]} vocabulary{hint}"
        self.add(key, file, where, message, "warning")

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
            val.add((1, i), PRED_VID, str(video), f"class must be a string, got {type(label).__name__}")
        elif label not in val.known["class"]:
            val.unknown((1, i), "class", label, str(video), PRED_VID)


def _check_frames(val: _Validator, pred: PartColumns, pred_vid: Mapping) -> None:
    """Videos (a class, an object of frames) and frames (the key, ``{'humans': [...]}``, the limit)."""
    for v in np.nonzero(~np.fromiter(map(pred_vid.__contains__, pred.videos), bool, len(pred.videos)))[0].tolist():
        val.add((2, v, _AT_VIDEO, 0), PRED_PART, str(pred.videos[v]), "video has parts but no class in pred_vid_result",
                "warning")
    for v in np.nonzero(pred.video_frames < 0)[0].tolist():
        val.add((2, v, _AT_VIDEO, 1), PRED_PART, str(pred.videos[v]), "expected an object of frames")
    video = pred.frame_video
    number = np.fromiter(map(_frame_number_or_0, pred.frame_key), np.int64, len(pred.frame_key))
    for f in np.nonzero(number == 0)[0].tolist():
        val.add((2, video[f], _AT_FRAME, f, 0), PRED_PART, pred.where_frame(f),
                "frame key is not of the form img_00001.json (never scored)", "warning")
    for f in np.nonzero((number > 0) & ~is_scored(number))[0].tolist():
        val.add((2, video[f], _AT_FRAME, f, 0), PRED_PART, pred.where_frame(f),
                "frame is not a scored frame (1, 6, 11, ...): ignored by the scorer", "warning")
    for f in np.nonzero(pred.frame_humans < 0)[0].tolist():
        val.add((2, video[f], _AT_FRAME, f, 1), PRED_PART, pred.where_frame(f), "expected {'humans': [...]}")
    for f in np.nonzero(pred.frame_humans > MAX_HUMANS)[0].tolist():
        val.add((2, video[f], _AT_FRAME, f, 2), PRED_PART, pred.where_frame(f), f"more than {MAX_HUMANS} humans")


def _frame_number_or_0(key) -> int:
    try:
        return frame_number(key)
    except ValueError:
        return 0  # frame numbers start at 1


def _human_key(pred: PartColumns, h: int, step: int) -> tuple:
    f = int(pred.human_frame[h])
    return 2, int(pred.frame_video[f]), _AT_FRAME, f, 3, h, step


def _check_humans(val: _Validator, pred: PartColumns) -> None:
    """Humans: objects with ``parts`` that can be read, and boxes of 4 finite numbers."""
    for h in np.nonzero(~pred.human_is_object)[0].tolist():
        val.add(_human_key(pred, h, 0), PRED_PART, pred.where_human(h), "expected an object with 'box' and 'parts'")
    for h in np.nonzero(pred.human_is_object & (pred.human_parts == NO_PARTS))[0].tolist():
        val.add(_human_key(pred, h, 1), PRED_PART, pred.where_human(h) + ".parts",
                "missing 'parts' (use {} for a human without parts)")
    for h in np.nonzero(pred.human_parts == BAD_PARTS)[0].tolist():
        suffix, message = pred.parts_problems[h]
        val.add(_human_key(pred, h, 2), PRED_PART, pred.where_human(h) + suffix, message)
    if pred.human_box_array is not None:
        return  # decoded in the strict form: every box is 4 finite numbers
    humans = np.nonzero(pred.human_is_object)[0]
    boxes = [None if b is MISSING else b for b in pred.human_box_values(humans)]
    for i, _ in box_problems(boxes):
        h = int(humans[i])
        val.add((3, h), PRED_PART, pred.where_human(h) + ".box", "box is not 4 finite numbers")


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
            val.add(_part_key(pred, p, 5) + (int(rank[i]),), PRED_PART, where,
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
        self.val.add(_part_key(self.pred, p, step), PRED_PART, self.pred.where_part(p) + suffix, message)

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
            self.val.add((4, p), PRED_PART, self.pred.where_part(p) + ".box", "a box is not 4 finite numbers")


def _check_parts(val: _Validator, pred: PartColumns, mode: str) -> tuple[Counter, int]:
    """Parts: names, shapes, limits, verbs and boxes. Returns how many parts hold lists or single values,
    and the number of proposals."""
    _check_part_names(val, pred)
    if pred.form == mode == "list":  # decoded in the strict form: only lengths and limits to check
        n = len(pred.part_name)
        for p in np.nonzero(pred.part_nbox != pred.part_nverb)[0].tolist():
            val.add(_part_key(pred, p, 3), PRED_PART, pred.where_part(p), "box and verb lists differ in length")
        for p in np.nonzero(pred.part_nverb > MAX_PROPOSALS)[0].tolist():
            val.add(_part_key(pred, p, 4), PRED_PART, pred.where_part(p), f"more than {MAX_PROPOSALS} proposals")
        _check_verbs(val, pred, np.arange(n), pred.part_nverb, pred.proposal_verb)
        return Counter(list=n), len(pred.proposal_verb)
    checks = _PartChecks(val, pred)
    parts, nverb, verbs, boxes = checks.run(mode)
    _check_verbs(val, pred, parts, nverb, verbs)
    if pred.form is None:
        checks.check_boxes(parts, boxes)
    return checks.shapes, len(verbs)


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
                val.add((5, 0, i), PRED_VID, str(video), "ground-truth video missing")
        for i, video in enumerate(pred_vid):
            if video not in gt_vid:
                val.add((5, 1, i), PRED_VID, str(video), "video not in the ground truth (ignored)", "warning")
    for v, video in enumerate(gt.videos if gt is not None else ()):
        if (gt_vid is None or video in gt_vid) and gt.video_frames[v] >= 0:
            _check_video_coverage(val, pred, gt, v, video)


def _check_video_coverage(val: _Validator, pred: PartColumns, gt: PartColumns, v: int, video) -> None:
    """A GT video with annotated humans: in the prediction, with every such frame (else it counts 0)."""
    frames = np.arange(gt.frame_start[v], gt.frame_start[v] + gt.video_frames[v])
    scored = frames[gt.frame_humans[frames] > 0]
    if not len(scored):
        return
    pv = pred.video_index.get(video)
    if pv is None or pred.video_frames[pv] < 0:
        val.add((6, v), PRED_PART, str(video), "ground-truth video with annotated humans missing")
        return
    have = set(pred.frame_key[pred.frame_start[pv]:pred.frame_start[pv] + pred.video_frames[pv]])
    for f in scored.tolist():
        if gt.frame_key[f] not in have:
            val.add((6, v, f), PRED_PART, f"{video}/{gt.frame_key[f]}",
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
    report.problems = val.problems()
    if report.looks_like not in (None, mode):
        held = "lists of boxes and verbs" if report.looks_like == "list" else "one box and one verb"
        report.problems.insert(0, Problem(PRED_PART, "", f"every part holds {held}: this looks like a mode "
                                          f"'{report.looks_like}' submission, not mode '{mode}'"))
    report.stats = {"videos": len(pred_vid), "frames": len(pred.frame_key), "humans": len(pred.human_parts),
                    "parts": len(pred.part_name), "proposals": proposals}
    return report


__all__ = ["GT_PART", "GT_VID", "MAX_SUBMISSION_BYTES", "PRED_PART", "PRED_VID", "SubmissionError", "SubmissionReport",
           "build_predictions", "export_ground_truth", "frame_key", "frame_number", "is_scored", "open_ground_truth",
           "open_submission", "read_ground_truth", "read_submission", "validate_submission", "write_json_pair",
           "write_prediction_files", "write_submission_zip"]
