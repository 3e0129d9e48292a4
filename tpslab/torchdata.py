"""PyTorch side: a Dataset of clips with their labels, transforms on torch tensors, a collate.

:class:`ClipDataset` reads, for each video, the frames a sampler picks (``tpslab.sampling``), with
the action label and, for every sampled frame that has an annotation file, its humans, part boxes
and part-state ids. Readers are opened inside ``__getitem__`` (so in each DataLoader worker) and
closed after the clip; the dataset itself holds only numpy arrays and paths, so it pickles cheaply.

Boxes follow the release's convention: inclusive pixel corners ``[x1, y1, x2, y2]`` (a box covers
pixels x1..x2), and the transforms keep that convention while resizing, cropping and flipping.

Randomness (sampling offsets, crops, flips) comes from a generator seeded by ``(seed, epoch,
item)``: the same item of the same epoch gives the same clip in any worker; call
:meth:`ClipDataset.set_epoch` to draw new clips each epoch.

A sample (a dict) holds ``frames`` float32 (C, T, H, W); ``label`` (action id); ``video``;
``indices`` (T,) decoded frame indices; ``annotated`` (T,) whether each frame has an annotation file;
and the humans of each sampled frame in M slots (M = ``max_humans``, the same for every clip of
the dataset): ``boxes`` (T, M, 4), ``human_mask`` (T, M) which slots hold a human, ``part_boxes``
(T, M, P, 4), ``part_states`` (T, M, P) state ids with -1 where the part is not annotated, and
``part_mask`` (T, M, P); boxes are zeros where there is no human or part. P is the number of parts
of the vocabulary, in its order. So every tensor of a clip has a fixed shape and torch's default
collation batches clips (with ``num_workers`` too), as long as the frames of all videos have one
size: with videos of several sizes, use a transform that crops to a fixed size
(:func:`train_transform`, :func:`eval_transform`). :func:`collate_clips` is that default collation
with an error that names the clips that differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from tpslab import sampling
from tpslab.challenge import frame_stem, index_to_frame_number
from tpslab.layout import rawframes_folder
from tpslab.video import open_video, short_side_size
from tpslab.vocab import mirror_permutation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- samplers


class TSN:
    """``num_segments`` frames, one per equal segment (random offsets in training, centres at test)."""

    def __init__(self, num_segments: int = 8):
        self.num_segments = num_segments

    def __call__(self, num_frames: int, annotated: np.ndarray, train: bool, rng) -> np.ndarray:
        return sampling.tsn_indices(num_frames, self.num_segments, train=train, seed=rng)


class Uniform:
    """``k`` frames evenly spread over the video (no randomness)."""

    def __init__(self, k: int = 8):
        self.k = k

    def __call__(self, num_frames: int, annotated: np.ndarray, train: bool, rng) -> np.ndarray:
        return sampling.uniform_indices(num_frames, self.k)


class Dense:
    """One clip of ``clip_len`` frames ``interval`` apart (random start in training, centred at test)."""

    def __init__(self, clip_len: int = 8, interval: int = 2):
        self.clip_len, self.interval = clip_len, interval

    def __call__(self, num_frames: int, annotated: np.ndarray, train: bool, rng) -> np.ndarray:
        return sampling.dense_indices(num_frames, self.clip_len, self.interval, 1, train=train, seed=rng)[0]


class Annotated:
    """``k`` annotated frames (random subset in training, evenly spread at test).

    ``scored_only`` keeps only the frames the challenge scores. A video with fewer than ``k`` such
    frames repeats them in order to fill ``k`` (clips of a batch need the same length); one with
    none raises ValueError naming the video.
    """

    def __init__(self, k: int = 8, scored_only: bool = False):
        self.k, self.scored_only = k, scored_only

    def __call__(self, num_frames: int, annotated: np.ndarray, train: bool, rng) -> np.ndarray:
        numbers = annotated[sampling.is_scored(annotated)] if self.scored_only else annotated
        idx = sampling.annotated_indices(numbers, self.k, train=train, seed=rng, num_frames=num_frames)
        if idx.size == 0:
            raise ValueError("no annotated frames to sample" + (" among the scored frames" if self.scored_only else ""))
        return np.resize(idx, self.k) if idx.size < self.k else idx


# ----------------------------------------------------------------------------- transforms


class Compose:
    """Apply transforms in order; each is ``t(sample, rng) -> sample``."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def _crop_boxes(sample: dict, x0: int, y0: int, width: int, height: int) -> None:
    """Shift boxes by the crop origin and clip them to the crop; mask humans and parts outside it."""
    offset = torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
    high = torch.tensor([width - 1, height - 1, width - 1, height - 1], dtype=torch.float32)

    def overlaps(b):  # some pixel of the box is inside the crop
        return (b[..., 2] >= 0) & (b[..., 3] >= 0) & (b[..., 0] <= width - 1) & (b[..., 1] <= height - 1)

    boxes, parts = sample["boxes"] - offset, sample["part_boxes"] - offset
    sample["human_mask"] = sample["human_mask"] & overlaps(boxes)
    sample["part_mask"] = sample["part_mask"] & overlaps(parts) & sample["human_mask"][..., None]
    sample["part_states"] = torch.where(sample["part_mask"], sample["part_states"], -1)
    sample["boxes"] = torch.minimum(torch.clamp(boxes, min=0), high)
    sample["part_boxes"] = torch.minimum(torch.clamp(parts, min=0), high)


class ShortSideResize:
    """Resize so the shorter side is ``size`` pixels (bilinear, antialiased when shrinking)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, sample: dict, rng) -> dict:
        frames = sample["frames"]
        h, w = frames.shape[-2:]
        new_w, new_h = short_side_size(w, h, self.size)
        if (new_h, new_w) == (h, w):
            return sample
        sample["frames"] = torch.nn.functional.interpolate(
            frames, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=new_h < h)
        # a box covers pixels x1..x2, i.e. [x1, x2 + 1) continuously: scale that extent
        sx, sy = new_w / w, new_h / h
        for key in ("boxes", "part_boxes"):
            b = sample[key].clone()
            b[..., 0] *= sx
            b[..., 1] *= sy
            b[..., 2] = (b[..., 2] + 1) * sx - 1
            b[..., 3] = (b[..., 3] + 1) * sy - 1
            sample[key] = b
        return sample

    def __repr__(self) -> str:
        return f"ShortSideResize({self.size})"


def _pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class _Crop:
    def __init__(self, size):
        self.height, self.width = _pair(size)

    def _origin(self, h: int, w: int, rng) -> tuple[int, int]:
        raise NotImplementedError

    def __call__(self, sample: dict, rng) -> dict:
        frames = sample["frames"]
        h, w = frames.shape[-2:]
        if h < self.height or w < self.width:
            raise ValueError(f"cannot crop {self.height}x{self.width} from frames of {h}x{w}; resize first")
        y0, x0 = self._origin(h, w, rng)
        sample["frames"] = frames[..., y0:y0 + self.height, x0:x0 + self.width]
        _crop_boxes(sample, x0, y0, self.width, self.height)
        return sample

    def __repr__(self) -> str:
        return f"{type(self).__name__}(({self.height}, {self.width}))"


class CenterCrop(_Crop):
    """Crop ``size`` (int or (height, width)) from the middle of the frames."""

    def _origin(self, h, w, rng):
        return (h - self.height) // 2, (w - self.width) // 2


class RandomCrop(_Crop):
    """Crop ``size`` (int or (height, width)) at a random place, the same for every frame of the clip."""

    def _origin(self, h, w, rng):
        return int(rng.integers(0, h - self.height + 1)), int(rng.integers(0, w - self.width + 1))


class RandomHorizontalFlip:
    """Mirror the clip left-right with probability ``p``; boxes follow and part labels swap sides.

    ``parts`` are the part names in the column order of ``part_boxes`` (the vocabulary's order): after a
    flip, what was annotated as ``left_hand`` is the right hand of the mirrored person (a part whose other
    side is not in ``parts`` is a ``ValueError``).
    """

    def __init__(self, parts: Sequence[str], p: float = 0.5):
        self.p = p
        self.permutation = torch.tensor(mirror_permutation(parts), dtype=torch.long)

    def __call__(self, sample: dict, rng) -> dict:
        if rng.random() >= self.p:
            return sample
        w = sample["frames"].shape[-1]
        sample["frames"] = torch.flip(sample["frames"], dims=[-1])
        for key in ("boxes", "part_boxes"):
            b = sample[key].clone()
            b[..., 0], b[..., 2] = w - 1 - sample[key][..., 2], w - 1 - sample[key][..., 0]
            sample[key] = b
        sample["part_boxes"] = sample["part_boxes"][..., self.permutation, :]
        for key in ("part_states", "part_mask"):
            sample[key] = sample[key][..., self.permutation]
        return sample

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """``(frames - mean) / std`` per channel, for frames scaled to [0, 1]."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, sample: dict, rng) -> dict:
        sample["frames"] = (sample["frames"] - self.mean) / self.std
        return sample

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


def train_transform(parts: Sequence[str], short_side: int = 256, crop: int = 224) -> Compose:
    """Short-side resize, random crop, left/right flip (with part swap), ImageNet normalisation."""
    return Compose([ShortSideResize(short_side), RandomCrop(crop), RandomHorizontalFlip(parts), Normalize()])


def eval_transform(short_side: int = 256, crop: int = 224) -> Compose:
    """Short-side resize, centre crop, ImageNet normalisation."""
    return Compose([ShortSideResize(short_side), CenterCrop(crop), Normalize()])


# ----------------------------------------------------------------------------- dataset


def _spans(codes: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) start/stop rows of each code in an array sorted by code."""
    return np.stack([np.searchsorted(codes, np.arange(n), "left"),
                     np.searchsorted(codes, np.arange(n), "right")], axis=1)


class ClipDataset(torch.utils.data.Dataset):
    """Clips of Kinetics-TPS videos with action labels and the annotations of their sampled frames.

    ``dataset``: a :class:`tpslab.dataset.TPSDataset`; ``videos``: the names to use (default: all
    with a video file). ``sampler``: :class:`TSN` (default, 8 segments), :class:`Uniform`,
    :class:`Dense`, :class:`Annotated` or any ``f(num_frames, annotated_numbers, train, rng)``
    returning frame indices. ``train`` turns on random sampling. ``transform``: a
    ``t(sample, rng)`` callable such as :func:`train_transform` (default: none, frames in [0, 1]).
    ``backend`` is passed to :func:`tpslab.video.open_video`; ``frames_root`` reads extracted frame
    folders ``frames_root/<split>/<class>/<video>/`` instead of the video files. ``max_humans``: the
    human slots of each frame (default: the most humans on one annotated frame of these videos, at
    least 1); a frame with more raises ValueError here, naming the video and frame.

    Clips have equal shapes when the videos share one frame size or the transform crops to one (see
    the module docstring), so ``DataLoader(clips, batch_size=4, num_workers=2)`` batches them with
    torch's default collation.
    A video that cannot be read raises :class:`tpslab.video.VideoError` (no other clip is substituted).
    """

    def __init__(self, dataset, videos: Iterable[str] | None = None, *, sampler: Callable | None = None,
                 train: bool = False, transform: Callable | None = None, backend: str = "auto",
                 frames_root=None, seed: int = 0, max_humans: int | None = None):
        table = dataset.videos
        if videos is None:
            table = table[table["path"].notna()]
        else:
            wanted = list(videos)
            known = set(table["video"].astype(str))
            unknown = [v for v in wanted if v not in known]
            if unknown:
                raise KeyError(f"unknown videos: {unknown[:5]}")
            table = table.set_index(table["video"].astype(str)).loc[wanted].reset_index(drop=True)
        self.videos = table["video"].astype(str).tolist()
        labels = table["label"].astype(object).tolist()
        missing = [v for v, lab in zip(self.videos, labels) if not isinstance(lab, str)]
        if missing:
            raise ValueError(f"videos without an action label: {missing[:5]}")
        self.labels = dataset.vocab.actions.ids(labels)
        if frames_root is not None:
            self.sources = [str(Path(frames_root) / rawframes_folder(s, lab, v))
                            for s, lab, v in zip(table["split"], labels, self.videos)]
        else:
            paths = table["path"].tolist()
            nopath = [v for v, p in zip(self.videos, paths) if not isinstance(p, str)]
            if nopath:
                raise ValueError(f"videos without a video file: {nopath[:5]}")
            self.sources = paths
        self.part_names = list(dataset.vocab.parts.names)
        self.sampler = sampler if sampler is not None else TSN(8)
        self.train, self.transform, self.backend = train, transform, backend
        self.seed, self.epoch = seed, 0
        self._index_annotations(dataset)
        self.max_humans = self._check_max_humans(max_humans)

    def _index_annotations(self, dataset) -> None:
        """Numpy arrays of the annotated frames, humans and their parts, grouped by video."""
        video_codes = pd.Index(list(dict.fromkeys(self.videos)))  # a video may be listed twice
        self._code = video_codes.get_indexer(self.videos)
        n_videos, n_parts = len(video_codes), len(self.part_names)

        frames = dataset.frames
        codes = video_codes.get_indexer(frames["video"].astype(str))
        keep = codes >= 0
        order = np.lexsort((frames["frame"].to_numpy()[keep], codes[keep]))
        self._f_code = codes[keep][order]
        self._f_frame = frames["frame"].to_numpy(np.int64)[keep][order]
        self._f_span = _spans(self._f_code, n_videos)

        humans = dataset.humans
        codes = video_codes.get_indexer(humans["video"].astype(str))
        keep = codes >= 0
        h = humans[keep]
        h_code = codes[keep]
        order = np.lexsort((h["human"].to_numpy(), h["frame"].to_numpy(), h_code))
        h = h.iloc[order]
        self._h_code = h_code[order]
        self._h_frame = h["frame"].to_numpy(np.int64)
        self._h_box = h[["x1", "y1", "x2", "y2"]].to_numpy(np.float32)
        self._h_span = _spans(self._h_code, n_videos)

        # parts, densely: one row per human, one column per part of the vocabulary
        self._p_box = np.zeros((len(h), n_parts, 4), dtype=np.float32)
        self._p_state = np.full((len(h), n_parts), -1, dtype=np.int16)
        parts = dataset.parts
        if len(parts) and len(h):
            row_of = pd.Series(np.arange(len(h)),
                               index=pd.MultiIndex.from_arrays([h["video"].astype(str).to_numpy(),
                                                                h["frame"].to_numpy(), h["human"].to_numpy()]))
            key = pd.MultiIndex.from_arrays([parts["video"].astype(str).to_numpy(), parts["frame"].to_numpy(),
                                             parts["human"].to_numpy()])
            rows = row_of.reindex(key).to_numpy()
            ok = ~np.isnan(rows)
            rows = rows[ok].astype(np.int64)
            vocab = dataset.vocab
            cols = vocab.parts.ids(parts["part"].astype(str).to_numpy()[ok])
            self._p_box[rows, cols] = parts[["part_x1", "part_y1", "part_x2", "part_y2"]].to_numpy(np.float32)[ok]
            self._p_state[rows, cols] = vocab.states.ids(parts["state"].astype(str).to_numpy()[ok])

    def _check_max_humans(self, max_humans: int | None) -> int:
        """The human slots per frame: ``max_humans``, or the most humans on one frame (at least 1)."""
        # humans are sorted by (video, frame): a frame's humans are one run
        starts = np.flatnonzero(np.r_[True, (np.diff(self._h_code) != 0) | (np.diff(self._h_frame) != 0)])
        counts = np.diff(np.r_[starts, len(self._h_code)])
        if max_humans is None:
            return max(1, int(counts.max(initial=0)))
        if max_humans < 1:
            raise ValueError(f"max_humans must be positive, got {max_humans}")
        over = np.flatnonzero(counts > max_humans)
        if over.size:
            row = starts[over[0]]
            video = self.videos[int(np.flatnonzero(self._code == self._h_code[row])[0])]
            raise ValueError(f"{video}: frame {frame_stem(self._h_frame[row])} has {counts[over[0]]} humans, "
                             f"more than max_humans={max_humans}")
        return int(max_humans)

    def __len__(self) -> int:
        return len(self.videos)

    def set_epoch(self, epoch: int) -> None:
        """Draw different random clips (and crops, flips) in the next epoch."""
        self.epoch = int(epoch)

    def annotated_frames(self, i: int) -> np.ndarray:
        """The 1-based numbers of the annotated frames of item ``i``'s video."""
        lo, hi = self._f_span[self._code[i]]
        return self._f_frame[lo:hi]

    def _targets(self, i: int, indices: np.ndarray) -> dict:
        """The humans of each sampled frame in ``max_humans`` slots (see the module docstring)."""
        lo, hi = self._h_span[self._code[i]]
        frame_of_human = self._h_frame[lo:hi]
        numbers = index_to_frame_number(indices)
        first = np.searchsorted(frame_of_human, numbers)
        counts = np.searchsorted(frame_of_human, numbers + 1) - first
        t = np.repeat(np.arange(len(indices)), counts)  # the clip position and slot of each human
        slot = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        rows = lo + np.repeat(first, counts) + slot
        shape = (len(indices), self.max_humans)
        boxes = np.zeros((*shape, 4), dtype=np.float32)
        part_boxes = np.zeros((*shape, len(self.part_names), 4), dtype=np.float32)
        states = np.full((*shape, len(self.part_names)), -1, dtype=np.int64)
        human_mask = np.zeros(shape, dtype=bool)
        boxes[t, slot], human_mask[t, slot] = self._h_box[rows], True
        part_boxes[t, slot], states[t, slot] = self._p_box[rows], self._p_state[rows]
        return {
            "annotated": torch.from_numpy(np.isin(indices + 1, self.annotated_frames(i))),
            "boxes": torch.from_numpy(boxes),
            "human_mask": torch.from_numpy(human_mask),
            "part_boxes": torch.from_numpy(part_boxes),
            "part_states": torch.from_numpy(states),
            "part_mask": torch.from_numpy(states >= 0),
        }

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        with open_video(self.sources[i], self.backend) as reader:
            try:
                indices = np.asarray(self.sampler(len(reader), self.annotated_frames(i), self.train, rng),
                                     dtype=np.int64)
            except ValueError as err:
                raise ValueError(f"{self.videos[i]}: {err}") from None
            frames = reader.get(indices)
        sample = {"video": self.videos[i], "label": int(self.labels[i]),
                  "indices": torch.from_numpy(indices),
                  "frames": torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255)}  # T, C, H, W
        sample.update(self._targets(i, indices))
        if self.transform is not None:
            sample = self.transform(sample, rng)
        sample["frames"] = sample["frames"].permute(1, 0, 2, 3).contiguous()  # C, T, H, W
        sample["boxes"] = sample["boxes"].masked_fill(~sample["human_mask"][..., None], 0)
        sample["part_boxes"] = sample["part_boxes"].masked_fill(~sample["part_mask"][..., None], 0)
        return sample


def collate_clips(batch: list[dict]) -> dict:
    """torch's default collation of clips, with an error naming the clips when their shapes differ.

    Frames become (B, C, T, H, W); ``label`` (B,); ``indices`` and ``annotated`` (B, T); ``video`` a
    list; ``boxes`` (B, T, M, 4), ``human_mask`` (B, T, M), ``part_boxes`` (B, T, M, P, 4),
    ``part_states`` and ``part_mask`` (B, T, M, P).
    """
    shapes = [tuple(s["frames"].shape) for s in batch]
    if len(set(shapes)) > 1:
        clips = ", ".join(f"{s['video']} {shape}" for s, shape in zip(batch, shapes))
        raise ValueError(f"clips of one batch differ in shape ({clips}); use a fixed-length sampler and "
                         "a transform that crops to a fixed size")
    return torch.utils.data.default_collate(batch)
