"""Part crops read on demand: the streaming dataset of the part-state recogniser and its samplers.

A crop is a square cut around a part box, ``context`` times the box's longer side wide (at least
``min_side`` pixels), resized to ``size`` x ``size`` pixels; pixels outside the frame are black.
:func:`crop_boxes` is THE crop function: the in-memory path (:func:`crop_parts`, which holds every crop
of a table in one array) and the streaming path (:class:`PartCrops`, which reads crops when a batch asks
for them) both call it, and each crop depends only on its own box and its frame (never on the other
boxes cut from the same frame), so both paths give the same bytes.

- :class:`CropSource` reads the crops of any rows of a box table: rows are grouped by video, each video
  is opened once per call (``open_video``: a video file, or a folder of rawframes made by
  ``tpslab extract-frames``) and each frame is decoded once for all its parts. A frame that cannot be
  read exactly is a :class:`~tpslab.video.VideoError` naming the file, never a black substitute.
- :class:`PartCrops` is a torch ``Dataset`` of crops with their part ids, state ids and box geometry
  (:func:`box_geometry`), fetched a batch at a time (``__getitems__``), optionally augmented
  (:class:`CropAugment`: left-right flip with the part swapped, a small shift); it holds the box table
  as numpy arrays, never the pixels, so its memory does not grow with the crops.
  :meth:`PartCrops.from_array` wraps crops already in memory behind the same interface.
- :class:`CropSampler` orders one epoch: shuffled, grouped by frame (the crops of one frame are
  contiguous, so a batch decodes each of its frames once), optionally capped per state or balanced
  over states (the dominant ``none``), drawn fresh each epoch from ``(seed, epoch)``: a sampler over
  indices, never a copy of the data.
- :class:`ShardedBatches` cuts that order into global batches and hands each process of a
  ``torch.distributed`` run its contiguous share of every global batch, so ``W`` processes with a
  global batch ``B`` see exactly the batches one process with batch ``B`` sees.
  :class:`VideoBatches` (prediction) gives each process whole videos, one video per batch.

Randomness is a pure function of ``(seed, epoch, row)``: the same row gets the same flip and shift in
any process and any DataLoader worker, which is what makes runs resumable and process counts interchangeable.

Training from video files decodes a random frame per group of crops; on the full release, extract
the frames first (``tpslab extract-frames``) and read crops from them (:func:`rawframe_paths`).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from tpslab.layout import rawframes_folder
from tpslab.video import VideoError, open_video
from tpslab.vocab import Vocab, mirror_permutation

PART_BOX = ["part_x1", "part_y1", "part_x2", "part_y2"]
HUMAN_BOX = ["human_x1", "human_y1", "human_x2", "human_y2"]
#: The columns of :func:`box_geometry`.
GEOMETRY = ("width/human_height", "height/human_height", "log_aspect", "centre_x/human_width",
            "centre_y/human_height")
#: A crop region may be at most this many times the frame's longer side (a larger box is an error).
MAX_REGION = 4.0
_READ_CHUNK = 32  # frames decoded at once per video (bounds the memory of one read)


def need_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a ValueError naming the ``columns`` missing from ``table``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing} (a table shaped like the dataset's parts table)")


# ----------------------------------------------------------------------------- the crop function


def crop_regions(boxes: np.ndarray, context: float, min_side: float) -> np.ndarray:
    """The square region of each box ``(x1, y1, x2, y2)`` (inclusive pixels): ``(left, top, side)`` in
    pixel-edge coordinates (pixel ``i`` covers ``[i, i + 1)``), float64 (n, 3)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    side = np.maximum(np.maximum(boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1) * context, min_side)
    return np.stack([cx - side / 2 + 0.5, cy - side / 2 + 0.5, side], 1)


def crop_boxes(frame: np.ndarray, boxes, *, size: int = 32, context: float = 1.5, min_side: float = 8.0,
               where: str = "frame") -> np.ndarray:
    """Square crops of one RGB ``frame`` (H, W, 3) around ``boxes`` (n, 4): uint8 (n, size, size, 3).

    Each crop is centred on its box (inclusive pixel corners), ``context`` times the box's longer side
    wide (at least ``min_side`` pixels), and resized by Pillow's bilinear filter, which widens when
    shrinking so small crops are not aliased. Pixels outside the frame are black. The result for a box
    depends only on that box and the frame. A region larger than :data:`MAX_REGION` times the frame's
    longer side raises a ValueError naming ``where``.
    """
    from PIL import Image

    regions = crop_regions(boxes, context, min_side)
    out = np.zeros((len(regions), size, size, 3), np.uint8)
    h, w = frame.shape[:2]
    too_big = regions[:, 2] > MAX_REGION * max(h, w) + min_side
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise ValueError(f"{where}: part box {np.asarray(boxes, np.float64).reshape(-1, 4)[i].tolist()} gives a "
                         f"crop of {regions[i, 2]:.0f} pixels, over {MAX_REGION:g} times the {w}x{h} frame")
    # The resize filter reaches one output pixel (side / size input pixels) beyond the region: every crop
    # is cut from an image holding the region and that reach, zero-padded where it leaves the frame. Most
    # boxes fit in the frame padded by a fixed margin (the same for every box of a frame); others get a
    # window of their own. Either way a crop depends only on its box and its frame.
    reach = np.ceil(np.maximum(regions[:, 2] / size, 1.0)) + 2
    pad = max(h, w) // 2 + 8
    left, top, side = regions[:, 0], regions[:, 1], regions[:, 2]
    fits = ((left - reach >= -pad) & (top - reach >= -pad) & (left + side + reach <= w + pad)
            & (top + side + reach <= h + pad))
    resample = Image.Resampling.BILINEAR
    if fits.any():
        padded = Image.fromarray(np.pad(frame, ((pad, pad), (pad, pad), (0, 0))))
        for i in np.flatnonzero(fits):
            box = (left[i] + pad, top[i] + pad, left[i] + pad + side[i], top[i] + pad + side[i])
            out[i] = np.asarray(padded.resize((size, size), resample, box=box))
    for i in np.flatnonzero(~fits):
        x0, y0 = math.floor(left[i] - reach[i]), math.floor(top[i] - reach[i])
        x1, y1 = math.ceil(left[i] + side[i] + reach[i]), math.ceil(top[i] + side[i] + reach[i])
        window = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        sx0, sx1, sy0, sy1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
        if sx0 < sx1 and sy0 < sy1:
            window[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
        box = (left[i] - x0, top[i] - y0, left[i] - x0 + side[i], top[i] - y0 + side[i])
        out[i] = np.asarray(Image.fromarray(window).resize((size, size), resample, box=box))
    return out


def box_geometry(boxes: pd.DataFrame) -> np.ndarray:
    """Per row, the part box relative to its human box (see :data:`GEOMETRY`): float32 (rows, 5)."""
    need_columns(boxes, PART_BOX + HUMAN_BOX, "box_geometry")
    p = boxes[PART_BOX].to_numpy(np.float64)
    hb = boxes[HUMAN_BOX].to_numpy(np.float64)
    pw, ph = p[:, 2] - p[:, 0] + 1, p[:, 3] - p[:, 1] + 1
    hw, hh = np.maximum(hb[:, 2] - hb[:, 0] + 1, 1), np.maximum(hb[:, 3] - hb[:, 1] + 1, 1)
    g = np.stack([pw / hh, ph / hh, np.log(np.maximum(pw, 1) / np.maximum(ph, 1)),
                  ((p[:, 0] + p[:, 2]) / 2 - (hb[:, 0] + hb[:, 2]) / 2) / hw,
                  ((p[:, 1] + p[:, 3]) / 2 - hb[:, 1]) / hh], 1)
    bad = ~np.isfinite(g).all(1)
    if bad.any():
        raise ValueError(f"{bad.sum()} row(s) lack a finite part or human box, e.g. row {np.flatnonzero(bad)[0]}")
    return g.astype(np.float32)


# ----------------------------------------------------------------------------- where the pixels are


def video_paths(dataset) -> dict[str, str]:
    """``{video: path of its video file}`` from a dataset's ``videos`` table."""
    t = dataset.videos
    return {str(v): str(p) for v, p in zip(t["video"], t["path"]) if isinstance(p, str)}


def rawframe_paths(dataset, frames_root, videos: Sequence[str] | None = None) -> dict[str, str]:
    """``{video: folder of its frames}`` in the layout ``tpslab extract-frames`` writes,
    ``FRAMES/<split>/<class>/<video>/img_00001.jpg ...`` (full-size frames: boxes are in the video's pixels).

    ``videos``: only those (default: every video of the dataset). Raises FileNotFoundError naming the
    missing folders, and ValueError for a folder whose extraction record says its frames were resized
    (``--short-side``) or left unfinished, or is damaged. A folder without a record (made by another
    tool) is used only when its first frame has the size of the video file; without the video file its
    size cannot be verified, and the folder is refused.
    """
    from tpslab.frames import finished_extraction_record

    root = Path(frames_root)
    if not root.is_dir():
        raise FileNotFoundError(f"frames folder {root} is not a folder (make it with `tpslab extract-frames`)")
    table = dataset.videos
    wanted = None if videos is None else set(map(str, videos))
    out, missing = {}, []
    rows = zip(table["video"].astype(str), table["split"].astype(str), table["label"].astype(str), table["path"])
    for video, split, label, video_path in rows:
        if wanted is not None and video not in wanted:
            continue
        folder = root / rawframes_folder(split, label, video)
        if not folder.is_dir():
            missing.append(str(folder))
            continue
        record = finished_extraction_record(folder)
        if record is None:
            _check_full_size(folder, video_path if isinstance(video_path, str) else None)
        else:
            settings = record.get("settings") if isinstance(record.get("settings"), dict) else {}
            if settings.get("short_side") is not None:
                raise ValueError(f"{folder}: frames were extracted with --short-side {settings['short_side']}; "
                                 "crops need full-size frames (boxes are in the video's pixels): extract without "
                                 "--short-side")
        out[video] = str(folder)
    if missing:
        raise FileNotFoundError(f"{len(missing)} video(s) have no frame folder under {root}, e.g. {missing[:3]} "
                                "(run `tpslab extract-frames` for them)")
    return out


def _check_full_size(folder: Path, video_path: str | None) -> None:
    """A frame folder another tool made: its frames must have the video's size (boxes are in its pixels)."""
    from tpslab.video import VideoError, frame_image_size, list_frame_files, probe

    if video_path is None:
        raise ValueError(f"{folder}: no extraction record and no video file, so the frames' size cannot be "
                         "checked against the boxes' pixels; extract them with `tpslab extract-frames`")
    names = list_frame_files(folder)
    if not names:
        raise ValueError(f"{folder}: no img_NNNNN.jpg frames in the folder")
    try:
        size = frame_image_size(folder / names[min(names)])
        info = probe(video_path)
    except (OSError, VideoError) as err:
        raise ValueError(f"{folder}: cannot check the frames' size against {video_path} ({err})") from None
    if size != (info.width, info.height):
        raise ValueError(f"{folder}: frames are {size[0]}x{size[1]} but the video is {info.width}x{info.height} "
                         "(resized by the tool that made them?); crops need full-size frames")


def _frame_numbers(boxes: pd.DataFrame, what: str) -> np.ndarray:
    frame = boxes["frame"].to_numpy()
    if frame.dtype.kind not in "iu":
        f = frame.astype(np.float64)
        if not (np.isfinite(f).all() and (f == np.round(f)).all()):
            raise ValueError(f"{what}: frame numbers must be whole numbers (1-based, as img_00001.json)")
        frame = f
    frame = frame.astype(np.int64)
    if len(frame) and frame.min() < 1:
        raise ValueError(f"{what}: frame numbers start at 1 (img_00001.json), got {int(frame.min())}")
    return frame


class CropSource:
    """Reads the crops of any rows of a box table (``video, frame, part_x1..part_y2``) from ``paths``.

    ``paths`` maps each video to its file or rawframes folder (:func:`video_paths`, :func:`rawframe_paths`);
    ``backend`` is ``open_video``'s; ``open_readers``: readers kept open per process (reopening a video
    costs more than reading a frame of a small one). Pickles as numpy arrays and paths (cheap to send
    to workers), without its open readers.
    """

    def __init__(self, boxes: pd.DataFrame, paths: Mapping[str, str], *, size: int = 32, context: float = 1.5,
                 min_side: float = 8.0, backend: str = "auto", open_readers: int = 16):
        need_columns(boxes, ["video", "frame", *PART_BOX], "part crops")
        codes, names = pd.factorize(boxes["video"].astype(str).to_numpy(), sort=False)
        self.names = np.asarray(names, dtype=object)
        missing = sorted(set(self.names) - set(paths))
        if missing:
            raise KeyError(f"no video file known for {len(missing)} video(s), e.g. {missing[:3]}")
        self.files = [str(paths[n]) for n in self.names]
        self.video = codes.astype(np.int32)
        self.box = boxes[PART_BOX].to_numpy(np.float64)
        bad = ~np.isfinite(self.box).all(1)
        if bad.any():
            raise ValueError(f"{bad.sum()} part box(es) are not 4 finite numbers, e.g. row {np.flatnonzero(bad)[0]} "
                             f"of video {self.names[self.video[bad][0]]}")
        self.frame = _frame_numbers(boxes, "part crops")
        self.size, self.context, self.min_side, self.backend = int(size), float(context), float(min_side), backend
        self.open_readers = int(open_readers)
        self._readers: OrderedDict | None = None
        self._owner = 0

    def __len__(self) -> int:
        return len(self.video)

    def read(self, rows) -> np.ndarray:
        """The crops of ``rows`` (positions in the table, any order, repeats allowed): uint8 (n, size, size, 3).

        Each video is opened once and each distinct frame decoded once for all its rows.
        """
        rows = np.asarray(rows, np.int64).reshape(-1)
        out = np.zeros((len(rows), self.size, self.size, 3), np.uint8)
        if not len(rows):
            return out
        by_video = pd.Series(np.arange(len(rows))).groupby(self.video[rows], sort=False).indices
        for v, pos in by_video.items():
            self._read_video(int(v), pos, rows, out)
        return out

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_readers"] = None  # open decoders stay in the process that opened them
        return state

    def _reader(self, v: int):
        """An open reader of video ``v``: up to ``open_readers`` stay open per process (least recently used
        ones are closed); readers opened by a parent process are never used by a forked worker."""
        if self._readers is None or self._owner != os.getpid():
            self._readers, self._owner = OrderedDict(), os.getpid()
        reader = self._readers.pop(v, None)
        if reader is None:
            reader = open_video(self.files[v], backend=self.backend)
        self._readers[v] = reader
        while len(self._readers) > self.open_readers:
            self._readers.popitem(last=False)[1].close()
        return reader

    def close(self) -> None:
        """Close the readers this process holds open."""
        if self._readers is not None and self._owner == os.getpid():
            for reader in self._readers.values():
                reader.close()
        self._readers = None

    def _read_video(self, v: int, pos: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
        path, name = self.files[v], self.names[v]
        numbers, which = np.unique(self.frame[rows[pos]], return_inverse=True)
        reader = self._reader(v)
        try:
            if numbers[-1] > len(reader):
                raise VideoError(path, f"video {name}: frame img_{int(numbers[-1]):05d} is past the end "
                                       f"(the file shows {len(reader)} frames)")
            for start in range(0, len(numbers), _READ_CHUNK):
                frames = reader.get(numbers[start:start + _READ_CHUNK] - 1)  # img_k.json is decoded frame k - 1
                for j, frame in enumerate(frames, start):
                    at = pos[which == j]
                    out[at] = crop_boxes(frame, self.box[rows[at]], size=self.size, context=self.context,
                                         min_side=self.min_side, where=f"video {name} frame {int(numbers[j])}")
        except BaseException:
            self._readers.pop(v, None)
            reader.close()
            raise


def crop_parts(boxes: pd.DataFrame, paths: Mapping[str, str], *, size: int = 32, context: float = 1.5,
               min_side: float = 8.0, backend: str = "auto", progress: bool = True) -> np.ndarray:
    """Square crops around every part box of ``boxes``, all in memory: uint8 array (rows, size, size, 3), RGB.

    ``boxes`` needs ``video, frame`` (1-based, as ``img_00001.json``) and ``part_x1..part_y2``;
    ``paths`` maps each video to its file or frame folder (see :func:`video_paths`). Crops are those of
    :func:`crop_boxes`; each video is decoded once, only at the frames needed. The memory grows with
    the table (3 KB per 32-pixel crop): for large tables use :class:`PartCrops`, which reads crops on demand.
    """
    from tqdm.auto import tqdm

    source = CropSource(boxes, paths, size=size, context=context, min_side=min_side, backend=backend)
    out = np.zeros((len(source), size, size, 3), np.uint8)
    groups = pd.Series(np.arange(len(source))).groupby(source.video, sort=False).indices
    try:
        for rows in tqdm(groups.values(), desc="cropping parts", unit="video", disable=not progress, leave=False):
            out[rows] = source.read(rows)
    finally:
        source.close()
    return out


# ----------------------------------------------------------------------------- randomness per row


_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = np.asarray(x, np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_uniforms(seed: int, epoch: int, rows, k: int) -> np.ndarray:
    """``k`` uniform numbers in [0, 1) per row, a pure function of ``(seed, epoch, row)``: (n, k) float64."""
    rows = np.asarray(rows, np.int64).reshape(-1).astype(np.uint64)
    base = _mix(_mix(np.asarray([int(seed) & 0xFFFFFFFFFFFFFFFF], np.uint64)) ^ np.uint64(int(epoch) & 0xFFFFFFFF))
    keys = _mix(base ^ rows)
    out = np.empty((len(rows), k), np.float64)
    for j in range(k):
        keys = _mix(keys ^ np.uint64(j + 1))
        out[:, j] = (keys >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return out


# ----------------------------------------------------------------------------- augmentation


class CropAugment:
    """Training augmentation of a batch of crops, drawn per row from ``(seed, epoch, row)``.

    ``flip``: with probability 1/2, mirror the crop left-right, swap the part for its mirror
    (``mirror[part]``: ``left_arm`` <-> ``right_arm``) and negate the geometry's horizontal offset;
    ``shift``: move the crop by up to ``shift`` pixels in x and y (edges repeated).

    Reads ``images`` uint8 (n, S, S, 3), ``parts`` (n,), ``geometry`` (n, G) or None; returns new arrays.
    """

    def __init__(self, mirror: Sequence[int] | None, *, flip: bool = True, shift: int = 2):
        self.mirror = None if mirror is None else np.asarray(mirror, np.int64)
        self.flip, self.shift = bool(flip) and mirror is not None, int(shift)

    @classmethod
    def for_vocab(cls, vocab: Vocab, *, flip: bool = True, shift: int = 2) -> "CropAugment":
        return cls(mirror_ids(vocab), flip=flip, shift=shift)

    def __repr__(self) -> str:
        return f"CropAugment(flip={self.flip}, shift={self.shift})"

    def __call__(self, images, parts, geometry, *, seed: int, epoch: int, rows):
        s = images.shape[1]
        u = row_uniforms(seed, epoch, rows, 3)
        if self.shift:
            k = self.shift
            d = np.floor(u[:, :2] * (2 * k + 1)).astype(np.int64) - k  # dx, dy in -shift..shift
            # pixel (y, x) of a shifted crop is pixel (y + dy, x + dx) of the crop, clamped to its edges: a
            # window of the crop padded by its edge pixels (a slice per row, 5x faster than a gather)
            padded = np.pad(images, ((0, 0), (k, k), (k, k), (0, 0)), mode="edge")
            images = np.empty_like(images)
            for i, (dx, dy) in enumerate(d.tolist()):
                images[i] = padded[i, k + dy:k + dy + s, k + dx:k + dx + s]
        if self.flip:
            f = u[:, 2] < 0.5
            images = np.where(f[:, None, None, None], images[:, :, ::-1], images)
            parts = np.where(f, self.mirror[parts], parts)
            if geometry is not None:
                geometry = geometry.copy()
                geometry[f, 3] = -geometry[f, 3]
        return np.ascontiguousarray(images), parts, geometry


def mirror_ids(vocab: Vocab) -> np.ndarray:
    """For each part id, the id of the part on the other side of the body (itself when it has none)."""
    return np.asarray(mirror_permutation(vocab.parts.names), np.int64)


# ----------------------------------------------------------------------------- the dataset


class PartCrops(torch.utils.data.Dataset):
    """Part crops read on demand, with their part ids, state ids and box geometry: a torch ``Dataset``.

    ``boxes``: a table shaped like the dataset's parts table (``video, frame, part_x1..part_y2, part``;
    ``human_x1..human_y2`` for the geometry; ``state`` to train, NA allowed: id -1); ``paths``: each
    video's file or rawframes folder; ``size``/``context``/``min_side``: the crops (:func:`crop_boxes`);
    ``backend``: ``open_video``'s; ``geometry``: compute :func:`box_geometry`.

    A sample is a dict: ``images`` uint8 (S, S, 3), ``parts``, ``states`` (int64), ``geometry`` float32
    (5,) (absent without geometry), ``index`` (the row). ``dataset[i]`` reads one; the DataLoader fetches
    a batch at once (``__getitems__``), decoding each frame once for all the rows of the batch, and
    torch's default collation stacks the samples. With :meth:`augmented`, samples are augmented per
    row and epoch (:class:`CropAugment`); :meth:`set_epoch` selects the epoch.
    """

    def __init__(self, boxes: pd.DataFrame, paths: Mapping[str, str] | None, vocab: Vocab, *, size: int = 32,
                 context: float = 1.5, min_side: float = 8.0, backend: str = "auto", geometry: bool = True,
                 _array: np.ndarray | None = None):
        need_columns(boxes, ["part"], "part crops")
        if _array is None:
            self.source: CropSource | None = CropSource(boxes, paths or {}, size=size, context=context,
                                                        min_side=min_side, backend=backend)
            video, frame = self.source.video, self.source.frame
        else:
            self.source = None
            if "video" in boxes.columns:
                video = pd.factorize(boxes["video"].astype(str).to_numpy(), sort=False)[0].astype(np.int32)
            else:
                video = np.zeros(len(boxes), np.int32)
            frame = _frame_numbers(boxes, "part crops") if "frame" in boxes.columns else np.arange(len(boxes)) + 1
        self._array = _array
        self.vocab = vocab
        self.size, self.context, self.min_side = int(size), float(context), float(min_side)
        self.parts = vocab.parts.codes(boxes["part"]).astype(np.int64)
        if (self.parts < 0).any():
            raise ValueError(f"{(self.parts < 0).sum()} box row(s) have no part name")
        self.states = (vocab.states.codes(boxes["state"]).astype(np.int64) if "state" in boxes.columns
                       else np.full(len(boxes), -1, np.int64))
        self.geometry = box_geometry(boxes) if geometry else None
        self.video = video
        self.frame = np.asarray(frame, np.int64)
        #: an id per (video, frame): crops of one frame share it (the sampler keeps them together)
        self.frame_id = pd.factorize(video.astype(np.int64) * (1 << 32) + frame, sort=False)[0].astype(np.int64)
        self.augment: CropAugment | None = None
        self.seed, self.epoch = 0, 0

    @classmethod
    def from_array(cls, crops: np.ndarray, boxes: pd.DataFrame, vocab: Vocab, *, geometry: bool = True) -> "PartCrops":
        """The same dataset over crops already in memory (``crops[i]`` belongs to row ``i`` of ``boxes``)."""
        if crops.ndim != 4 or crops.shape[1] != crops.shape[2] or crops.shape[3] != 3 or crops.dtype != np.uint8:
            raise ValueError(f"crops must be uint8 (rows, size, size, 3) as crop_parts makes them; "
                             f"got {crops.dtype} {crops.shape}")
        if len(crops) != len(boxes):
            raise ValueError(f"{len(crops)} crops for {len(boxes)} box rows")
        return cls(boxes, None, vocab, size=crops.shape[1], geometry=geometry, _array=crops)

    def __repr__(self) -> str:
        where = "in memory" if self.source is None else f"from {len(self.source.names)} videos"
        return (f"PartCrops({len(self)} crops {where}, size={self.size}, context={self.context}, "
                f"augment={self.augment})")

    def __len__(self) -> int:
        return len(self.parts)

    @property
    def reads_video_files(self) -> bool:
        """Whether crops come from video files (random frames cost a seek; rawframes and arrays do not)."""
        return self.source is not None and bool(self.source.files) and not Path(self.source.files[0]).is_dir()

    @property
    def labelled(self) -> np.ndarray:
        """Rows with a state."""
        return np.flatnonzero(self.states >= 0)

    def images(self, rows) -> np.ndarray:
        """The crops of ``rows`` as uint8 (n, S, S, 3), not augmented."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if self._array is not None:
            return np.ascontiguousarray(self._array[rows])
        return self.source.read(rows)

    def augmented(self, augment: CropAugment | None, seed: int = 0) -> "PartCrops":
        """A view of this dataset (sharing its arrays) whose samples are augmented with ``augment``."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.augment, view.seed = augment, int(seed)
        return view

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose augmentation samples get (call before creating each epoch's DataLoader iterator)."""
        self.epoch = int(epoch)

    def batch(self, rows) -> dict:
        """The samples of ``rows`` stacked: ``images`` (n, S, S, 3) uint8 tensor, ``parts``, ``states``,
        ``index`` (n,) int64, ``geometry`` (n, 5) float32 (without geometry: absent)."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        images = self.images(rows)
        parts = self.parts[rows]
        geo = None if self.geometry is None else self.geometry[rows]
        if self.augment is not None:
            images, parts, geo = self.augment(images, parts, geo, seed=self.seed, epoch=self.epoch, rows=rows)
        out = {"images": torch.from_numpy(images), "parts": torch.from_numpy(np.ascontiguousarray(parts)),
               "states": torch.from_numpy(self.states[rows]), "index": torch.from_numpy(rows)}
        if geo is not None:
            out["geometry"] = torch.from_numpy(np.ascontiguousarray(geo))
        return out

    def __getitems__(self, rows) -> list[dict]:
        b = self.batch(rows)
        return [{k: v[i] for k, v in b.items()} for i in range(len(b["index"]))]

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([int(i)])[0]

    def close(self) -> None:
        """Close the video readers this process holds open (they reopen when needed)."""
        if self.source is not None:
            self.source.close()

    def colour_rows(self, max_crops: int = 20000, seed: int = 0) -> np.ndarray:
        """Rows to estimate colour statistics from: whole videos in a seeded order, up to ``max_crops`` rows
        (so a streaming dataset decodes few videos); sorted."""
        groups = pd.Series(np.arange(len(self))).groupby(self.video, sort=True).indices
        keys = list(groups)
        order = np.random.default_rng([int(seed), 0xC0105]).permutation(len(keys))
        picked, total = [], 0
        for j in order:
            picked.append(groups[keys[j]])
            total += len(picked[-1])
            if total >= max_crops:
                break
        rows = np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
        return rows[:max_crops]

    def colour_stats(self, max_crops: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each colour channel (in [0, 1]) over :meth:`colour_rows`."""
        rows = self.colour_rows(max_crops, seed)
        counts = np.zeros((3, 256), np.int64)  # how often each 8-bit value occurs in each channel: exact, and
        for start in range(0, len(rows), 2048):  # no float copy of the pixels (20,000 112-px crops: 6 GB)
            x = self.images(rows[start:start + 2048])
            for c in range(3):
                counts[c] += np.bincount(x[..., c].reshape(-1), minlength=256)
        n = int(counts[0].sum())
        if not n:
            return np.zeros(3, np.float32), np.ones(3, np.float32)
        values = np.arange(256) / 255
        mean = counts @ values / n
        std = np.sqrt(np.maximum(counts @ (values * values) / n - mean * mean, 0))
        return mean.astype(np.float32), std.astype(np.float32)


# ----------------------------------------------------------------------------- samplers


class CropSampler(torch.utils.data.Sampler):
    """The rows of one epoch of a :class:`PartCrops`, drawn from ``(seed, epoch)``; see the module docstring.

    ``labelled``: only rows with a state (training); ``shuffle``: random order (else table order);
    ``num_samples``: rows per epoch (a fresh random subset each epoch, of whole frames with
    ``group_frames``: the rows of randomly chosen frames, so each decoded frame gives all its crops, and
    of whole videos with ``video_block``, so each opened video gives all its crops; default all);
    ``cap_per_state``:
    at most that many rows of each state per epoch (a fresh random choice each epoch, rarer states whole);
    ``balance="state"``: rows drawn with replacement so that every state is equally likely (``num_samples``
    of them, default as many as there are candidate rows); ``group_frames``: the rows of one frame are
    contiguous (frames in random order), so a batch decodes each frame once; ``video_block``: ``k`` for
    locality in video files: videos in a random order, taken ``k`` at a time, and within each block of
    ``k`` videos the frames of each video in increasing order, randomly interleaved with the others', so
    that batches mix ``k`` videos while each video is decoded forward (a reader never seeks back).
    Call :meth:`set_epoch`.
    """

    def __init__(self, crops: PartCrops, *, labelled: bool = True, shuffle: bool = True,
                 num_samples: int | None = None, cap_per_state: int | None = None, balance: str | None = None,
                 group_frames: bool = True, video_block: int | None = None, seed: int = 0):
        if balance not in (None, "state"):
            raise ValueError(f"balance must be None or 'state', got {balance!r}")
        if balance is not None and cap_per_state is not None:
            raise ValueError("choose one of balance='state' and cap_per_state")
        if cap_per_state is not None and cap_per_state < 1:
            raise ValueError(f"cap_per_state must be >= 1, got {cap_per_state}")
        if num_samples is not None and num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if video_block is not None and video_block < 1:
            raise ValueError(f"video_block must be >= 1, got {video_block}")
        self.states, self.frame_id, self.video, self.frame = crops.states, crops.frame_id, crops.video, crops.frame
        self.video_block = video_block
        need_states = labelled or balance is not None or cap_per_state is not None
        self.candidates = np.flatnonzero(crops.states >= 0) if need_states else np.arange(len(crops.states))
        if not len(self.candidates):
            raise ValueError("no row has a state to learn from" if need_states else "the dataset is empty")
        self.shuffle, self.num_samples, self.cap, self.balance = shuffle, num_samples, cap_per_state, balance
        self.group_frames, self.seed, self.epoch = group_frames, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _count(self) -> int:
        n = len(self.candidates)
        if self.cap is not None:
            n = int(np.minimum(np.bincount(self.states[self.candidates]), self.cap).sum())
        if self.balance is not None:
            return int(self.num_samples or n)
        return min(n, self.num_samples or n)

    def __len__(self) -> int:
        return self._count()

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """The rows of ``epoch`` (default: the current one) in order: int64 array."""
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng([self.seed, epoch, 0x5A3])
        rows = self.candidates
        if self.cap is not None:  # a random `cap` rows of each state
            st = self.states[rows]
            order = np.lexsort((rng.random(len(rows)), st))
            ranked = st[order]
            starts = np.searchsorted(ranked, ranked, side="left")
            rows = np.sort(rows[order[np.arange(len(order)) - starts < self.cap]])
        n = self._count()
        if self.balance == "state":
            counts = np.bincount(self.states[rows])
            p = 1.0 / counts[self.states[rows]]
            rows = np.sort(rng.choice(rows, size=n, replace=True, p=p / p.sum()))
        elif n < len(rows):
            if not self.shuffle:
                rows = rows[:n]
            elif self.group_frames:  # whole frames (whole videos with video_block) in a random order
                unit = self.video if self.video_block else self.frame_id
                pick = np.lexsort((rng.random(len(rows)), rng.permutation(int(unit.max()) + 1)[unit[rows]]))
                rows = np.sort(rows[pick[:n]])
            else:
                rows = np.sort(rng.choice(rows, size=n, replace=False))
        if not self.shuffle:
            return rows
        if not self.group_frames:
            return rows[rng.permutation(len(rows))]
        if self.video_block:
            return rows[self._block_order(rows, rng)]
        frame_rank = rng.permutation(int(self.frame_id.max()) + 1)
        return rows[np.lexsort((rng.random(len(rows)), frame_rank[self.frame_id[rows]]))]

    def _block_order(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Positions of ``rows`` in block order (see ``video_block``)."""
        video, frame, fid = self.video[rows], self.frame[rows], self.frame_id[rows]
        block = rng.permutation(int(self.video.max()) + 1)[video] // self.video_block
        # One random key per frame, sorted within each video so that its frames keep their order.
        frames, first = np.unique(fid, return_index=True)
        f_video, f_number = video[first], frame[first]
        in_order = np.lexsort((f_number, f_video))  # frames by (video, number)
        keys = rng.random(len(frames))
        by_video = np.lexsort((keys, f_video))  # keys sorted within each video
        key = np.empty(len(frames))
        key[in_order] = keys[by_video]
        frame_key = key[np.searchsorted(frames, fid)]
        return np.lexsort((rng.random(len(rows)), frame_key, block))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())


def shard_bounds(n: int, world: int) -> list[tuple[int, int]]:
    """``world`` contiguous shares of ``n`` items, as equal as possible (the first ones one longer)."""
    q, r = divmod(int(n), int(world))
    bounds, lo = [], 0
    for k in range(world):
        hi = lo + q + (1 if k < r else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


class ShardedBatches(torch.utils.data.Sampler):
    """Global batches of ``batch_size`` rows in ``sampler``'s order; yields this ``rank``'s contiguous share
    of each (its slice :func:`shard_bounds` ``(len(batch), world_size)[rank]``).

    A process's share may be empty (a last, short global batch with fewer rows than processes): it then
    takes part in the step with no rows. ``drop_last`` drops a last, shorter global batch. Call
    :meth:`set_epoch` (it sets the sampler's).
    """

    def __init__(self, sampler: CropSampler, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False):
        if batch_size < world_size:
            raise ValueError(f"the batch size ({batch_size}) must be at least the number of processes ({world_size})")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.sampler, self.batch_size, self.rank, self.world = sampler, int(batch_size), int(rank), int(world_size)
        self.drop_last = drop_last
        self._cache: tuple[int, list[np.ndarray]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def global_batches(self) -> list[np.ndarray]:
        """Every global batch of the current epoch (the rows all processes together see at each step)."""
        if self._cache is None or self._cache[0] != self.sampler.epoch:
            order = self.sampler.indices()
            stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
            self._cache = (self.sampler.epoch, [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)])
        return self._cache[1]

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for g in self.global_batches():
            lo, hi = shard_bounds(len(g), self.world)[self.rank]
            yield g[lo:hi].tolist()


class BatchView(torch.utils.data.Dataset):
    """``dataset`` fetched as whole batches: ``DataLoader(BatchView(ds), batch_sampler=..., collate_fn=first)``
    yields :meth:`PartCrops.batch` dicts directly (no per-sample split and restack; empty batches allowed)."""

    def __init__(self, dataset: PartCrops):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, rows) -> list[dict]:
        return [self.dataset.batch(rows)]

    def __getitem__(self, i: int) -> dict:
        return self.dataset.batch([int(i)])


def first(samples: list):
    """The collate function of :class:`BatchView`: its one batch."""
    return samples[0]


def batch_loader(dataset: PartCrops, batches, workers: int = 0):
    """A DataLoader of :meth:`PartCrops.batch` dicts for the row lists of ``batches`` (a batch sampler).

    With workers, the readers this process holds open are closed first: a decoder's threads do not
    survive a fork, and a worker must never inherit one mid-use.
    """
    from torch.utils.data import DataLoader

    if workers:
        dataset.close()
    return DataLoader(BatchView(dataset), batch_sampler=batches, num_workers=workers, collate_fn=first)


class VideoBatches(torch.utils.data.Sampler):
    """Prediction batches: the rows of one video per batch (in pieces of at most ``batch_size`` rows, cut
    between frames where possible), for this ``rank``'s videos (every ``world_size``-th video).

    A batch never depends on the number of processes, so neither do the numbers computed from it.
    """

    def __init__(self, crops: PartCrops, batch_size: int = 1024, *, rank: int = 0, world_size: int = 1):
        self.crops, self.batch_size, self.rank, self.world = crops, int(batch_size), int(rank), int(world_size)
        groups = pd.Series(np.arange(len(crops))).groupby(crops.video, sort=True).indices
        self.videos = [int(v) for v in groups][self.rank::self.world]
        self._groups = groups

    def rows(self) -> np.ndarray:
        """Every row this process predicts, in the order its batches come."""
        return np.concatenate([b for b in self._batches()]) if self.videos else np.zeros(0, np.int64)

    def _batches(self) -> Iterator[np.ndarray]:
        for v in self.videos:
            rows = self._groups[v]
            rows = rows[np.argsort(self.crops.frame_id[rows], kind="stable")]
            start = 0
            while start < len(rows):
                stop = min(start + self.batch_size, len(rows))
                if stop < len(rows):  # cut between frames when the piece holds more than one frame
                    fid = self.crops.frame_id[rows]
                    cut = stop
                    while cut > start and fid[cut - 1] == fid[cut]:
                        cut -= 1
                    stop = cut if cut > start else stop
                yield rows[start:stop]
                start = stop

    def __len__(self) -> int:
        return sum(1 for _ in self._batches())

    def __iter__(self) -> Iterator[list[int]]:
        for b in self._batches():
            yield b.tolist()
