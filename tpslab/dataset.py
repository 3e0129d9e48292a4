"""The Kinetics-TPS release as tidy pandas tables.

``load_dataset(root)`` returns a :class:`TPSDataset` with four tables whose names and columns are a
contract the rest of tpslab relies on:

- ``videos``: ``video, label, split, path, num_frames, num_annotated_frames``
- ``frames``: ``video, frame, num_humans`` (one row per annotation file; ``frame`` is 1-based)
- ``humans``: ``video, frame, human, x1, y1, x2, y2, num_parts``
- ``parts``: ``video, frame, human, human_x1..human_y2, part, part_x1..part_y2, state, object,
  object_x1..object_y2`` (``object`` is NA when the part touches no object)
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from tpslab.annotations import frame_key
from tpslab.errors import AnnotationError, Problem
from tpslab.home import resolve_root
from tpslab.index import AnnotationDir, Index, load_index
from tpslab.layout import ANNOTATION_TOP, FLIST_FILES, VIDEO_TOPS, check_release_root, scan
from tpslab.vocab import Vocab

SPLITS = tuple(VIDEO_TOPS)
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")

_VIDEO_HEADERS = {"video", "video_id", "videoid", "vid", "name", "video_name", "youtube_id", "path", "filename"}
_FRAMES_HEADERS = {"frames", "num_frames", "n_frames", "nframes", "frame", "total_frames", "length", "frame_num"}
_CLASS_HEADERS = {"class", "label", "action", "category", "class_name", "classname"}


def _video_name(cell: str) -> tuple[str, str | None]:
    """``belly_dancing/abc.mp4`` -> (``abc``, ``belly_dancing``); a bare name has no class."""
    cell = cell.strip().replace("\\", "/").rstrip("/")
    parent, _, base = cell.rpartition("/")
    stem, ext = os.path.splitext(base)
    name = stem if ext.lower() in VIDEO_EXTENSIONS else base
    return name, (parent.rpartition("/")[2] or None) if parent else None


def _is_int(cell: str) -> bool:
    return cell.lstrip("-").isdigit()


def _decode_lines(path: Path, fail) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank lines of a file; a line that is not UTF-8 goes to ``fail``."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = []
    for lineno, raw in enumerate(data.splitlines(), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            fail(lineno, f"bytes that are not UTF-8 ({raw[max(0, e.start - 10):e.end + 10]!r})")
            continue
        if text.strip():
            lines.append((lineno, text))
    return lines


def _columns(path: Path, rows: list[list[str]]) -> tuple[int, int, int | None, int, int]:
    """(video, frames, class) column positions of an flist's rows, the row width and the first body row."""
    known = _VIDEO_HEADERS | _FRAMES_HEADERS | _CLASS_HEADERS
    first_is_header = any(c.lower() in known for c in rows[0]) or (
        not _is_int(rows[0][-1]) and len(rows) > 1 and _is_int(rows[1][-1]))
    if first_is_header:
        names = [h.lower() for h in rows[0]]

        def find(options):
            return next((i for i, n in enumerate(names) if n in options), None)

        iv, ifr, ic = find(_VIDEO_HEADERS), find(_FRAMES_HEADERS), find(_CLASS_HEADERS)
        if iv is None or ifr is None:
            if len(names) not in (2, 3):
                raise AnnotationError(path, "line 1", f"header {rows[0]} names no video and frames columns")
            iv, ifr, ic = (0, 1, None) if len(names) == 2 else (1, 2, 0)  # fall back to the column shape
        return iv, ifr, ic, len(names), 1
    width = len(rows[0])
    if width not in (2, 3):
        raise AnnotationError(path, "line 1", f"expected rows 'video,frames' or 'class,video,frames', "
                                              f"got {width} columns")
    return (0, 1, None, 2, 0) if width == 2 else (1, 2, 0, 3, 0)


def read_flist(path, problems: list | None = None) -> pd.DataFrame:
    """Read a ``video_*_flist.csv``: columns ``video, label, frames`` (label NA when not given).

    The delimiter and header are sniffed; rows are ``video,frames`` or ``class,video,frames``. With a
    header, columns are found by name (``video``/``name``..., ``frames``/``num_frames``..., ``class``/``label``...).

    A bad row (another number of columns, a count that is not a non-negative integer, bytes that are
    not UTF-8) raises :class:`tpslab.AnnotationError` naming the file and line; with a ``problems`` list
    it is appended there and the row skipped. A video listed twice keeps its count when the rows agree
    (a warning) and gets no count (NA) when they differ (an error): which one is right cannot be known.
    """
    path = Path(path)

    def fail(lineno, message, severity="error"):
        if problems is None and severity == "error":
            raise AnnotationError(path, f"line {lineno}", message)
        if problems is not None:
            problems.append(Problem(str(path), f"line {lineno}", message, severity))

    lines = _decode_lines(path, lambda n, m: fail(n, m + "; row skipped"))
    if not lines:
        return pd.DataFrame({"video": pd.Series(dtype=str), "label": pd.Series(dtype=object),
                             "frames": pd.Series(dtype="Int64")})
    # The delimiter is the first of , TAB ; found in the first line, else runs of spaces.
    delimiter = next((d for d in (",", "\t", ";") if d in lines[0][1]), None)
    if delimiter is None:
        rows = [text.split() for _, text in lines]
    else:
        rows = [[c.strip() for c in next(csv.reader([text], delimiter=delimiter))] for _, text in lines]
    iv, ifr, ic, width, body = _columns(path, rows)
    videos, labels, frames, where = [], [], [], []
    for (lineno, _), r in zip(lines[body:], rows[body:]):
        if len(r) != width:
            fail(lineno, f"expected {width} columns, got {len(r)}: {r}; row skipped")
            continue
        if not _is_int(r[ifr]):
            fail(lineno, f"frame count {r[ifr]!r} is not an integer; row skipped")
            continue
        n = int(r[ifr])
        if n < 0:
            fail(lineno, f"negative frame count {n}; row skipped")
            continue
        name, folder = _video_name(r[iv])
        videos.append(name)
        labels.append(r[ic] if ic is not None else folder)
        frames.append(n)
        where.append(lineno)
    table = pd.DataFrame({"video": pd.Series(videos, dtype=str), "label": pd.Series(labels, dtype=object),
                          "frames": pd.array(frames, dtype="Int64"), "line": where})
    for video, rows_of in table[table["video"].duplicated(keep=False)].groupby("video", sort=False):
        lines_of = ", ".join(map(str, rows_of["line"]))
        if rows_of["frames"].nunique() == 1 and rows_of["label"].astype(str).nunique() == 1:
            fail(rows_of["line"].iloc[1], f"video {video} is listed {len(rows_of)} times (lines {lines_of}); "
                                          "the rows agree", "warning")
        else:
            fail(rows_of["line"].iloc[1], f"video {video} is listed {len(rows_of)} times (lines {lines_of}) "
                                          "with different rows; its frame count is unknown")
            table.loc[table["video"] == video, "frames"] = pd.NA
    return table.drop_duplicates("video").drop(columns="line").reset_index(drop=True)


def find_video_files(root, problems: list | None = None) -> list[tuple[str, str, str, str]]:
    """``(split, label, video, path)`` for every video file under ``train_videos/`` and ``test_videos/``.

    Hidden and system entries are not classes or videos (see :mod:`tpslab.layout`). A video name with
    two files (under two classes, or as .mp4 and .mkv) is not used at all: which one is right cannot be
    known. What is left out goes to ``problems`` when given.
    """
    by_name: dict[str, list[tuple[str, str, str, str]]] = {}
    for split, top_name in VIDEO_TOPS.items():
        top = Path(root) / top_name
        if not top.is_dir():
            continue
        for cls in scan(top, "dir", problems, "class folder"):
            for f in scan(cls.path, "file", problems, "video"):
                stem, ext = os.path.splitext(f.name)
                if ext.lower() in VIDEO_EXTENSIONS:
                    by_name.setdefault(stem, []).append((split, cls.name, stem, os.path.abspath(f.path)))
    found = []
    for stem, files in by_name.items():
        if len(files) == 1:
            found.append(files[0])
        elif problems is not None:
            problems.extend(Problem(f[3], "", f"video {stem} has {len(files)} files "
                                    f"({', '.join(x[3] for x in files)}); none is used") for f in files)
    return found


def build_videos_table(root, dirs: list[AnnotationDir], frames: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """One row per video known from video files, flist files or annotation folders."""
    root = Path(root)
    rec: dict[str, dict] = {}
    problems: list[Problem] = []

    def add(video, label, split, where, **values):
        r = rec.setdefault(video, {"video": video, "label": label, "split": split, "path": None,
                                   "num_frames": pd.NA})
        if label and r["label"] and label != r["label"]:
            problems.append(Problem(where, "class", f"video {video} is filed under {label!r} here "
                                                    f"but under {r['label']!r} elsewhere"))
        if split != r["split"]:
            problems.append(Problem(where, "split", f"video {video} appears in both the train and test split"))
        r["label"] = r["label"] or label
        r.update(values)

    for split, label, video, path in find_video_files(root, problems):
        add(video, label, split, path, path=path)
    for split, rel in FLIST_FILES.items():
        f = root / rel
        if f.is_file():
            fl = read_flist(f, problems)
            for video, label, n in zip(fl["video"], fl["label"], fl["frames"]):
                add(video, label if isinstance(label, str) else None, split, str(f), num_frames=n)
    for d in dirs:
        if d.video not in rec and not d.frames:  # listed nowhere else and holds no frame: not a video
            problems.append(Problem(d.path, "", "an empty folder, and no video of that name in the flist or the "
                                                "video folders: not a video (move it away)"))
            continue
        add(d.video, d.label, "train", d.path)
    counts = frames.groupby("video", observed=True).size() if len(frames) else pd.Series(dtype=int)
    table = pd.DataFrame(list(rec.values()), columns=["video", "label", "split", "path", "num_frames"])
    table["num_frames"] = table["num_frames"].astype("Int64")
    table["num_annotated_frames"] = table["video"].map(counts).fillna(0).astype(np.int64)
    table["split"] = pd.Categorical(table["split"], categories=list(SPLITS))
    table = table.sort_values(["split", "label", "video"], kind="stable", ignore_index=True)
    table["label"] = table["label"].astype("category")
    return table, problems


class TPSDataset:
    """A loaded Kinetics-TPS release (or the mini dataset): tables, vocabularies and helpers."""

    def __init__(self, root: Path, vocab: Vocab, videos: pd.DataFrame, frames: pd.DataFrame,
                 humans: pd.DataFrame, parts: pd.DataFrame, problems: list[Problem] | None = None,
                 index: Index | None = None):
        self.root = Path(root)
        self.vocab = vocab
        self.videos = videos
        self.frames = frames
        self.humans = humans
        self.parts = parts
        self.problems = list(problems or [])
        self.index = index
        self._rows: dict = {}  # lazily built lookups: row positions per video, the video names

    def __repr__(self) -> str:
        split_counts = self.videos["split"].value_counts().to_dict()
        return (f"TPSDataset(root={str(self.root)!r}, videos={len(self.videos)} "
                f"(train {split_counts.get('train', 0)}, test {split_counts.get('test', 0)}), "
                f"classes={self.videos['label'].nunique()}, frames={len(self.frames)}, "
                f"humans={len(self.humans)}, parts={len(self.parts)})")

    # ------------------------------------------------------------- selections
    def _video_rows(self, table: str) -> dict:
        if table not in self._rows:
            df = getattr(self, table)
            self._rows[table] = df.groupby("video", observed=True, sort=False).indices if len(df) else {}
        return self._rows[table]

    def _select(self, table: str, video: str, frame: int | None) -> pd.DataFrame:
        if "names" not in self._rows:  # built once: the explorer selects on every frame change
            self._rows["names"] = frozenset(self.videos["video"])
        if video not in self._rows["names"]:
            raise KeyError(f"unknown video {video!r}")
        rows = self._video_rows(table).get(video, np.zeros(0, np.int64))
        df = getattr(self, table).iloc[rows]
        return df if frame is None else df[df["frame"].to_numpy() == frame]

    def frames_of(self, video: str) -> pd.DataFrame:
        """The annotated frames of one video."""
        return self._select("frames", video, None)

    def humans_of(self, video: str, frame: int | None = None) -> pd.DataFrame:
        """The humans of one video, or of one of its frames."""
        return self._select("humans", video, frame)

    def parts_of(self, video: str, frame: int | None = None) -> pd.DataFrame:
        """The annotated parts of one video, or of one of its frames."""
        return self._select("parts", video, frame)

    def video_info(self, video: str) -> dict:
        """The ``videos`` row of one video as a dict."""
        row = self.videos[self.videos["video"] == video]
        if row.empty:
            raise KeyError(f"unknown video {video!r}")
        return row.iloc[0].to_dict()

    def annotation_path(self, video: str, frame: int) -> Path:
        """The JSON file of one annotated frame (``frame`` is 1-based, as in ``img_00001.json``)."""
        label = self.video_info(video)["label"]
        d = self.root / ANNOTATION_TOP / label / video / video
        if not d.is_dir():
            d = d.parent
        return d / frame_key(frame)

    # ------------------------------------------------------------- subsets
    def skipped_note(self) -> str | None:
        """One line saying how many annotation problems were skipped while loading (None: none were)."""
        errors = sum(p.severity == "error" for p in self.problems)
        if not errors:
            return None
        return f"{errors} annotation problems were skipped; run `tpslab validate {self.root}` to list them"

    def subset(self, videos: Iterable[str]) -> "TPSDataset":
        """A dataset restricted to ``videos`` (tables keep their column types and categories)."""
        keep = set(videos)
        unknown = keep - set(self.videos["video"])
        if unknown:
            raise KeyError(f"unknown videos: {sorted(unknown)[:5]}{' ...' if len(unknown) > 5 else ''}")

        def sel(df):
            return df[df["video"].isin(keep)].reset_index(drop=True)

        return TPSDataset(self.root, self.vocab, sel(self.videos), sel(self.frames), sel(self.humans),
                          sel(self.parts), self.problems, self.index)

    def split_train_val(self, val_fraction: float = 0.25, seed: int = 0) -> tuple[list[str], list[str]]:
        """A seeded split of the *train* videos into train and validation, stratified by class.

        The test videos' part annotations (boxes and part states) were never released (their actions
        are known only from their class folders), so results are reported on held-out train videos.
        Every class with at least two videos keeps at least one video on each side.
        """
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        rng = np.random.default_rng(seed)
        train_rows = self.videos[self.videos["split"] == "train"]
        train, val = [], []
        for label in sorted(train_rows["label"].dropna().unique()):
            names = sorted(train_rows.loc[train_rows["label"] == label, "video"])
            order = rng.permutation(len(names))
            n_val = int(round(len(names) * val_fraction))
            if len(names) >= 2:
                n_val = min(max(n_val, 1), len(names) - 1)
            val += [names[i] for i in order[:n_val]]
            train += [names[i] for i in order[n_val:]]
        return sorted(train), sorted(val)


class VideoList(list):
    """Video names read from a list file (:func:`read_video_list`); ``file`` is its path, for messages."""

    def __init__(self, names, file: str):
        super().__init__(names)
        self.file = file


def read_video_list(path) -> VideoList:
    """Video names from a text file: one per line, blank lines and ``#`` comments ignored, duplicates
    dropped; ``ValueError`` (naming the file) when it cannot be read, is not UTF-8 or lists nothing."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: lists saved by Notepad start with a BOM
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start})") from e
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from e
    names = [line.split("#", 1)[0].strip() for line in lines]
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        raise ValueError(f"{path}: lists no videos")
    return VideoList(names, str(path))


def check_video_names(ds: "TPSDataset", names) -> None:
    """A ValueError when some of ``names`` are not videos of ``ds``, naming the list file they were read
    from (a :class:`VideoList`)."""
    unknown = sorted(set(map(str, names)) - set(ds.videos["video"].astype(str)))
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ValueError(f"{getattr(names, 'file', 'videos')}: {len(unknown)} name(s) are not videos of {ds.root}: "
                         f"{', '.join(unknown[:5])}{more}")


def load_dataset(root=None, *, strict: bool = True, workers: int | None = None, progress: bool = True,
                 rebuild: bool = False, cache: bool = True) -> TPSDataset:
    """Load a Kinetics-TPS release into a :class:`TPSDataset`.

    ``root``: the release folder; default ``$TPSLAB_DATA``, else the embedded mini dataset (generated
    once into the cache folder). The annotation index is read from its parquet cache when current,
    otherwise parsed with ``workers`` processes (default: all cores) and cached.

    With ``strict=True`` the first annotation problem raises :class:`tpslab.AnnotationError`; with
    ``strict=False`` broken records are skipped and every problem is listed in ``.problems``.
    """
    root = check_release_root(resolve_root(root, progress=progress))
    list_problems: list[Problem] | None = None if strict else []
    vocab = Vocab.from_root(root, list_problems)
    index = load_index(root, vocab, workers=workers, progress=progress, rebuild=rebuild, cache=cache)
    if strict:
        _raise_first_error(index.problems)
    videos, video_problems = build_videos_table(root, index.dirs, index.tables["frames"])
    if strict:
        _raise_first_error(video_problems)
    return TPSDataset(root, vocab, videos, index.tables["frames"], index.tables["humans"],
                      index.tables["parts"], (list_problems or []) + index.problems + video_problems, index)


def _raise_first_error(problems: list[Problem]) -> None:
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        first = errors[0]
        more = f" ({len(errors)} problems in all; load with strict=False or run `tpslab validate`)" \
            if len(errors) > 1 else ""
        raise AnnotationError(first.path, first.field, first.message + more)
