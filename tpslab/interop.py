"""The toolchains the field uses: COCO out (to train detectors), COCO results in (to a submission),
and the annotation lists of MMAction2 and PySlowFast (to train video models).

COCO out
    :func:`coco_ground_truth` (a dict) and :func:`export_coco` (a file, written in chunks) turn every
    annotated frame of a dataset into a COCO ``images`` entry whose ``file_name`` is the frame's JPEG in
    a rawframes folder made by ``tpslab extract-frames`` (``<split>/<class>/<video>/img_00001.jpg``,
    relative to that folder), with the width and height read from the JPEG files themselves. Categories:
    ``person`` (id 1) and the body parts of the vocabulary (id 2 + the part's vocabulary id). Each
    person and each part is an annotation with ``bbox``, ``area`` and ``iscrowd: 0``; parts also carry
    ``person_id`` (the annotation id of their person), ``human`` (the person's index in the frame),
    ``state``, ``object`` and ``object_bbox``.

COCO results in
    :func:`read_coco_results` reads a detector's results file (``[{"image_id", "category_id", "bbox",
    "score"}, ...]``) against the exported images and returns the boxes table that
    :class:`tpslab.pipeline.EndToEnd` and :func:`tpslab.pipeline.majority_predictions`
    consume, in the release's pixels, with the scorer's limits applied (see its docstring for the rule);
    :func:`write_detections` writes them as the detections file ``tpslab predict --boxes`` reads.

Lists
    :func:`export_lists` writes MMAction2's rawframe lists (``frame_dir total_frames label``) and video
    lists (``path label``), PySlowFast's ``train.csv``/``val.csv``/``test.csv`` (``path label``) and the
    class index (one action per line; line ``i`` is action id ``i`` of the vocabulary).

The box conversion
------------------
The release's boxes are inclusive pixel corners ``[x1, y1, x2, y2]``: the box covers the pixels x1..x2,
so its width is ``x2 - x1 + 1`` (the official scorer measures IoU that way). COCO's ``[x, y, w, h]``
is continuous: the box spans ``[x, x + w)``. Pixel ``i`` spans ``[i, i + 1)``, so the release box is
the continuous box ``[x1, x2 + 1)``; frames resized by ``sx = frame width / video width`` (and ``sy``
for heights) scale it to ``[x1 * sx, (x2 + 1) * sx)``. Hence::

    x = x1 * sx              w = (x2 - x1 + 1) * sx                  (and y, h with sy)
    x1 = x / sx              x2 = x / sx + (w / sx - 1)              (the way back)

and the way back rounds both to 6 decimals (:data:`DECIMALS`, a millionth of a pixel). With frames at
the video's size (``sx = sy = 1``) this is ``x = x1, w = x2 - x1 + 1``, so COCO areas and IoUs equal
the scorer's inclusive ones.

Exactness. Every coordinate written with at most 6 decimals (integers, and decimals such as ``140.99``:
what a JSON file holds is the float nearest its decimal text) reads back bit for bit, at any frame
size, because the float errors of the two ways (about 1e-13 pixel) are far below the rounding step.
Without the rounding this is impossible: a resized frame has fewer floats in its smaller range than
the video has in its own, so some coordinates, integers included, have no float ``x`` with
``x / sx`` equal to them; and even at ``sx = 1``, ``x1 + (w - 1)`` lands exactly halfway between two
floats when ``x1`` has a binary digit finer than ``x2`` does (``x1 = 57.96, x2 = 126.29``), so
no ``w`` gives back an odd ``x2``. A coordinate with more than 6 decimals (``1/3`` as a float)
reads back as its 6-decimal rounding; the export counts such boxes (``info["inexact_boxes"]``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from tpslab.fileio import check_written, need_folder, write_with_record
from tpslab.layout import rawframes_folder
from tpslab.challenge import MAX_HUMANS, MAX_PROPOSALS, box_problem, frame_stem

TOOL_COCO = "tpslab export-coco"
TOOL_LISTS = "tpslab export-lists"
NO_FRAMES = "no such frames folder (make one with tpslab extract-frames)"
PERSON = "person"
PERSON_ID = 1
#: Every file :func:`export_coco` writes starts with these bytes; an existing file that does not is
#: never overwritten.
COCO_SIGNATURE = b'{"info":{"tool":"' + TOOL_COCO.encode() + b'"'
#: The record :func:`export_lists` keeps in its output folder: the files it wrote and their digests.
LISTS_RECORD = ".tpslab-lists.json"
#: The label written for a video whose action is unknown (see :func:`export_lists`).
UNKNOWN_LABEL = -1
_CHUNK = 20000  # annotations serialised at a time
#: Decimals the way back from COCO rounds to (a millionth of a pixel): see the module docstring.
DECIMALS = 6


class InteropError(ValueError):
    """Input that cannot be converted: one line naming the file and the entry."""


# ----------------------------------------------------------------------------- box conversion


def _scales(scale, n: int) -> tuple[np.ndarray, np.ndarray]:
    sx, sy = (np.broadcast_to(np.asarray(s, dtype=np.float64), (n,)) for s in
              ((scale, scale) if np.ndim(scale) == 0 else scale))
    return sx, sy


def _snap(v: np.ndarray) -> np.ndarray:
    """Round to :data:`DECIMALS` decimals: the nearest float to that decimal, as JSON parsing gives it."""
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(v) < 1e9, np.round(v, DECIMALS), v)


def coco_to_corners(bbox, scale=1.0) -> np.ndarray:
    """COCO ``[x, y, w, h]`` in a frame's pixels -> the release's inclusive corners ``[x1, y1, x2, y2]``.

    ``bbox``: (n, 4) array-like. ``scale``: ``(sx, sy)`` (scalars or per-row arrays), the frame's size
    over the video's (1.0: frames at the video's size). ``x1 = x / sx``, ``x2 = x / sx + (w / sx - 1)``,
    both rounded to :data:`DECIMALS` decimals; likewise y with ``sy`` (see the module docstring).
    """
    b = np.asarray(bbox, dtype=np.float64).reshape(-1, 4)
    sx, sy = _scales(scale, len(b))
    x1, y1 = b[:, 0] / sx, b[:, 1] / sy
    return np.stack([_snap(x1), _snap(y1), _snap(x1 + (b[:, 2] / sx - 1.0)), _snap(y1 + (b[:, 3] / sy - 1.0))],
                    axis=1)


def corners_to_coco(boxes, scale=1.0) -> tuple[np.ndarray, np.ndarray]:
    """The release's inclusive corners -> COCO ``[x, y, w, h]`` in a frame's pixels, and a mask of the
    rows that :func:`coco_to_corners` turns back into exactly the same corners (NaN rows count as exact).

    ``x = x1 * sx``, ``w = (x2 - x1 + 1) * sx``, likewise y and h with ``sy``; ``scale`` as in
    :func:`coco_to_corners`.
    """
    c = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sx, sy = _scales(scale, len(c))
    bbox = np.stack([c[:, 0] * sx, c[:, 1] * sy, ((c[:, 2] - c[:, 0]) + 1.0) * sx, ((c[:, 3] - c[:, 1]) + 1.0) * sy],
                    axis=1)
    back = coco_to_corners(bbox, (sx, sy))
    exact = ((back == c) | np.isnan(c)).all(axis=1)
    return bbox, exact


# ----------------------------------------------------------------------------- frames on disk


def _video_names(dataset, videos) -> list[str]:
    known = list(dataset.videos["video"].astype(str))
    if videos is None:
        return known
    videos = list(dict.fromkeys(map(str, videos)))
    unknown = sorted(set(videos) - set(known))
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InteropError(f"{len(unknown)} names are not videos of {dataset.root}: {', '.join(unknown[:5])}{more}")
    return videos


def _frame_folder(row) -> PurePosixPath:
    """The rawframes folder of a ``videos`` row, relative to the frames root (``extract-frames``' layout)."""
    return rawframes_folder(row["split"], row["label"], row["video"])


def _scan_video(task) -> dict:
    """One video's annotated frames on disk: their file names, the frames' size, the video's size."""
    from PIL import UnidentifiedImageError

    from tpslab.video import RawFramesReader, VideoError, frame_image_size, list_frame_files, probe

    root, rel, video_path, numbers = task
    folder = Path(root) / rel
    out = {"files": [None] * len(numbers), "size": None, "video_size": None, "error": None}
    if not folder.is_dir():
        return out
    try:
        with RawFramesReader(folder):  # refuses 0-based numbering and gaps
            pass
        files = list_frame_files(folder)
    except VideoError as err:
        out["error"] = str(err)
        return out
    except OSError as err:
        out["error"] = f"{folder}: cannot read it ({err.strerror or err})"
        return out
    sizes = {}
    for i, n in enumerate(numbers):
        name = files.get(n)
        if name is None:
            continue
        try:
            sizes.setdefault(frame_image_size(folder / name), name)
        except (OSError, UnidentifiedImageError) as err:
            out["error"] = f"{folder / name}: not a readable image ({err})"
            return out
        out["files"][i] = f"{rel}/{name}"
    if len(sizes) > 1:
        (s1, f1), (s2, f2) = list(sizes.items())[:2]
        out["error"] = f"{folder}: frames of different sizes ({f1} is {s1[0]}x{s1[1]}, {f2} is {s2[0]}x{s2[1]})"
        return out
    if not sizes:
        return out
    out["size"] = next(iter(sizes))
    try:
        if not video_path:
            raise VideoError(folder, "the release has no video file for it")
        info = probe(video_path)
    except VideoError as err:
        out["error"] = (f"cannot verify the size of the frames in {folder} against their video, so boxes cannot be "
                        f"placed on them: {err}")
        return out
    vw, vh = int(info.width), int(info.height)
    fw, fh = out["size"]
    if abs(fh - vh * fw / vw) > 1 or abs(fw - vw * fh / vh) > 1:  # a resize keeps the aspect to a pixel
        out["error"] = (f"{folder}: frames are {fw}x{fh}, not a resize of the video's {vw}x{vh} that keeps its "
                        "aspect (another video's frames, cropped, or stretched; tpslab extract-frames keeps it)")
        return out
    out["video_size"] = (vw, vh)
    return out


def _frame_table(dataset, frames_root, videos, missing: str, workers: int, progress: bool) -> pd.DataFrame:
    """Every annotated frame of ``videos`` with its file, frame size and video size; raises or skips
    (``missing``) frames not on disk."""
    from tpslab.memory import worker_map

    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
    root = need_folder(frames_root, NO_FRAMES)
    keep = set(videos)
    fr = dataset.frames
    fr = fr[fr["video"].astype(str).isin(keep)][["video", "frame"]].astype({"video": str})
    order = {v: i for i, v in enumerate(videos)}
    fr = fr.assign(_order=fr["video"].map(order)).sort_values(["_order", "frame"], kind="stable")
    rows = dataset.videos.assign(video=dataset.videos["video"].astype(str)).set_index("video")
    groups = fr.groupby("video", sort=False)["frame"]
    names = list(groups.groups)
    tasks = []
    for v in names:
        row = rows.loc[v]
        path = row["path"] if isinstance(row["path"], str) and row["path"] else None
        tasks.append((str(root), str(_frame_folder(row.to_dict() | {"video": v})), path,
                      groups.get_group(v).astype(int).tolist()))
    results = worker_map(_scan_video, tasks, workers, desc="reading frame sizes", unit="frame",
                         sizes=[len(t[3]) for t in tasks], progress=progress)
    errors = [r["error"] for r in results if r["error"]]
    if errors:
        more = f" (and {len(errors) - 1} more videos with problems)" if len(errors) > 1 else ""
        raise InteropError(errors[0] + more)
    table = []
    for v, task, r in zip(names, tasks, results):
        fw, fh = r["size"] or (0, 0)
        vw, vh = r["video_size"] or (0, 0)
        for n, f in zip(task[3], r["files"]):
            table.append((v, n, f, fw, fh, vw, vh))
    table = pd.DataFrame(table, columns=["video", "frame", "file_name", "width", "height", "video_width",
                                         "video_height"])
    absent = table["file_name"].isna()
    if absent.any() and missing == "error":
        first = table[absent].iloc[0]
        folder = root / str(_frame_folder(rows.loc[first["video"]].to_dict() | {"video": first["video"]}))
        stem = frame_stem(first["frame"])
        what = "no such folder" if not folder.is_dir() else f"no {stem}.jpg"
        raise InteropError(f"{folder}: {what}, but {stem}.json annotates it; "
                           f"{int(absent.sum())} annotated frames of {table.loc[absent, 'video'].nunique()} videos "
                           f"are missing from {root} (extract them with tpslab extract-frames, or skip them)")
    return table


# ----------------------------------------------------------------------------- COCO out


def _categories(part_names) -> list[dict]:
    cats = [{"id": PERSON_ID, "name": PERSON, "supercategory": PERSON}]
    cats += [{"id": PERSON_ID + 1 + i, "name": name, "supercategory": "body_part"}
             for i, name in enumerate(part_names)]
    return cats


@dataclass
class CocoTables:
    """What :func:`coco_of_tables` makes: COCO ``images`` and ``categories``, the annotations as a generator of
    lists (``chunks``: persons, then parts), their counts and the number of inexact boxes."""

    images: list
    categories: list
    chunks: object
    persons: int
    parts: int
    inexact: int

    def annotations(self) -> list:
        return [a for chunk in self.chunks for a in chunk]


def coco_of_tables(images: pd.DataFrame, humans: pd.DataFrame, parts: pd.DataFrame, part_names,
                   where: str = "the tables") -> CocoTables:
    """The one table-to-COCO builder (:func:`export_coco`, :func:`coco_ground_truth` and the competition's
    simulated detector use it): the humans and parts (release tables: inclusive corners in the video's
    pixels) of the frames in ``images``, one row per image with ``file_name``, ``width``, ``height``, ``video``,
    ``frame`` (1-based), ``video_width`` and ``video_height``. Image ids are 1, 2, ... in row order, the
    person category is :data:`PERSON_ID`, part ``k`` of ``part_names`` is ``PERSON_ID + 1 + k``; boxes are
    scaled by the image's size over its video's (see the module docstring). ``where`` names the source in
    errors (:class:`InteropError`)."""
    images = images.reset_index(drop=True)
    videos = images["video"].astype(str)
    ids = np.arange(1, len(images) + 1)
    records = [{"id": int(i), "file_name": f, "width": int(w), "height": int(h), "video": v, "frame": int(n),
                "video_width": int(vw), "video_height": int(vh)}
               for i, f, w, h, v, n, vw, vh in zip(ids, images["file_name"], images["width"], images["height"],
                                                   images["video"], images["frame"], images["video_width"],
                                                   images["video_height"])]
    key = pd.MultiIndex.from_arrays([videos, images["frame"].astype(np.int64)])
    sx = (images["width"] / images["video_width"]).to_numpy(np.float64)
    sy = (images["height"] / images["video_height"]).to_numpy(np.float64)

    def select(t):
        t = t[t["video"].astype(str).isin(set(videos))]
        pos = key.get_indexer(pd.MultiIndex.from_arrays([t["video"].astype(str), t["frame"].astype(np.int64)]))
        return t[pos >= 0], pos[pos >= 0]

    humans, h_img = select(humans)
    parts, p_img = select(parts)
    h_ids = np.arange(1, len(humans) + 1)
    h_key = pd.MultiIndex.from_arrays([humans["video"].astype(str), humans["frame"].astype(np.int64),
                                       humans["human"].astype(np.int64)])
    p_person = h_key.get_indexer(pd.MultiIndex.from_arrays([parts["video"].astype(str),
                                                            parts["frame"].astype(np.int64),
                                                            parts["human"].astype(np.int64)]))
    if (p_person < 0).any():
        raise InteropError(f"{where}: the parts table has parts of humans the humans table lacks")
    part_names = list(part_names)
    part_code = pd.Index(part_names).get_indexer(parts["part"].astype(str)).astype(np.int64)
    if (part_code < 0).any():
        unknown = sorted(set(parts["part"].astype(str)) - set(part_names))
        raise InteropError(f"{where}: parts outside the part vocabulary: {', '.join(unknown[:5])}")
    part_cat = PERSON_ID + 1 + part_code
    inexact = 0

    def convert(t, prefix, img, what):
        nonlocal inexact
        corners = t[[f"{prefix}{c}" for c in ("x1", "y1", "x2", "y2")]].to_numpy(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # overflows are found and named below
            bbox, exact = corners_to_coco(corners, (sx[img], sy[img]))
            written = bbox if what == "object box" else np.c_[bbox, bbox[:, 2] * bbox[:, 3]]  # objects: no area
        # Finite corners whose [x, y, w, h] or area overflow: orjson would write null (COCOeval then fails).
        overflow = np.flatnonzero(np.isfinite(corners).all(axis=1) & ~np.isfinite(written).all(axis=1))
        if len(overflow):
            r, i = t.iloc[overflow[0]], overflow[0]
            who = f"{r['video']} frame {r['frame']} humans[{r['human']}]" + ("" if what == "box" else f" {r['part']}")
            raise InteropError(f"{where}: {who}: {what} [{', '.join(f'{x:g}' for x in corners[i])}] is too large for "
                               "COCO's [x, y, w, h] (its width, height or area is not a finite number)")
        inexact += int((~exact).sum())
        return bbox

    h_bbox = convert(humans, "", h_img, "box")
    p_bbox = convert(parts, "part_", p_img, "part box")
    o_bbox = convert(parts, "object_", p_img, "object box")
    has_obj = np.isfinite(o_bbox).all(axis=1)

    def person_chunks():
        img_ids = ids[h_img]
        number = humans["human"].to_numpy()
        for s in range(0, len(humans), _CHUNK):
            e = s + _CHUNK
            yield [{"id": int(i), "image_id": int(im), "category_id": PERSON_ID, "bbox": b, "area": b[2] * b[3],
                    "iscrowd": 0, "human": int(k)}
                   for i, im, b, k in zip(h_ids[s:e], img_ids[s:e], h_bbox[s:e].tolist(), number[s:e])]

    def part_chunks():
        img_ids = ids[p_img]
        person = h_ids[p_person]
        number = parts["human"].to_numpy()
        ann_ids = np.arange(len(humans) + 1, len(humans) + len(parts) + 1)
        state = parts["state"].astype(object).where(parts["state"].notna(), None).to_numpy()
        obj = parts["object"].astype(object).where(parts["object"].notna(), None).to_numpy()
        for s in range(0, len(parts), _CHUNK):
            e = s + _CHUNK
            obox = [b if ok else None for b, ok in zip(o_bbox[s:e].tolist(), has_obj[s:e])]
            yield [{"id": int(i), "image_id": int(im), "category_id": int(c), "bbox": b, "area": b[2] * b[3],
                    "iscrowd": 0, "person_id": int(pid), "human": int(k), "state": None if st is None else str(st),
                    "object": None if ob is None else str(ob), "object_bbox": objb}
                   for i, im, c, b, pid, k, st, ob, objb in zip(ann_ids[s:e], img_ids[s:e], part_cat[s:e],
                                                                 p_bbox[s:e].tolist(), person[s:e], number[s:e],
                                                                 state[s:e], obj[s:e], obox)]

    def chunks():
        yield from person_chunks()
        yield from part_chunks()

    return CocoTables(records, _categories(part_names), chunks(), len(humans), len(parts), inexact)


def _coco_parts(dataset, frames, videos, missing, workers, progress) -> tuple[CocoTables, dict]:
    """The COCO tables of ``videos``' annotated frames on disk under ``frames``, and the file's ``info``."""
    from tpslab import __version__

    videos = _video_names(dataset, videos)
    table = _frame_table(dataset, frames, videos, missing, workers, progress)
    skipped = table[table["file_name"].isna()]
    table = table[table["file_name"].notna()].reset_index(drop=True)
    if table.empty:  # a COCO file of 0 images is of no use (pycocotools' evaluation fails on one): say why
        unannotated = len(set(videos) - set(skipped["video"]))
        why = ([f"{unannotated} videos have no annotations, as test videos"] if unannotated else []) + \
              ([f"{len(skipped)} annotated frames were not in the folder and were skipped"] if len(skipped) else [])
        raise InteropError(f"{frames}: nothing to export: none of the {len(videos)} videos has an annotated frame "
                           f"there" + (f" ({'; '.join(why)})" if why else ""))
    coco = coco_of_tables(table, dataset.humans, dataset.parts, dataset.vocab.parts.names, where=str(dataset.root))
    resized = table.groupby("video")[["width", "height", "video_width", "video_height"]].first()
    info = {
        "tool": TOOL_COCO,
        "version": __version__,
        "description": f"Kinetics-TPS persons and body parts of {table['video'].nunique()} videos",
        "release": str(dataset.root),
        "frames": str(Path(frames)),
        "box_convention": "bbox [x, y, w, h] in the frame's pixels: x = x1 * sx, w = (x2 - x1 + 1) * sx from the "
                          "release's inclusive corners [x1, y1, x2, y2] (sx = width / video_width, likewise y); "
                          "back: x1 = x / sx, x2 = x / sx + (w / sx - 1), both rounded to 6 decimals",
        "videos": int(table["video"].nunique()),
        "images": len(coco.images),
        "persons": coco.persons,
        "parts": coco.parts,
        "resized_videos": int(((resized["width"] != resized["video_width"])
                               | (resized["height"] != resized["video_height"])).sum()),
        "skipped_frames": len(skipped),
        "skipped_videos": sorted(set(skipped["video"]) - set(table["video"])),
        "videos_without_annotated_frames": sorted(set(videos) - set(table["video"]) - set(skipped["video"])),
        "inexact_boxes": coco.inexact,
    }
    return coco, info


def coco_ground_truth(dataset, frames, *, videos: Iterable[str] | None = None, missing: str = "error",
                      workers: int = 1, progress: bool = True) -> dict:
    """The persons and body parts of ``videos`` (default: every video) as a COCO dataset dict.

    ``frames``: the rawframes folder made by ``tpslab extract-frames`` (or
    :func:`tpslab.frames.extract_frames`); every annotated frame must be there, as
    ``<split>/<class>/<video>/img_00001.jpg`` (1-based), unless ``missing="skip"`` (such frames are
    left out and counted in ``info``). Each image's ``width``/``height`` are read from its JPEG, the
    video's size from the video file (its header), and boxes are scaled by their ratio (see the module
    docstring). Images also carry ``video``, ``frame``, ``video_width`` and ``video_height``, which
    :func:`read_coco_results` needs. ``info`` holds the counts, the box convention, the number of
    coordinates that cannot be written to read back bit-exactly (``inexact_boxes``) and the skipped
    frames. Videos without annotated frames (the test split) contribute no images; when no video has an
    image to give (only test videos, or every annotated frame skipped), nothing is exported.

    Raises :class:`InteropError` (one line, naming the folder or file) for a missing frame (with
    ``missing="error"``; a frame is missing when its video's folder is absent or ends before it), a
    0-based frame folder or one with a gap in its numbering (damaged: refused even with ``"skip"``),
    frames of mixed sizes, frames that are not a resize of their video, a video whose size cannot be
    read, names that are not videos of the dataset, and nothing to export (no image at all).
    """
    coco, info = _coco_parts(dataset, frames, videos, missing, workers, progress)
    return {"info": info, "licenses": [], "images": coco.images, "annotations": coco.annotations(),
            "categories": coco.categories}


def is_tpslab_coco(path) -> bool:
    """Whether ``path`` is a COCO file that :func:`export_coco` wrote (its first bytes say so)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(COCO_SIGNATURE)) == COCO_SIGNATURE
    except OSError:
        return False


def export_coco(dataset, frames, out, *, videos: Iterable[str] | None = None, missing: str = "error",
                workers: int = 1, progress: bool = True) -> dict:
    """Write :func:`coco_ground_truth` to the JSON file ``out``; returns its ``info`` (the counts).

    The annotations are serialised in chunks (the file never exists as one Python object, so the full
    release fits in memory) into a temporary file renamed into place. ``out`` may exist only when it is
    a file this function wrote earlier (its first bytes, ``{"info":{"tool":"tpslab export-coco"``, say
    so): any other file, or a folder, is refused with ``FileExistsError`` before any work, and left
    untouched.
    """
    import orjson
    from tqdm.auto import tqdm

    from tpslab.fileio import atomic_path

    out = Path(out)
    check_coco_out(out)
    coco, info = _coco_parts(dataset, frames, videos, missing, workers, progress)
    n = coco.persons + coco.parts
    with atomic_path(out) as tmp, open(tmp, "wb") as f, \
            tqdm(total=n, desc="writing COCO", unit="box", disable=not progress, leave=False) as bar:
        f.write(b'{"info":' + orjson.dumps(info) + b',"licenses":[],"images":')
        f.write(orjson.dumps(coco.images))
        f.write(b',"categories":' + orjson.dumps(coco.categories) + b',"annotations":[')
        first = True
        for chunk in coco.chunks:
            if not chunk:
                continue
            body = orjson.dumps(chunk)[1:-1]
            f.write(body if first else b"," + body)
            first = False
            bar.update(len(chunk))
        f.write(b"]}")
    return info


def check_coco_out(out) -> Path:
    """Refuse (``FileExistsError``, one line) an ``out`` that exists and is not a file :func:`export_coco`
    wrote; check that its folder exists (``FileNotFoundError``)."""
    out = Path(out)
    if out.is_dir():
        raise FileExistsError(f"{out}: is a folder; give a file name for the COCO JSON")
    if out.exists() and not is_tpslab_coco(out):
        raise FileExistsError(f"{out}: exists and was not written by {TOOL_COCO}; left untouched (remove it or "
                              "choose another name)")
    need_folder(out.parent)
    return out


# ----------------------------------------------------------------------------- COCO results in


def _load_json(source, name: str):
    import orjson

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InteropError(f"{path}: cannot read it ({err.strerror or err})") from None
        try:
            return orjson.loads(data), str(path)
        except orjson.JSONDecodeError as err:
            import json

            try:  # Python's json writes NaN and Infinity (a detector's bad score): read them to name the entry
                return json.loads(data), str(path)
            except (ValueError, RecursionError):
                raise InteropError(f"{path}: not JSON ({err})") from None
    if hasattr(source, "dataset") and isinstance(source.dataset, Mapping):  # a pycocotools COCO object
        return source.dataset, name
    return source, name


@dataclass
class _Images:
    where: str
    ids: dict  # image id -> row
    video: np.ndarray
    frame: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    categories: dict  # category id -> name


def _read_images(source) -> _Images:
    data, where = _load_json(source, "images")
    if not isinstance(data, Mapping) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise InteropError(f"{where}: expected a COCO dict with 'images' and 'categories' lists (the file "
                           f"{TOOL_COCO} wrote)")
    rows, ids = _image_rows(data["images"], where)
    cats = _category_names(data["categories"], where)
    arr = np.array([r[2:] for r in rows], dtype=np.float64).reshape(-1, 5)
    return _Images(where, ids, np.array([r[1] for r in rows], dtype=object),
                   np.array([r[2] for r in rows], dtype=np.int64), arr[:, 1] / arr[:, 3], arr[:, 2] / arr[:, 4], cats)


_IMAGE_FIELDS = ("id", "video", "frame", "width", "height", "video_width", "video_height")


def _image_rows(images: list, where: str) -> tuple[list, dict]:
    """The checked ``_IMAGE_FIELDS`` of every image, and the row of each image id."""
    rows = []
    for i, img in enumerate(images):
        if not isinstance(img, Mapping) or any(k not in img for k in _IMAGE_FIELDS):
            lacks = [k for k in _IMAGE_FIELDS if not isinstance(img, Mapping) or k not in img]
            raise InteropError(f"{where}: images[{i}] lacks {', '.join(lacks)} (written by {TOOL_COCO}?)")
        vals = [img[k] for k in _IMAGE_FIELDS]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals[2:] + [vals[0]]) \
                or not isinstance(vals[1], str) or min(vals[3:]) < 1 or vals[2] < 1:
            raise InteropError(f"{where}: images[{i}] (id {img.get('id')!r}): expected an integer id, a video name "
                               f"and positive integer frame and sizes")
        rows.append(vals)
    ids = {}
    for i, r in enumerate(rows):
        if r[0] in ids:
            raise InteropError(f"{where}: images[{i}]: image id {r[0]} is repeated")
        ids[r[0]] = i
    return rows, ids


def _category_names(categories: list, where: str) -> dict:
    """{category id: name}, with exactly one :data:`PERSON`."""
    cats = {}
    for i, c in enumerate(categories):
        if not isinstance(c, Mapping) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise InteropError(f"{where}: categories[{i}]: expected an integer id and a name")
        cats[c["id"]] = c["name"]
    if list(cats.values()).count(PERSON) != 1:
        raise InteropError(f"{where}: expected exactly one category named {PERSON!r}")
    return cats


def _is_real(v) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    try:
        return bool(np.isfinite(v))
    except (OverflowError, TypeError):  # an int beyond float
        return False


def _entry_problem(entry, images: _Images) -> str | None:
    if not isinstance(entry, Mapping):
        return f"expected an object with image_id, category_id, bbox and score, got {type(entry).__name__}"
    lacks = [k for k in ("image_id", "category_id", "bbox", "score") if k not in entry]
    if lacks:
        return f"lacks {', '.join(lacks)}"
    image_id, cat, bbox, score = entry["image_id"], entry["category_id"], entry["bbox"], entry["score"]
    if not isinstance(image_id, int) or isinstance(image_id, bool) or image_id not in images.ids:
        return f"image_id {image_id!r} is not an image of {images.where}"
    if not isinstance(cat, int) or isinstance(cat, bool) or cat not in images.categories:
        return f"category_id {cat!r} is not a category of {images.where} (ids {sorted(images.categories)})"
    problem = box_problem(bbox)
    if problem:
        return f"bbox: {problem.replace('[x1, y1, x2, y2]', '[x, y, w, h]')}"
    if not bbox[2] > 0 or not bbox[3] > 0:
        return f"bbox {bbox!r}: width and height must be positive"
    if not _is_real(score):
        return f"score {score!r} is not a finite number"
    return None


def _read_entries(source, images: _Images):
    data, where = _load_json(source, "results")
    if not isinstance(data, list):
        raise InteropError(f"{where}: expected a JSON list of detections (COCO results format), got "
                           f"{type(data).__name__}")
    n = len(data)
    img = np.empty(n, np.int64)
    cat = np.empty(n, np.int64)
    bbox = np.empty((n, 4), np.float64)
    score = np.empty(n, np.float64)
    bad = []
    for i, e in enumerate(data):
        problem = _entry_problem(e, images)
        if problem:
            bad.append((i, e, problem))
            continue
        img[i] = images.ids[e["image_id"]]
        cat[i] = e["category_id"]
        bbox[i] = e["bbox"]
        score[i] = e["score"]
    if bad:
        i, e, problem = bad[0]
        image_id = e.get("image_id") if isinstance(e, Mapping) else None
        more = f" (and {len(bad) - 1} more bad entries)" if len(bad) > 1 else ""
        raise InteropError(f"{where}: entry {i} (image_id {image_id!r}): {problem}{more}")
    return img, cat, bbox, score


@dataclass
class CocoDetections:
    """What :func:`read_coco_results` read: ``boxes`` (the pipeline's box table), ``frames`` (every exported
    frame, with or without detections) and ``counts`` (what was kept and dropped, and why).

    Unpacks as ``boxes, frames = read_coco_results(...)``; :meth:`summary` words ``counts``.
    """

    boxes: pd.DataFrame
    frames: pd.DataFrame
    counts: dict = field(default_factory=dict)

    def __iter__(self):
        yield self.boxes
        yield self.frames

    def summary(self) -> str:
        c = self.counts
        other = f" ({c['entries_of_other_videos']} more of other videos left out)" \
            if c.get("entries_of_other_videos") else ""
        return (f"{c['entries']} detections on {c['frames']} frames{other}: {c['persons']} persons kept "
                f"({c['persons_below_score']} below the score threshold, {c['persons_over_limit']} over the limit "
                f"of {c['max_humans']} per frame), {c['parts']} part boxes kept ({c['parts_below_score']} below the "
                f"score threshold, {c['parts_without_person']} near no kept person, {c['parts_over_limit']} over the "
                f"limit of {c['max_proposals']} per part)")


def _inclusive_overlap(p: np.ndarray, h: np.ndarray):
    """Intersection area, part area, person area and the relative gap of inclusive-pixel boxes (n, 4)."""
    iw = np.minimum(p[:, 2], h[:, 2]) - np.maximum(p[:, 0], h[:, 0]) + 1
    ih = np.minimum(p[:, 3], h[:, 3]) - np.maximum(p[:, 1], h[:, 1]) + 1
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    pw, ph = p[:, 2] - p[:, 0] + 1, p[:, 3] - p[:, 1] + 1
    hw, hh = h[:, 2] - h[:, 0] + 1, h[:, 3] - h[:, 1] + 1
    gx = np.maximum.reduce([p[:, 0] - h[:, 2] - 1, h[:, 0] - p[:, 2] - 1, np.zeros(len(p))]) / hw
    gy = np.maximum.reduce([p[:, 1] - h[:, 3] - 1, h[:, 1] - p[:, 3] - 1, np.zeros(len(p))]) / hh
    return inter, pw * ph, hw * hh, np.maximum(gx, gy)


def read_coco_results(results, images, *, videos: Iterable[str] | None = None, max_humans: int = MAX_HUMANS,
                      max_proposals: int = 1, min_person_score: float = 0.0, min_part_score: float = 0.0,
                      reach: float = 0.25) -> CocoDetections:
    """A detector's COCO results -> the box table of :mod:`tpslab.pipeline`, in the release's pixels.

    ``results``: a results file (``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``)
    or the loaded list. ``images``: the COCO file :func:`export_coco` wrote for those frames (or its
    dict, or a pycocotools ``COCO`` of it): it maps image ids to videos and frames, category ids to
    names, and gives each frame's scale back to the release's pixels (see the module docstring).
    ``videos`` keeps only those videos' frames (the entries of others are counted, not read; a video
    the images file lacks is an error).

    The rule, per frame:

    1. Persons (category ``person``) scoring at least ``min_person_score``: the ``max_humans`` best by
       score are kept (default and most: the scorer's limit of 10; equal scores keep file order), and
       numbered 0, 1, ... in that order (the ``human`` column).
    2. Each part box scoring at least ``min_part_score`` goes to one kept person of its frame: the one
       holding the largest share of the part box's area (inclusive pixels, as the scorer measures);
       among equal shares (a part inside two overlapping persons), the one with the higher IoU with the
       part (the tighter person), then the higher person score, then the lower ``human`` number. A part
       box overlapping no kept person goes to the nearest one by the gap between the boxes, measured in
       that person's width (horizontally) and height (vertically), if the gap is at most ``reach``
       (default 0.25; a hand stretched beyond its person's box); otherwise it is dropped and counted.
    3. Per person and part name, the ``max_proposals`` best part boxes by score are kept (file order
       among equal scores), written as proposals in score order. The scorer allows up to 5 but gives a
       part 1/N of its credit when it has N proposals, so the default is 1; more only pays when the top
       box often misses and a lower one hits.

    Returns a :class:`CocoDetections`: ``boxes`` has the columns ``video, frame, human, human_x1 ..
    human_y2, part, part_x1 .. part_y2`` (one row per kept part box; a kept person without parts gets
    one row with ``part`` None) plus ``human_score``, ``part_score`` and ``proposal`` (0 for the best
    box of a part); ``frames`` lists every exported frame of the chosen videos (``video, frame``),
    detections or not, because a scored frame missing from a prediction scores 0.

    Raises :class:`InteropError` with one line naming the file, the entry's index and its image id for
    a non-list file, an entry that is not an object or lacks a key, an unknown image or category id, a
    bbox that is not 4 finite numbers with positive width and height, and a score that is not a finite
    number (NaN, inf, a string, a bool); ``ValueError`` for limits outside the scorer's.
    """
    from tpslab.pipeline import BOX_COLUMNS

    for name, value, most in (("max_humans", max_humans, MAX_HUMANS), ("max_proposals", max_proposals,
                                                                       MAX_PROPOSALS)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= most:
            raise ValueError(f"{name} must be an integer from 1 to {most} (the scorer's limit), got {value!r}")
    if not reach >= 0:
        raise ValueError(f"reach must be >= 0, got {reach!r}")
    imgs = _read_images(images)
    img, cat, bbox, score = _read_entries(results, imgs)
    n_other = 0
    order_all = np.arange(len(imgs.video))
    if videos is not None:
        wanted = set(map(str, videos))
        absent = sorted(wanted - set(imgs.video))
        if absent:
            more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
            raise InteropError(f"{imgs.where}: has no frames of {len(absent)} of the videos asked for: "
                               f"{', '.join(absent[:5])}{more}")
        keep_img = np.array([v in wanted for v in imgs.video], bool)
        sel = keep_img[img]
        n_other = int((~sel).sum())
        img, cat, bbox, score = img[sel], cat[sel], bbox[sel], score[sel]
        order_all = order_all[keep_img]
    corners = coco_to_corners(bbox, (imgs.sx[img], imgs.sy[img]))
    entry = np.arange(len(img))
    person_cat = next(k for k, v in imgs.categories.items() if v == PERSON)
    is_person = cat == person_cat
    counts = {"entries": len(img), "entries_of_other_videos": n_other, "frames": len(order_all),
              "max_humans": int(max_humans), "max_proposals": int(max_proposals)}

    # 1. persons: best first within each frame
    pers = pd.DataFrame({"img": img[is_person], "score": score[is_person], "entry": entry[is_person]})
    counts["persons_below_score"] = int((pers["score"] < min_person_score).sum())
    pers = pers[pers["score"] >= min_person_score]
    pers = pers.sort_values(["img", "score", "entry"], ascending=[True, False, True], kind="stable")
    pers["human"] = pers.groupby("img", sort=False).cumcount()
    counts["persons_over_limit"] = int((pers["human"] >= max_humans).sum())
    pers = pers[pers["human"] < max_humans]
    counts["persons"] = len(pers)

    # 2. parts: to the person holding most of the box
    parts = pd.DataFrame({"img": img[~is_person], "cat": cat[~is_person], "score": score[~is_person],
                          "entry": entry[~is_person]})
    counts["parts_below_score"] = int((parts["score"] < min_part_score).sum())
    parts = parts[parts["score"] >= min_part_score]
    pairs = parts.merge(pers.rename(columns={"score": "h_score", "entry": "h_entry"}), on="img")
    inter, p_area, h_area, gap = _inclusive_overlap(corners[pairs["entry"].to_numpy()],
                                                    corners[pairs["h_entry"].to_numpy()])
    pairs["share"] = inter / p_area
    pairs["gap"] = gap
    pairs["iou"] = inter / (p_area + h_area - inter)
    pairs = pairs[pairs["gap"] <= reach]
    pairs = pairs.sort_values(["entry", "share", "gap", "iou", "h_score", "human"],
                              ascending=[True, False, True, False, False, True], kind="stable")
    owned = pairs.drop_duplicates("entry")[["img", "cat", "score", "entry", "human", "h_entry"]]
    counts["parts_without_person"] = len(parts) - len(owned)

    # 3. proposals: best first per person and part name
    owned = owned.sort_values(["img", "human", "cat", "score", "entry"],
                              ascending=[True, True, True, False, True], kind="stable")
    owned["proposal"] = owned.groupby(["img", "human", "cat"], sort=False).cumcount()
    counts["parts_over_limit"] = int((owned["proposal"] >= max_proposals).sum())
    owned = owned[owned["proposal"] < max_proposals]
    counts["parts"] = len(owned)

    # the table: parts with their person, then persons without parts
    partless = pers[~pers.set_index(["img", "human"]).index.isin(owned.set_index(["img", "human"]).index)]
    rows = pd.concat([owned.assign(h_score=score[owned["h_entry"].to_numpy()]),
                      partless.rename(columns={"score": "h_score", "entry": "h_entry"}).assign(
                          cat=-1, score=np.nan, entry=-1, proposal=0)], ignore_index=True)
    rows = rows.sort_values(["img", "human", "cat", "proposal"], kind="stable").reset_index(drop=True)
    r_img = rows["img"].to_numpy(np.int64)
    hb = corners[rows["h_entry"].to_numpy(np.int64)]
    pe = rows["entry"].to_numpy(np.int64)
    pb = np.where((pe >= 0)[:, None], corners[np.maximum(pe, 0)], np.nan)
    names = np.array([imgs.categories.get(int(c)) for c in rows["cat"]], dtype=object)
    boxes = pd.DataFrame({"video": imgs.video[r_img].astype(str), "frame": imgs.frame[r_img],
                          "human": rows["human"].to_numpy(np.int64),
                          "human_x1": hb[:, 0], "human_y1": hb[:, 1], "human_x2": hb[:, 2], "human_y2": hb[:, 3],
                          "part": names, "part_x1": pb[:, 0], "part_y1": pb[:, 1], "part_x2": pb[:, 2],
                          "part_y2": pb[:, 3], "human_score": rows["h_score"].to_numpy(np.float64),
                          "part_score": rows["score"].to_numpy(np.float64),
                          "proposal": rows["proposal"].to_numpy(np.int64)})
    assert list(boxes.columns[:len(BOX_COLUMNS)]) == BOX_COLUMNS
    frames = pd.DataFrame({"video": imgs.video[order_all].astype(str), "frame": imgs.frame[order_all]})
    frames = frames.drop_duplicates().reset_index(drop=True)
    return CocoDetections(boxes, frames, counts)


def write_detections(detections: CocoDetections, out, *, overwrite: bool = False) -> Path:
    """Write what :func:`read_coco_results` read as a detections file in the challenge's prediction format
    (a ``pred_part_result.json``: every frame of ``detections.frames``, persons with their parts' boxes
    as proposals in score order, verbs ``"none"``), the ``DETECTIONS`` that ``tpslab predict RUN --boxes
    DETECTIONS`` and :func:`tpslab.pipeline.boxes_from_predictions` read (they take each part's
    first proposal and ignore the verbs). ``out`` must not exist unless ``overwrite``
    (``FileExistsError``)."""
    import orjson

    from tpslab.fileio import atomic_write_bytes
    from tpslab.submission import build_predictions

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: exists; left untouched (pass overwrite=True to replace it)")
    boxes = detections.boxes.assign(state=np.where(detections.boxes["part"].notna(), "none", None))
    videos = {v: "" for v in pd.unique(pd.concat([boxes["video"], detections.frames["video"]]).astype(str))}
    _, pred_part = build_predictions(boxes, videos, frames=detections.frames)
    atomic_write_bytes(out, orjson.dumps(pred_part))
    return out


def simulate_detections(coco: Mapping, *, jitter: float = 0.1, drop: float = 0.1, seed: int = 0) -> list[dict]:
    """A stand-in for a detector: the ground-truth boxes of a COCO dict (:func:`coco_ground_truth`),
    each dropped with probability ``drop`` and otherwise moved, as a COCO results list.

    Each side of a kept box moves by a normal draw with standard deviation ``jitter`` times the box's
    width (left and right sides) or height (top and bottom); the box keeps at least one pixel of size and
    stays inside its image. Its ``score`` is ``1 - (mean side shift in box sizes)``, clipped to [0.01, 1]:
    better boxes score higher, as a detector's confidence tends to. Seeded: the same call gives the
    same list. Use it to see what imperfect boxes cost (:func:`read_coco_results`, then the pipeline).
    """
    if not 0 <= drop <= 1 or not jitter >= 0:
        raise ValueError(f"drop must be in [0, 1] and jitter >= 0, got drop={drop!r}, jitter={jitter!r}")
    anns = coco["annotations"]
    size = {img["id"]: (img["width"], img["height"]) for img in coco["images"]}
    rng = np.random.default_rng(seed)
    n = len(anns)
    keep = rng.random(n) >= drop
    shift = rng.normal(0.0, jitter, (n, 4)) if n else np.zeros((0, 4))
    bbox = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    w, h = bbox[:, 2], bbox[:, 3]
    limits = np.array([size[a["image_id"]] for a in anns], dtype=np.float64).reshape(-1, 2)
    x1 = np.clip(bbox[:, 0] + shift[:, 0] * w, 0, limits[:, 0] - 1)
    y1 = np.clip(bbox[:, 1] + shift[:, 1] * h, 0, limits[:, 1] - 1)
    x2 = np.clip(bbox[:, 0] + w + shift[:, 2] * w, x1 + 1, limits[:, 0])
    y2 = np.clip(bbox[:, 1] + h + shift[:, 3] * h, y1 + 1, limits[:, 1])
    score = np.clip(1.0 - np.abs(shift).mean(axis=1), 0.01, 1.0)
    return [{"image_id": a["image_id"], "category_id": a["category_id"],
             "bbox": [float(x1[i]), float(y1[i]), float(x2[i] - x1[i]), float(y2[i] - y1[i])],
             "score": float(score[i])}
            for i, a in enumerate(anns) if keep[i]]


# ----------------------------------------------------------------------------- video-model lists


def list_file_names(frames: bool = True) -> list[str]:
    """The files :func:`export_lists` writes (with ``frames``: the rawframe lists too)."""
    names = ["classes.txt"]
    for split in ("train", "val", "test"):
        names.append(f"{split}_list_videos.txt")
        if frames:
            names.append(f"{split}_list_rawframes.txt")
        names.append(f"{split}.csv")
    return names


def check_lists_out(out, frames: bool = True) -> Path:
    """Refuse (``FileExistsError``, one line) an ``out`` folder holding a file :func:`export_lists` would
    write that it did not write, or changed since (its digest differs from the folder's record)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: is a file, not a folder")
    check_written(out, list_file_names(frames), LISTS_RECORD, TOOL_LISTS)
    return out


def _count_frames(task) -> tuple[int | None, str | None]:
    """(frames in a folder numbered from img_00001 without gaps, as MMAction2 reads it, or None; an error)."""
    from tpslab.video import RawFramesReader, VideoError

    folder = Path(task)
    if not folder.is_dir():
        return None, None
    try:
        with RawFramesReader(folder) as reader:
            n = len(reader)
    except VideoError as err:
        return None, str(err)
    except OSError as err:
        return None, f"{folder}: cannot read it ({err.strerror or err})"
    return n, _extraction_problem(folder, n)


def _extraction_problem(folder: Path, n: int) -> str | None:
    """What is wrong with a folder of ``n`` frames that tpslab extract-frames made, by its record (None for a
    folder another tool made: nothing to check it against)."""
    from tpslab.frames import finished_extraction_record

    try:
        record = finished_extraction_record(folder)
    except ValueError as err:
        return str(err)
    if record is None:
        return None
    if n != len(record["frames"]):
        return (f"{folder}: {n} frames numbered from img_00001 without a gap, where tpslab extract-frames wrote "
                f"{len(record['frames'])}; rerun `tpslab extract-frames` to restore them")
    return None


def export_lists(dataset, out, *, frames=None, val_fraction: float = 0.25, seed: int = 0,
                 hide_test_labels: bool = False, missing: str = "error", workers: int = 1,
                 progress: bool = True) -> dict:
    """Write the annotation lists of MMAction2 and PySlowFast into folder ``out``.

    Splits: ``train`` and ``val`` are :meth:`~tpslab.dataset.TPSDataset.split_train_val` of the train
    videos (same ``val_fraction`` and ``seed``, so the same videos as everywhere in tpslab); ``test``
    is the release's test videos. Labels are action ids of ``dataset.vocab.actions``. Files:

    - ``classes.txt``: one action per line; line ``i`` (from 0) is action id ``i`` (MMAction2's label map).
    - ``<split>_list_videos.txt``: ``path label`` per line, ``path`` relative to the release root
      (MMAction2's ``VideoDataset`` with ``data_prefix=dict(video=ROOT)``).
    - ``<split>.csv``: the same lines under the names PySlowFast's Kinetics loader reads
      (``DATA.PATH_TO_DATA_DIR`` = ``out``, ``DATA.PATH_PREFIX`` = ROOT, separator one space).
    - with ``frames`` (the folder of ``tpslab extract-frames``): ``<split>_list_rawframes.txt``,
      ``frame_dir total_frames label`` per line, ``frame_dir`` relative to ``frames``
      (``<split>/<class>/<video>``; MMAction2's ``RawframeDataset`` with ``data_prefix=dict(img=FRAMES)``,
      its defaults ``filename_tmpl='img_{:05}.jpg'`` and ``start_index=1``). ``total_frames`` is the
      number of frames in the folder, checked to run from img_00001 without gaps.

    Test labels: the release files each test video under its class folder, so its action is known and
    written; what was never released for the test videos is the part annotations. A test video without
    a class, or every test video with ``hide_test_labels=True`` (a blind protocol), gets
    :data:`UNKNOWN_LABEL` (-1): both toolchains need an integer in that column (MMAction2 0.x asserts a
    label is present; 1.x and PySlowFast parse it with ``int``), and -1 is the label MMAction2 1.x
    itself gives label-less test lines. Accuracy computed on -1 labels is meaningless.

    Both formats split lines on whitespace, so a path containing whitespace is refused
    (:class:`InteropError`); parentheses (``hurling_(sport)``) are fine. A video without a frame
    folder (or without a video file) raises :class:`InteropError` unless ``missing="skip"`` (then it
    is left out of that list and counted). ``out`` is created if needed; a file there that tpslab did
    not write (or that was changed since) is refused before anything is written (see
    :func:`check_lists_out`); a record ``.tpslab-lists.json`` lists what was written. Returns
    ``{"files": {name: number of lines}, "skipped": {list name: [videos]}, "out": out}``.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
    out = check_lists_out(out, frames is not None)
    if frames is not None:
        need_folder(frames, NO_FRAMES)
    train, val = dataset.split_train_val(val_fraction=val_fraction, seed=seed)
    v = dataset.videos.assign(video=dataset.videos["video"].astype(str)).set_index("video")
    splits = {"train": train, "val": val, "test": sorted(v.index[v["split"] == "test"])}
    actions = dataset.vocab.actions

    def label_of(video: str, split: str) -> int:
        label = v.at[video, "label"]
        if (split == "test" and hide_test_labels) or label is None or pd.isna(label):
            return UNKNOWN_LABEL
        return actions.id(str(label))

    files, skipped = {"classes.txt": [_no_whitespace(a, a) for a in actions.names]}, {}
    _video_lists(v, Path(dataset.root), splits, label_of, missing, files, skipped)
    if frames is not None:
        _rawframe_lists(v, Path(frames), splits, label_of, missing, files, skipped, workers, progress)
    out.mkdir(parents=True, exist_ok=True)
    _write_lists(out, files)
    return {"files": {k: len(x) for k, x in files.items()}, "skipped": skipped, "out": out}


def _no_whitespace(path: str, video: str) -> str:
    if any(ch.isspace() for ch in path):
        raise InteropError(f"{path}: the path of {video} contains whitespace, which MMAction2 and PySlowFast "
                           "read as a column separator")
    return path


def _video_lists(v: pd.DataFrame, root: Path, splits: dict, label_of, missing: str, files: dict,
                 skipped: dict) -> None:
    """``<split>_list_videos.txt`` and ``<split>.csv`` (the same lines) into ``files``."""
    for split, names in splits.items():
        lines = []
        for video in names:
            path = v.at[video, "path"]
            if not isinstance(path, str) or not path or not Path(path).is_file():
                if missing == "error":
                    raise InteropError(f"{video}: no video file in {root} for the {split} list")
                skipped.setdefault(f"{split}_list_videos.txt", []).append(video)
                continue
            rel = Path(os.path.relpath(path, root)).as_posix()
            lines.append(f"{_no_whitespace(rel, video)} {label_of(video, split)}")
        files[f"{split}_list_videos.txt"] = lines
        files[f"{split}.csv"] = lines


def _rawframe_lists(v: pd.DataFrame, frames: Path, splits: dict, label_of, missing: str, files: dict,
                    skipped: dict, workers: int, progress: bool) -> None:
    """``<split>_list_rawframes.txt`` into ``files``, the frames of each folder counted (in ``workers``)."""
    from tpslab.memory import worker_map

    every = [(split, video) for split, names in splits.items() for video in names]
    rels = [str(_frame_folder(v.loc[video].to_dict() | {"video": video})) for _, video in every]
    counts = worker_map(_count_frames, [str(frames / r) for r in rels], workers,
                        desc="counting frames", unit="video", progress=progress)
    errors = [e for _, e in counts if e]
    if errors:
        raise InteropError(errors[0] + (f" (and {len(errors) - 1} more folders)" if len(errors) > 1 else ""))
    for split in splits:
        files[f"{split}_list_rawframes.txt"] = []
    for (split, video), rel, (n, _) in zip(every, rels, counts):
        name = f"{split}_list_rawframes.txt"
        if n is None:
            if missing == "error":
                raise InteropError(f"{frames / rel}: no frames for {video} (extract them with tpslab "
                                   "extract-frames, or skip such videos)")
            skipped.setdefault(name, []).append(video)
            continue
        files[name].append(f"{_no_whitespace(rel, video)} {n} {label_of(video, split)}")


def _write_lists(out: Path, files: dict) -> None:
    """Write the lists into ``out`` with their record; lists of an earlier run that this one does not
    write are removed when the record says tpslab wrote them, unchanged since."""
    data = {name: "".join(line + "\n" for line in lines).encode("utf-8") for name, lines in files.items()}
    write_with_record(out, data, LISTS_RECORD, TOOL_LISTS, managed=list_file_names(True))
