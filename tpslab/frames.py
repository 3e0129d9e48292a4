"""Bulk video operations on a release: check frame counts, extract frames to JPEG folders.

Both work on a :class:`tpslab.dataset.TPSDataset` (its ``videos`` and ``frames`` tables), run over
many videos, and skip-and-report: a video that cannot be read gets a row with its error, and never
a substitute. The result is a pandas table with one row per video; ``summarize_*`` words it.

- :func:`check_videos`: frames a player shows, against the flist count and the highest annotated frame.
- :func:`extract_frames`: the release's own frame convention, ``OUT/<split>/<class>/<video>/img_%05d.jpg``
  (1-based: ``img_00001.jpg`` is decoded frame 0, the frame ``img_00001.json`` annotates), resumable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from tpslab.video import PyAVReader, VideoError, count_frames, frame_name, list_frame_files, probe

JPEG_QUALITY = 95  # OpenCV's default, which mmaction2's extraction used


def _map(fn, tasks: list, workers: int, desc: str, progress: bool) -> list:
    """``[fn(t) for t in tasks]`` in ``workers`` processes, with a progress bar; order kept."""
    from tqdm.auto import tqdm

    with tqdm(total=len(tasks), desc=desc, unit="video", disable=not progress) as bar:
        if workers <= 1 or len(tasks) <= 1:
            results = []
            for t in tasks:
                results.append(fn(t))
                bar.update()
            return results
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # fork, as the index does: spawn would re-run an unguarded user script in every worker
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        results = []
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            for res in pool.map(fn, tasks):
                results.append(res)
                bar.update()
        return results


def _max_annotated(dataset) -> pd.Series:
    frames = dataset.frames
    if not len(frames):
        return pd.Series(dtype="Int64")
    return frames.groupby(frames["video"].astype(str), observed=True)["frame"].max().astype("Int64")


def _na_int(value):
    return None if value is None or pd.isna(value) else int(value)


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
    results = _map(_check_one, [(p, decode) for p in paths], workers, "checking videos", progress)
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
            lines.append(f"error     {row.video}: {row.error} ({row.path})")
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


def _folder_state(folder: Path, expected: int) -> str | None:
    """None when ``folder`` holds exactly frames img_00001..img_{expected}; else what is wrong with it."""
    if not folder.exists():
        return "absent"
    try:
        numbers = list_frame_files(folder)
    except OSError as err:
        return f"unreadable ({err})"
    if not numbers:
        return "was empty"
    if min(numbers) == 0:
        return f"was 0-based ({len(numbers)} frames from img_00000)"
    if len(numbers) != max(numbers):
        return f"had gaps ({len(numbers)} frames numbered up to {max(numbers)})"
    if len(numbers) < expected:
        return f"was short ({len(numbers)} of {expected} frames)"
    if len(numbers) > expected:
        return f"had {len(numbers)} frames where the video shows {expected}"
    return None


def _short_side_size(width: int, height: int, short_side: int | None) -> tuple[int, int] | None:
    if short_side is None or min(width, height) == short_side:
        return None
    scale = short_side / min(width, height)
    return (short_side, max(1, round(height * scale))) if width <= height else \
        (max(1, round(width * scale)), short_side)


def _extract_one(task) -> dict:
    from PIL import Image

    path, folder, short_side, quality = task
    folder = Path(folder)
    out = {"folder": str(folder), "frames_written": 0, "decoded_frames": None, "status": "error", "note": ""}
    if path is None:
        out["note"] = "no video file"
        return out
    try:
        info = probe(path)
        out["decoded_frames"] = info.num_frames
        state = _folder_state(folder, info.num_frames)
        if state is None:
            out.update(status="complete", frames_written=info.num_frames, note="already extracted")
            return out
        partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            size = _short_side_size(info.width, info.height, short_side)
            with PyAVReader(path, info) as reader:
                for i, frame in enumerate(reader.iter_frames(size=size)):
                    Image.fromarray(frame).save(partial / frame_name(i), quality=quality)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(partial, folder)  # a folder appears only when complete
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        out.update(frames_written=info.num_frames, status="extracted" if state == "absent" else "re-extracted",
                   note="" if state == "absent" else state)
    except VideoError as err:
        out["note"] = err.reason
    except OSError as err:
        out["note"] = f"cannot write frames: {err}"
    return out


def extract_frames(dataset, out, *, short_side: int | None = None, workers: int = 1,
                   quality: int = JPEG_QUALITY, progress: bool = True) -> pd.DataFrame:
    """Decode every video of ``dataset`` to ``out/<split>/<class>/<video>/img_%05d.jpg`` (1-based).

    Resumable: a folder holding exactly the video's frames is kept; an empty, short or 0-based one is
    re-extracted and reported. Frames are written to a hidden partial folder renamed into place when
    complete, so an interrupted run never leaves a short folder behind. ``short_side`` resizes each
    frame so its shorter side has that many pixels. Each video's count is checked against the flist.

    Returns one row per video: ``video, label, split, path, folder, flist_frames, decoded_frames,
    frames_written, status`` (``extracted``, ``re-extracted``, ``complete``, ``error``),
    ``flist_mismatch`` and ``note`` (the error, or what was wrong with a previous folder).
    """
    out = Path(out)
    videos = dataset.videos
    paths = [p if isinstance(p, str) and p else None for p in videos["path"]]
    folders = [out / str(s) / str(lab) / str(v) for s, lab, v in zip(videos["split"], videos["label"], videos["video"])]
    tasks = [(p, str(f), short_side, quality) for p, f in zip(paths, folders)]
    results = _map(_extract_one, tasks, workers, "extracting frames", progress)
    report = pd.DataFrame(results)
    report.insert(0, "video", videos["video"].astype(str).to_numpy())
    report.insert(1, "label", videos["label"].astype(object).to_numpy())
    report.insert(2, "split", videos["split"].astype(object).to_numpy())
    report.insert(3, "path", paths)
    report.insert(5, "flist_frames", videos["num_frames"].astype("Int64").to_numpy())
    report["decoded_frames"] = report["decoded_frames"].astype("Int64")
    report["flist_mismatch"] = (report["flist_frames"] != report["decoded_frames"]).fillna(False).astype(bool)
    return report[["video", "label", "split", "path", "folder", "flist_frames", "decoded_frames",
                   "frames_written", "status", "flist_mismatch", "note"]]


def summarize_extraction(report: pd.DataFrame, max_rows: int = 20) -> str:
    """Errors, redone folders and flist mismatches of an :func:`extract_frames` report, then totals."""
    lines = []
    notable = report[(report["status"].isin(["error", "re-extracted"])) | report["flist_mismatch"]]
    for row in notable.head(max_rows).itertuples():
        if row.status == "error":
            lines.append(f"error         {row.video}: {row.note} ({row.path})")
            continue
        if row.status == "re-extracted":
            lines.append(f"re-extracted  {row.video}: previous folder {row.note}")
        if row.flist_mismatch:
            flist = "unknown" if pd.isna(row.flist_frames) else row.flist_frames
            lines.append(f"count         {row.video}: wrote {row.decoded_frames} frames, flist says {flist}")
    if len(notable) > max_rows:
        lines.append(f"... {len(notable) - max_rows} more")
    counts = report["status"].value_counts()
    lines.append(f"{len(report)} videos: {counts.get('extracted', 0)} extracted, "
                 f"{counts.get('re-extracted', 0)} re-extracted (empty, short or 0-based folders), "
                 f"{counts.get('complete', 0)} already complete, {counts.get('error', 0)} failed; "
                 f"{int(report['flist_mismatch'].sum())} differ from the flist count; "
                 f"{int(report['frames_written'].sum())} frames")
    return "\n".join(lines)
