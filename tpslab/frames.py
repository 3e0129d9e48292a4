"""Bulk video operations on a release: check frame counts, extract frames to JPEG folders.

Both work on a :class:`tpslab.dataset.TPSDataset` (its ``videos`` and ``frames`` tables), run over
many videos, and skip-and-report: a video that cannot be read gets a row with its error, and never
a substitute. The result is a pandas table with one row per video; ``summarize_*`` words it.

- :func:`check_videos`: frames a player shows, against the flist count and the highest annotated frame.
- :func:`extract_frames`: the release's own frame convention, ``OUT/<split>/<class>/<video>/img_%05d.jpg``
  (1-based: ``img_00001.jpg`` is decoded frame 0, the frame ``img_00001.json`` annotates), resumable:
  each folder records how it was made, so a resume never takes a folder made with other settings, or
  a damaged one, for complete, and never deletes a file tpslab did not write.

Worker processes die with the calling process (:func:`tpslab.memory.worker_map`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from tpslab.fileio import atomic_write_bytes
from tpslab.layout import rawframes_folder
from tpslab.memory import owner_gone, owner_tag, worker_map
from tpslab.video import (PyAVReader, VideoError, count_frames, frame_name, list_frame_files, probe,
                          short_side_size)

JPEG_QUALITY = 95  # OpenCV's default, which mmaction2's extraction used


def _max_annotated(dataset) -> pd.Series:
    frames = dataset.frames
    if not len(frames):
        return pd.Series(dtype="Int64")
    return frames.groupby(frames["video"].astype(str), observed=True)["frame"].max().astype("Int64")


# ----------------------------------------------------------------------------- check-videos


def _check_one(task) -> dict:
    path, decode = task
    if path is None:
        return {"decoded_frames": None, "hidden_frames": None, "error": "no video file"}
    try:
        info = probe(path)
        n = count_frames(path) if decode else info.num_frames
        return {"decoded_frames": n, "hidden_frames": info.hidden_frames, "error": None}
    except VideoError as err:
        return {"decoded_frames": None, "hidden_frames": None, "error": err.reason}


def check_videos(dataset, *, decode: bool = False, workers: int = 1, progress: bool = True) -> pd.DataFrame:
    """Per video: frames the file shows, against the flist count and the highest annotated frame.

    The count comes from a packet scan (edit lists honoured, truncation detected); ``decode=True``
    also decodes every frame (slow, catches damaged data). Columns: ``video, label, split, path,
    flist_frames, decoded_frames, hidden_frames`` (coded frames an edit list hides),
    ``max_annotated_frame`` (1-based), ``flist_mismatch``, ``annotated_past_end``, ``status``
    (``ok``, ``mismatch``, ``error``) and ``error`` (the reason a file could not be read).
    """
    videos = dataset.videos
    paths = [p if isinstance(p, str) and p else None for p in videos["path"]]
    results = worker_map(_check_one, [(p, decode) for p in paths], workers, desc="checking videos", unit="video",
                         progress=progress)
    report = pd.DataFrame({
        "video": videos["video"].astype(str).to_numpy(),
        "label": videos["label"].astype(object).to_numpy(),
        "split": videos["split"].astype(object).to_numpy(),
        "path": paths,
        "flist_frames": videos["num_frames"].astype("Int64").to_numpy(),
        "decoded_frames": pd.array([r["decoded_frames"] for r in results], dtype="Int64"),
        "hidden_frames": pd.array([r["hidden_frames"] for r in results], dtype="Int64"),
    })
    report["max_annotated_frame"] = report["video"].map(_max_annotated(dataset)).astype("Int64")
    report["flist_mismatch"] = (report["flist_frames"] != report["decoded_frames"]).fillna(False).astype(bool)
    report["annotated_past_end"] = (report["max_annotated_frame"] > report["decoded_frames"]).fillna(False) \
        .astype(bool)
    errors = [r["error"] for r in results]
    report["status"] = np.where([e is not None for e in errors], "error",
                                np.where(report["flist_mismatch"] | report["annotated_past_end"], "mismatch", "ok"))
    report["error"] = errors
    return report


def summarize_check(report: pd.DataFrame, max_rows: int = 20) -> str:
    """The mismatches and errors of a :func:`check_videos` report, then the totals."""
    lines = []
    bad = report[report["status"] != "ok"]
    for row in bad.head(max_rows).itertuples():
        if row.status == "error":
            where = f" ({row.path})" if isinstance(row.path, str) else f" (class {row.label}, {row.split} split)"
            lines.append(f"error     {row.video}: {row.error}{where}")
            continue
        what = []
        if row.flist_mismatch:
            flist = "unknown" if pd.isna(row.flist_frames) else row.flist_frames
            what.append(f"shows {row.decoded_frames} frames, flist says {flist}")
        if row.annotated_past_end:
            what.append(f"annotated up to img_{row.max_annotated_frame:05d} but shows {row.decoded_frames} frames")
        lines.append(f"mismatch  {row.video}: {'; '.join(what)}")
    if len(bad) > max_rows:
        lines.append(f"... {len(bad) - max_rows} more")
    hidden = int((report["hidden_frames"].fillna(0) > 0).sum())
    lines.append(f"{len(report)} videos: {int((report['status'] == 'ok').sum())} ok, "
                 f"{int(report['flist_mismatch'].sum())} differ from the flist count, "
                 f"{int(report['annotated_past_end'].sum())} annotated past their last frame, "
                 f"{int((report['status'] == 'error').sum())} unreadable; "
                 f"{hidden} cut with an edit list (read exactly via PyAV)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- extract-frames

# Every folder tpslab extracts holds this record: the settings, the source video's identity and every
# frame file tpslab wrote with its size. It is written atomically, last, once the frames are in place.
MANIFEST = ".tpslab-frames.json"
MANIFEST_FORMAT = 1
PARTIAL = ".partial-"  # frames are written to .<video>.partial-<owner> beside the video's folder
_OUR_FRAME = re.compile(r"^img_\d{5,}\.jpg$")  # the only names tpslab writes (and so may remove)


def prepare_extraction(out, *, short_side: int | None = None, quality: int = JPEG_QUALITY) -> Path:
    """Check the settings of :func:`extract_frames` and that ``out`` can be written (made if needed).

    Raises ``ValueError`` for a short side below 1 or a quality outside 1..100, and ``OSError`` (one
    sentence naming ``out``) when ``out`` is not a folder or cannot be written, before any video is read.
    """
    if short_side is not None and (isinstance(short_side, bool) or not isinstance(short_side, (int, np.integer))
                                   or short_side < 1):
        raise ValueError(f"the short side must be a positive number of pixels, got {short_side!r}")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"the JPEG quality must be from 1 to 100, got {quality!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OSError(f"cannot write frames into {out}: it is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".tpslab-probe-"):
            pass
    except OSError as err:
        raise OSError(f"cannot write frames into {out}: {err.strerror or err}") from err
    return out


def _settings(short_side, quality) -> dict:
    return {"short_side": None if short_side is None else int(short_side), "quality": int(quality)}


def _describe(settings: dict) -> str:
    side = settings.get("short_side")
    return f"short side {side if side is not None else 'unchanged'}, quality {settings.get('quality')}"


def _source_identity(path) -> dict:
    st = os.stat(path)
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_extraction_record(folder) -> tuple[dict | None, bool]:
    """The extraction record (:data:`MANIFEST`) ``tpslab extract-frames`` keeps in a frame folder:
    ``(record, damaged)``; ``(None, False)`` when the folder has none (another tool made it)."""
    return _read_manifest(Path(folder))


def finished_extraction_record(folder) -> dict | None:
    """The extraction record of a frame folder that ``tpslab extract-frames`` finished (None: another tool
    made the folder); a ValueError naming the folder when its record is damaged or the extraction was
    interrupted."""
    record, damaged = read_extraction_record(folder)
    if damaged:
        raise ValueError(f"{folder}: its extraction record {MANIFEST} is damaged; rerun `tpslab extract-frames "
                         "--replace` for this video")
    if record is not None and record.get("complete") is False:
        raise ValueError(f"{folder}: extraction was interrupted; rerun `tpslab extract-frames` to finish it")
    return record


def _read_manifest(folder: Path) -> tuple[dict | None, bool]:
    """(the folder's record, or None; whether a record exists but is damaged or not tpslab's)."""
    try:
        m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, False
    except (OSError, ValueError):
        return None, True
    ok = (isinstance(m, dict) and m.get("format") == MANIFEST_FORMAT and isinstance(m.get("complete"), bool)
          and isinstance(m.get("settings"), dict) and isinstance(m.get("source"), dict)
          and isinstance(m.get("frames"), dict) and isinstance(m.get("size"), list)
          and all(isinstance(k, str) and _OUR_FRAME.match(k) and isinstance(v, int) for k, v in m["frames"].items()))
    return (m, False) if ok else (None, True)


def _write_manifest(folder: Path, settings: dict, source: dict, size, frames: dict, complete: bool) -> None:
    record = {"format": MANIFEST_FORMAT, "tool": "tpslab extract-frames", "complete": complete,
              "settings": settings, "source": source, "size": list(size), "frames": frames}
    atomic_write_bytes(folder / MANIFEST, json.dumps(record, indent=0).encode())


def _is_manifest_tmp(name: str) -> bool:
    return name.startswith(f".{MANIFEST}.") and name.endswith(".tmp")  # fileio.atomic_path's leftovers


def _frame_state(path: Path, size: int) -> str:
    """Cheap check of a frame tpslab wrote: ``intact`` (its recorded size, the JPEG start and end-of-image
    markers), ``edited`` (a complete JPEG of another size: someone's edit or re-encode) or ``damaged``
    (truncated, zeroed by a crash, unreadable)."""
    try:
        with open(path, "rb") as f:
            actual = os.fstat(f.fileno()).st_size
            if actual < 4 or f.read(2) != b"\xff\xd8":
                return "damaged"
            f.seek(-2, os.SEEK_END)
            if f.read(2) != b"\xff\xd9":
                return "damaged"
            return "intact" if actual == size else "edited"
    except OSError:
        return "damaged"


def _few(names, k: int = 3) -> str:
    names = sorted(names)
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def _inspect(folder: Path, want: dict, replace: bool) -> tuple[str, str, dict | None, list[str]]:
    """What to do with a video's folder: (``absent``, ``complete``, ``redo`` or ``refuse``; why; the
    folder's record; files in it that tpslab did not write, which are kept)."""
    if not folder.exists():
        return "absent", "", None, []
    if not folder.is_dir():
        return "refuse", "is a file, not a folder; left untouched", None, []
    manifest, damaged = _read_manifest(folder)
    ours = set(manifest["frames"]) if manifest else set()
    frame_files = set(list_frame_files(folder).values())
    foreign_frames = frame_files - ours
    others = sorted(n for n in os.listdir(folder)
                    if n not in ours and n not in frame_files and n != MANIFEST and not _is_manifest_tmp(n))
    if manifest is None:
        if frame_files:
            why = f"its record {MANIFEST} is damaged" if damaged else \
                f"no {MANIFEST} record: made by another tool or an older tpslab"
            return "refuse", (f"holds {len(frame_files)} frame file(s) tpslab has no record of writing ({why}); "
                              "left untouched: move them away to extract this video"), None, others
        return "redo", "was empty" if not others else "held no frames", None, others
    if foreign_frames:
        return "refuse", (f"holds frame files tpslab did not write ({_few(foreign_frames)}); left untouched: "
                          "move them away to extract this video"), manifest, others
    action, why = _record_verdict(manifest, want, replace) or _frames_verdict(folder, manifest, want, replace,
                                                                                frame_files)
    return action, why, manifest, others


def _record_verdict(manifest: dict, want: dict, replace: bool) -> tuple[str, str] | None:
    """(``redo`` or ``refuse``, why) where the folder's record does not match what the video would give
    now (settings, a finished run, the video's version, the frames' size and count); None where it does."""
    if manifest["settings"] != want["settings"]:
        if not replace:
            return "refuse", (f"was made with {_describe(manifest['settings'])}, not {_describe(want['settings'])}; "
                              "left untouched: re-extract it with replace=True (--replace), or write to "
                              "another folder")
        return "redo", f"was made with {_describe(manifest['settings'])}"
    if not manifest["complete"]:
        return "redo", "was left half-replaced by an interrupted run"
    if manifest["source"] != want["source"]:
        return "redo", "was made from an earlier version of the video (size or time changed)"
    if manifest["size"] != list(want["size"]):
        return "redo", (f"held frames of {'x'.join(map(str, manifest['size']))}, where the video reads at "
                        f"{'x'.join(map(str, want['size']))}")
    if len(manifest["frames"]) != want["frames"]:
        return "redo", f"had {len(manifest['frames'])} frames where the video shows {want['frames']}"
    return None


def _frames_verdict(folder: Path, manifest: dict, want: dict, replace: bool, frame_files: set) -> tuple[str, str]:
    """(``complete``, ``redo`` or ``refuse``, why) from the recorded frames on disk: all there and whole,
    short, damaged, or edited since (kept unless ``replace``)."""
    present = [n for n in manifest["frames"] if n in frame_files]
    if len(present) < want["frames"]:
        return "redo", f"was short ({len(present)} of {want['frames']} frames)"
    state = {n: _frame_state(folder / n, size) for n, size in manifest["frames"].items()}
    edited = [n for n, st in state.items() if st == "edited"]
    if edited and not replace:
        return "refuse", (f"holds {len(edited)} frame(s) changed since tpslab wrote them ({_few(edited)}: complete "
                          "images of another size, e.g. edited); left untouched: re-extract them with replace=True "
                          "(--replace), or move them away")
    bad = [n for n, st in state.items() if st != "intact"]
    if bad:
        what = "damaged" if not edited else "damaged or changed"
        return "redo", f"had {len(bad)} {what} frame(s) ({_few(bad)}: truncated or overwritten)"
    return "complete", ""


def _remove_stale_partials(out: Path) -> None:
    """Remove the partial folders (``.<video>.partial-<owner>``) of runs that were killed: only those whose
    process is gone and that hold nothing but what tpslab writes there."""
    for partial in out.glob(f"*/*/.*{PARTIAL}*"):
        try:
            if not partial.is_dir() or partial.is_symlink():
                continue
            owner = partial.name.rpartition(PARTIAL)[2]
            if not owner_gone(owner, partial.stat().st_mtime):
                continue
            names = os.listdir(partial)
        except OSError:
            continue
        if all(_OUR_FRAME.match(n) or n == MANIFEST or _is_manifest_tmp(n) for n in names):
            shutil.rmtree(partial, ignore_errors=True)


def _short_side_size(width: int, height: int, short_side: int | None) -> tuple[int, int] | None:
    """The size to decode to (None: the video's own)."""
    if short_side is None or min(width, height) == short_side:
        return None
    return short_side_size(width, height, short_side)


def _decode_to(path, info, size, quality: int, partial: Path) -> dict[str, int]:
    """Write every frame of ``path`` into ``partial``; returns {file name: bytes}."""
    from PIL import Image

    written = {}
    with PyAVReader(path, info) as reader:
        for i, frame in enumerate(reader.iter_frames(size=size)):
            name = frame_name(i)
            Image.fromarray(frame).save(partial / name, quality=quality)
            written[name] = (partial / name).stat().st_size
    if len(written) != info.num_frames:
        raise VideoError(path, f"decoded {len(written)} frames where the probe counted {info.num_frames}")
    return written


def _extract_one(task) -> dict:
    path, folder, short_side, quality, replace = task
    folder = Path(folder)
    out = {"folder": str(folder), "frames_written": 0, "decoded_frames": None, "status": "error", "note": ""}
    if path is None:
        out["note"] = "no video file"
        return out
    partial = folder.with_name(f".{folder.name}{PARTIAL}{owner_tag()}")
    try:
        source = _source_identity(path)
        info = probe(path)
        out["decoded_frames"] = info.num_frames
        size = _short_side_size(info.width, info.height, short_side)
        settings = _settings(short_side, quality)
        shape = size or (info.width, info.height)
        action, why, manifest, kept = _inspect(folder, {"settings": settings, "source": source,
                                                        "frames": info.num_frames, "size": shape}, replace)
        if action == "complete":
            out.update(status="complete", frames_written=info.num_frames, note="already extracted")
            return out
        if action == "refuse":
            out.update(status="refused", note=why)
            return out
        shutil.rmtree(partial, ignore_errors=True)  # this process's own name: a leftover of a dead namesake
        partial.mkdir(parents=True)
        try:
            frames = _decode_to(path, info, size, quality, partial)
            if action == "absent":  # a folder appears only when complete
                _write_manifest(partial, settings, source, shape, frames, complete=True)
                os.replace(partial, folder)
            else:  # replace only what tpslab wrote, around the files it did not
                old = manifest["frames"] if manifest else {}
                # first claim every name about to change, so an interrupted run is redone, not refused
                _write_manifest(folder, settings, source, shape, {**old, **frames}, complete=False)
                for name in old.keys() - frames.keys():
                    (folder / name).unlink(missing_ok=True)
                for name in frames:
                    os.replace(partial / name, folder / name)
                _write_manifest(folder, settings, source, shape, frames, complete=True)
                for name in os.listdir(folder):
                    if _is_manifest_tmp(name):
                        (folder / name).unlink(missing_ok=True)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        note = "" if action == "absent" else why
        if kept:
            note += f"{'; ' if note else ''}kept {len(kept)} files tpslab did not write ({_few(kept)})"
        out.update(frames_written=info.num_frames, status="extracted" if action == "absent" else "re-extracted",
                   note=note)
    except VideoError as err:
        out["note"] = err.reason
    except OSError as err:
        out["note"] = f"cannot write frames: {err}"
    return out


def extract_frames(dataset, out, *, short_side: int | None = None, workers: int = 1,
                   quality: int = JPEG_QUALITY, replace: bool = False, videos=None,
                   progress: bool = True) -> pd.DataFrame:
    """Decode every video of ``dataset`` to ``out/<split>/<class>/<video>/img_%05d.jpg`` (1-based).

    Each folder gets a record, ``.tpslab-frames.json``: the settings (short side, JPEG quality), the
    source video's size and modification time, and every frame file written with its size. Frames are
    decoded into a hidden ``.<video>.partial-<host>-<pid>`` folder beside it and moved into place; the
    record is written last, so an interrupted run never leaves a folder that looks complete. Partial
    folders of killed runs (their process gone) are removed at the start of the next run.

    Resumable, and never wrong about it. A folder is ``complete`` (kept) only when its record matches
    the settings and the video, and every recorded frame is there with its size and its JPEG markers.
    Otherwise it is ``re-extracted`` (empty, short, damaged or truncated frames, a changed video, an
    interrupted replacement), or ``refused`` and left untouched:

    - made with other settings, or holding frames changed since they were written (complete JPEGs of
      another size: someone's edit, kept apart from damage such as a truncated or zeroed file): pass
      ``replace=True`` to re-extract it (nothing is thrown away unless asked);
    - holding frame files tpslab did not write (no record, a damaged one, or names it does not list,
      e.g. 0-based ones): tpslab never deletes or overwrites a file it did not write.

    Files that are not frames (``notes.txt``) are kept, and the note says so. ``short_side`` resizes
    each frame so its shorter side has that many pixels; ``videos`` extracts only those (names not in
    the dataset raise ``KeyError``). Bad settings and an unwritable ``out`` raise before any video is
    read (see :func:`prepare_extraction`). Each video's count is checked against the flist.

    Returns one row per video: ``video, label, split, path, folder, flist_frames, decoded_frames,
    frames_written, status`` (``extracted``, ``re-extracted``, ``complete``, ``refused``, ``error``),
    ``flist_mismatch`` and ``note`` (the error, why a folder was redone or refused, files kept).
    """
    out = prepare_extraction(out, short_side=short_side, quality=quality)
    if videos is not None:
        dataset = dataset.subset(videos)
    _remove_stale_partials(out)
    table = dataset.videos
    paths = [p if isinstance(p, str) and p else None for p in table["path"]]
    folders = [out / rawframes_folder(s, lab, v) for s, lab, v in zip(table["split"], table["label"], table["video"])]
    tasks = [(p, str(f), short_side, quality, replace) for p, f in zip(paths, folders)]
    results = worker_map(_extract_one, tasks, workers, desc="extracting frames", unit="video", progress=progress)
    report = pd.DataFrame(results, columns=["folder", "frames_written", "decoded_frames", "status", "note"])
    report.insert(0, "video", table["video"].astype(str).to_numpy())
    report.insert(1, "label", table["label"].astype(object).to_numpy())
    report.insert(2, "split", table["split"].astype(object).to_numpy())
    report.insert(3, "path", paths)
    report.insert(5, "flist_frames", table["num_frames"].astype("Int64").to_numpy())
    report["decoded_frames"] = report["decoded_frames"].astype("Int64")
    report["frames_written"] = report["frames_written"].astype(int)
    report["flist_mismatch"] = (report["flist_frames"] != report["decoded_frames"]).fillna(False).astype(bool)
    return report[["video", "label", "split", "path", "folder", "flist_frames", "decoded_frames",
                   "frames_written", "status", "flist_mismatch", "note"]]


def summarize_extraction(report: pd.DataFrame, max_rows: int = 20) -> str:
    """Errors, refused and redone folders, kept files and flist mismatches of an :func:`extract_frames`
    report, then the totals."""
    lines = []
    notable = report[report["status"].isin(["error", "refused", "re-extracted"]) | report["flist_mismatch"]]
    for row in notable.head(max_rows).itertuples():
        if row.status == "error":
            lines.append(f"error         {row.video}: {row.note} ({row.path})")
            continue
        if row.status == "refused":
            lines.append(f"refused       {row.video}: {row.folder} {row.note}")
        if row.status == "re-extracted":
            lines.append(f"re-extracted  {row.video}: previous folder {row.note}")
        if row.flist_mismatch:
            flist = "unknown" if pd.isna(row.flist_frames) else row.flist_frames
            lines.append(f"count         {row.video}: the video shows {row.decoded_frames} frames, flist says {flist}")
    if len(notable) > max_rows:
        lines.append(f"... {len(notable) - max_rows} more")
    counts = report["status"].value_counts()
    lines.append(f"{len(report)} videos: {counts.get('extracted', 0)} extracted, "
                 f"{counts.get('re-extracted', 0)} re-extracted, "
                 f"{counts.get('complete', 0)} already complete, {counts.get('refused', 0)} refused, "
                 f"{counts.get('error', 0)} failed; "
                 f"{int(report['flist_mismatch'].sum())} differ from the flist count; "
                 f"{int(report['frames_written'].sum())} frames")
    return "\n".join(lines)
