"""The annotation index: every frame file of a release parsed into frames/humans/parts tables.

Files are parsed in worker processes, each returning columnar numpy batches (see
:class:`tpslab.annotations.ColumnSink`). The tables are cached as zstd-compressed parquet in
``ROOT/.tpslab/`` (or in the cache folder when the data folder is read-only), written to a temporary
folder and renamed into place. The cache is keyed by a fingerprint of the list files and the
annotation folders (and, for trees of up to 1000 videos, every file's size and mtime; see
:func:`fingerprint`), so it is rebuilt when annotations change; a cache that fails any check
(manifest, sizes, row counts, parquet page checksums) is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tpslab.annotations import FRAME_FILE, ColumnSink, parse_frame_bytes
from tpslab.errors import Problem
from tpslab.fileio import atomic_folder
from tpslab.home import cache_home
from tpslab.layout import ANNOTATION_TOP, CACHE_DIR, LIST_DIR, check_release_root, scan
from tpslab.memory import gc_paused, owner_gone, owner_tag, worker_map
from tpslab.vocab import LIST_FILES, Vocab

INDEX_VERSION = 4
MAX_FRAME_NUMBER = np.iinfo(np.int32).max  # the frames table stores frame numbers as int32
# Below this many files the index is parsed in-process: starting workers would cost more than it saves.
PARALLEL_MIN_FILES = 4000
BATCH_FILES = 2000


# Up to this many annotation folders the fingerprint stats every file, so an in-place edit is
# noticed; above it (the full release has 3809), it stats each folder only, which stays well
# under a second: a folder's ctime changes whenever a file in it is added, removed or replaced.
STAT_FILES_UP_TO_FOLDERS = 1000


@dataclass
class AnnotationDir:
    """One video's annotation folder. Its listing is read, and ``frames``/``names``/``stray`` parsed
    from it, on first use: a cache hit of a large tree needs only the folder's own stat."""

    label: str
    video: str
    path: str
    stat: tuple  # (inode, mtime_ns, ctime_ns) of the folder

    @property
    def listing(self) -> list[str]:
        """The folder's file names, read once."""
        if not hasattr(self, "_listing"):
            self._listing = os.listdir(self.path)
        return self._listing

    def _parse(self) -> None:
        by_frame: dict[int, list[str]] = {}
        problems = []
        for name in sorted(self.listing):
            m = FRAME_FILE.match(name)
            if m is None:
                problems.append(Problem(os.path.join(self.path, name), "",
                                        "not an annotation file (img_NNNNN.json); ignored", "warning"))
            elif int(m.group(1)) > MAX_FRAME_NUMBER:
                problems.append(Problem(os.path.join(self.path, name), "", f"frame number {int(m.group(1))} "
                                        f"is beyond what the tables hold ({MAX_FRAME_NUMBER}); file skipped"))
            else:
                by_frame.setdefault(int(m.group(1)), []).append(name)
        for frame, names in by_frame.items():
            if len(names) > 1:  # img_1.json beside img_00001.json: which one is right cannot be known
                problems.append(Problem(self.path, "", f"{' and '.join(names)} are both frame {frame}; "
                                        "neither is read"))
        self._frames = sorted(f for f, names in by_frame.items() if len(names) == 1)
        self._names = [by_frame[f][0] for f in self._frames]
        self._problems = problems

    @property
    def frames(self) -> list[int]:
        """Frame numbers of the annotation files, ascending."""
        if not hasattr(self, "_frames"):
            self._parse()
        return self._frames

    @property
    def names(self) -> list[str]:
        """Annotation file names, in frame order."""
        if not hasattr(self, "_names"):
            self._parse()
        return self._names

    @property
    def problems(self) -> list[Problem]:
        """What is wrong with the folder's listing: stray files (warnings), two files for one frame and
        frame numbers too large for the tables (errors; those files are not read)."""
        if not hasattr(self, "_problems"):
            self._parse()
        return self._problems


def _scan_dir(label: str, video: str, path: str) -> AnnotationDir:
    st = os.stat(path)
    return AnnotationDir(label, video, path, (st.st_ino, st.st_mtime_ns, st.st_ctime_ns))


def find_annotation_dirs(root, problems: list | None = None) -> list[AnnotationDir]:
    """Every ``train_annotations/<class>/<video>/<video>/`` folder (a single nesting is accepted too).

    Hidden and system folders are not classes or videos (see :mod:`tpslab.layout`). A video folder found
    under two classes is not read at all (which class is right cannot be known). What is left out is
    appended to ``problems`` when given.
    """
    problems = problems if problems is not None else []
    top = Path(root) / ANNOTATION_TOP
    if not top.is_dir():
        return []
    by_video: dict[str, list[AnnotationDir]] = {}
    for cls in scan(top, "dir", problems, "class folder"):
        for vid in scan(cls.path, "dir", problems, "video folder"):
            inner = os.path.join(vid.path, vid.name)
            path = inner if os.path.isdir(inner) else vid.path
            try:
                by_video.setdefault(vid.name, []).append(_scan_dir(cls.name, vid.name, path))
            except OSError as err:
                problems.append(Problem(path, "", f"cannot read the folder ({err.strerror or err}); ignored"))
    found = []
    for video, dirs in by_video.items():
        if len(dirs) > 1:
            problems.extend(Problem(d.path, "", f"video {video} has annotation folders under "
                                    f"{len(dirs)} classes ({', '.join(x.label for x in dirs)}); none is read")
                            for d in dirs)
        else:
            found.append(dirs[0])
    return sorted(found, key=lambda d: (d.label, d.video))


def _list_files_digest(root) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for fname in LIST_FILES.values():
        f = Path(root) / LIST_DIR / fname
        h.update(f.read_bytes() if f.is_file() else b"<absent>")
    return h.digest()


def fingerprint(root, dirs: list[AnnotationDir], stat_files: bool | None = None) -> str:
    """A digest of the list files and of every annotation folder (path, inode, mtime, ctime).

    With ``stat_files`` (default: up to ``STAT_FILES_UP_TO_FOLDERS`` folders) each file's name, size
    and mtime go in too, so a file rewritten in place is noticed; without it, adding, removing,
    renaming or replacing files is noticed (archive tools and most editors replace), an in-place
    rewrite is not: run ``tpslab index --rebuild`` after one.
    """
    if stat_files is None:
        stat_files = len(dirs) <= STAT_FILES_UP_TO_FOLDERS
    h = hashlib.blake2b(digest_size=20)
    h.update(f"v{INDEX_VERSION};{stat_files};".encode())
    h.update(_list_files_digest(root))
    root = str(root)
    for d in dirs:  # paths relative to the root: renaming the root folder keeps the cache
        h.update(f"{d.label}/{d.video}:{d.path[len(root):]}:{d.stat}:".encode())
        if stat_files:
            for name in sorted(d.listing):
                try:
                    st = os.stat(os.path.join(d.path, name))
                    h.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
                except OSError:  # a broken link: reported when the file is parsed
                    h.update(f"{name}:unreadable;".encode())
    return h.hexdigest()


def _parse_batch(task) -> dict:
    """Worker: parse the files of a few videos into columnar arrays (always lenient; problems returned)."""
    vocab, items = task
    sink = ColumnSink(vocab)
    for video_index, path, frames, names in items:
        for frame, name in zip(frames, names):
            fpath = os.path.join(path, name)
            try:
                with open(fpath, "rb") as f:
                    raw = f.read()
            except OSError as e:
                sink.problems.append(Problem(fpath, "", f"cannot read the file: {e.strerror or e}"))
                continue
            parse_frame_bytes(raw, fpath, sink, video_index=video_index, frame=frame, strict=False)
    out = sink.arrays()
    out["problems"] = sink.problems
    return out


def _batches(dirs: list[AnnotationDir]):
    batch, size = [], 0
    for i, d in enumerate(dirs):
        batch.append((i, d.path, d.frames, d.names))
        size += len(d.names)
        if size >= BATCH_FILES:
            yield batch, size
            batch, size = [], 0
    if batch:
        yield batch, size


def _remap(codes: np.ndarray, batch_names: list[str], categories: list[str]) -> np.ndarray:
    """Map a batch's local name codes onto the global category order (-1 stays -1)."""
    lookup = {n: i for i, n in enumerate(categories)}
    table = np.array([lookup[n] for n in batch_names] + [-1], dtype=np.int32)
    return table[codes]  # code -1 picks the trailing -1


def _assemble(dirs: list[AnnotationDir], batches: list[dict], vocab: Vocab) -> dict[str, pd.DataFrame]:
    """Concatenate worker batches into the frames/humans/parts tables with shared categories
    (parts in the stored form, see :func:`expand_parts`)."""
    frame_off = human_off = 0
    for b in batches:  # make row pointers global
        b["human_frame"] = b["human_frame"] + frame_off
        b["part_human"] = b["part_human"] + human_off
        frame_off += len(b["frame_video"])
        human_off += len(b["human_frame"])

    def cat(key):
        return np.concatenate([b[key] for b in batches]) if batches else np.zeros(0)

    def categories(key, known):
        extra = sorted({n for b in batches for n in b[key][len(known):]})
        return list(known) + extra

    cats = {
        "part": categories("part_names", vocab.parts.names),
        "state": categories("state_names", vocab.states.names),
        "object": categories("object_names", vocab.objects.names),
    }

    def names(code_key, names_key, kind):
        codes = np.concatenate([_remap(b[code_key], b[names_key], cats[kind]) for b in batches]) \
            if batches else np.zeros(0, np.int32)
        return pd.Categorical.from_codes(codes, categories=cats[kind])

    videos = pd.Categorical.from_codes(cat("frame_video").astype(np.int32), categories=[d.video for d in dirs])
    frame_no = cat("frame_number").astype(np.int32)
    frames = pd.DataFrame({"video": videos, "frame": frame_no,
                           "num_humans": cat("frame_humans").astype(np.int16)})
    hf = cat("human_frame").astype(np.int64)
    hbox = np.concatenate([b["human_box"] for b in batches]) if batches else np.zeros((0, 4))
    humans = pd.DataFrame({
        "video": videos.take(hf) if len(hf) else videos[:0], "frame": frame_no[hf],
        "human": cat("human_index").astype(np.int16),
        "x1": hbox[:, 0], "y1": hbox[:, 1], "x2": hbox[:, 2], "y2": hbox[:, 3],
        "num_parts": cat("human_parts").astype(np.int16),
    })
    ph = cat("part_human").astype(np.int64)
    pbox = np.concatenate([b["part_box"] for b in batches]) if batches else np.zeros((0, 4))
    obox = np.concatenate([b["object_box"] for b in batches]) if batches else np.zeros((0, 4))
    own = pd.DataFrame({
        "part": names("part_name", "part_names", "part"),
        "part_x1": pbox[:, 0], "part_y1": pbox[:, 1], "part_x2": pbox[:, 2], "part_y2": pbox[:, 3],
        "state": names("part_state", "state_names", "state"),
        "object": names("part_object", "object_names", "object"),
        "object_x1": obox[:, 0], "object_y1": obox[:, 1], "object_x2": obox[:, 2], "object_y2": obox[:, 3],
    })
    # expand_parts relies on parts being stored human after human, num_parts rows each.
    assert np.array_equal(ph, np.repeat(np.arange(len(hf)), humans["num_parts"].to_numpy()))
    return {"frames": frames, "humans": humans, "parts": own}


# The parts table repeats its human's keys and box on every row. The cache stores only the parts' own
# columns, human after human, and :func:`expand_parts` repeats each human's values ``num_parts`` times
# on load: a smaller file and a faster reload than decoding the repeated columns.
_FROM_HUMANS = {"video": "video", "frame": "frame", "human": "human",
                "human_x1": "x1", "human_y1": "y1", "human_x2": "x2", "human_y2": "y2"}


def _repeat_humans(humans: pd.DataFrame) -> dict:
    """The humans' columns that the parts table repeats, each value ``num_parts`` times."""
    counts = humans["num_parts"].to_numpy()
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    # The human row of every part, by a cumulative sum: np.repeat with per-row counts is several
    # times slower on millions of rows, and this index serves all seven columns.
    rows = np.cumsum(np.bincount(ends[:-1], minlength=total)[:total]) if total else np.zeros(0, np.int64)
    cols = {}
    for name, src in _FROM_HUMANS.items():
        column = humans[src]
        if isinstance(column.dtype, pd.CategoricalDtype):
            cols[name] = pd.Categorical.from_codes(column.cat.codes.to_numpy()[rows], dtype=column.dtype)
        else:
            cols[name] = column.to_numpy()[rows]
    return cols


def _join_parts(repeated: dict, stored: pd.DataFrame) -> pd.DataFrame:
    if len(repeated["video"]) != len(stored):
        raise ValueError(f"humans announce {len(repeated['video'])} parts, the parts table has {len(stored)}")
    return pd.DataFrame({**repeated, **{c: stored[c] for c in stored.columns}}, copy=False)


def expand_parts(humans: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """The contract's parts table from its stored form (the parts' own columns, in human order)."""
    return _join_parts(_repeat_humans(humans), stored)


def build_tables(dirs: list[AnnotationDir], vocab: Vocab, *, workers: int | None = None,
                 progress: bool = True) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Parse every annotation file of ``dirs``; returns the tables (parts in the stored form, see
    :func:`expand_parts`) and the problems found.

    Batches are parsed in ``workers`` processes (default: one per core) that die with this one, when
    there are at least :data:`PARALLEL_MIN_FILES` files; if the pool breaks, the rest is parsed in this
    process (with a warning).
    """
    total = sum(len(d.names) for d in dirs)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    batches = list(_batches(dirs))
    results = worker_map(_parse_batch, [(vocab, batch) for batch, _ in batches],
                         workers if total >= PARALLEL_MIN_FILES else 1, sizes=[size for _, size in batches],
                         desc="indexing annotations", unit="file", progress=progress, leave=False,
                         serial_fallback=True)
    problems = [p for r in results for p in r.pop("problems")]
    for d in dirs:
        problems.extend(d.problems)
    return _assemble(dirs, results, vocab), problems


# ---------------------------------------------------------------- cache

def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
        probe.close()
        return True
    except OSError:
        return False


def cache_dir_for(root) -> Path:
    """``ROOT/.tpslab`` when writable, else a folder in the cache home named after the root's path."""
    root = Path(root).resolve()
    beside = root / CACHE_DIR
    if _writable_dir(beside):
        return beside
    key = hashlib.blake2b(str(root).encode(), digest_size=8).hexdigest()
    return cache_home() / "indexes" / f"{root.name}-{key}"


TMP_PREFIX = ".tmp-index-"  # + owner_tag() + "-" + random: the folder a build writes before renaming it


def _remove_stale_tmp(cache: Path) -> None:
    """Remove the temporary folders of builds that were killed (their process is gone); a live
    concurrent build's folder is kept."""
    for tmp in cache.glob(f"{TMP_PREFIX}*"):
        owner = tmp.name[len(TMP_PREFIX):].rpartition("-")[0]  # drop the random part
        try:
            stale = tmp.is_dir() and owner_gone(owner, tmp.stat().st_mtime)
        except OSError:
            continue
        if stale:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_cache(cache: Path, fp: str, tables: dict, problems: list[Problem]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cache.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(cache)
    final = cache / f"index-{fp[:24]}"
    with atomic_folder(final, prefix=f"{TMP_PREFIX}{owner_tag()}-", replace=True) as tmp:
        manifest = {"version": INDEX_VERSION, "fingerprint": fp, "files": {},
                    "problems": [[p.path, p.field, p.message, p.severity] for p in problems]}
        for name, df in tables.items():
            f = tmp / f"{name}.parquet"
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), f, compression="zstd",
                           compression_level=1, write_page_checksum=True)
            manifest["files"][name] = {"rows": len(df), "bytes": f.stat().st_size}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
    for old in cache.glob("index-*"):  # superseded indexes
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _read_table(path: Path, name: str, meta: dict) -> pd.DataFrame:
    import pyarrow.parquet as pq

    f = path / f"{name}.parquet"
    if f.stat().st_size != meta["bytes"]:
        raise ValueError(f"{f} has the wrong size")
    table = pq.read_table(f, page_checksum_verification=True)
    if table.num_rows != meta["rows"]:
        raise ValueError(f"{f} has the wrong row count")
    return table.to_pandas()


def _read_cache(path: Path, fp: str) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Read a cached index (parts expanded); raises on any mismatch or damage."""
    from concurrent.futures import ThreadPoolExecutor

    manifest = json.loads((path / "manifest.json").read_text())
    if manifest.get("version") != INDEX_VERSION or manifest.get("fingerprint") != fp:
        raise ValueError("stale index")
    files = manifest["files"]
    # The big parts table decodes in a thread (pyarrow releases the GIL) while the small tables are
    # read and the humans' columns repeated for it.
    with ThreadPoolExecutor(1) as pool:
        own = pool.submit(_read_table, path, "parts", files["parts"])
        frames = _read_table(path, "frames", files["frames"])
        humans = _read_table(path, "humans", files["humans"])
        repeated = _repeat_humans(humans)
        parts = _join_parts(repeated, own.result())
    problems = [Problem(*p) for p in manifest["problems"]]
    return {"frames": frames, "humans": humans, "parts": parts}, problems


@dataclass
class Index:
    """The parsed annotation tables, the problems met while parsing, and where the cache lives."""

    tables: dict[str, pd.DataFrame]
    problems: list[Problem]
    dirs: list[AnnotationDir]
    cache_path: Path | None
    from_cache: bool


def load_index(root, vocab: Vocab | None = None, *, workers: int | None = None, progress: bool = True,
               rebuild: bool = False, cache: bool = True) -> Index:
    """Return the annotation index of ``root``, from the parquet cache when it is current.

    ``rebuild`` forces a fresh parse; ``cache=False`` neither reads nor writes the cache. A folder that
    is not a release raises :class:`tpslab.errors.NotAReleaseError` before anything is written.
    Problems of the folder layout (hidden folders ignored, a video under two classes, broken links) come
    first in ``problems``, then those of the files.
    """
    root = check_release_root(root)
    vocab = vocab or Vocab.from_root(root)
    layout_problems: list[Problem] = []
    dirs = find_annotation_dirs(root, layout_problems)
    fp = fingerprint(root, dirs)
    where = cache_dir_for(root) if cache else None
    if where is not None and not rebuild:
        path = where / f"index-{fp[:24]}"
        if path.exists():
            try:
                with gc_paused():
                    tables, problems = _read_cache(path, fp)
                return Index(tables, layout_problems + problems, dirs, path, True)
            except Exception as e:  # any damage: rebuild, never trust
                warnings.warn(f"index cache {path} is unusable ({e}); rebuilding", stacklevel=2)
    stored, problems = build_tables(dirs, vocab, workers=workers, progress=progress)
    path = None
    if where is not None:
        try:
            path = _write_cache(where, fp, stored, problems)
        except OSError as e:
            warnings.warn(f"could not write the index cache in {where}: {e}", stacklevel=2)
    return Index(_expand(stored), layout_problems + problems, dirs, path, False)


def _expand(stored: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {"frames": stored["frames"], "humans": stored["humans"],
            "parts": expand_parts(stored["humans"], stored["parts"])}
