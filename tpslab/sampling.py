"""Which frames to read: pure, seeded functions that return 0-based frame indices (no decoding).

As in mmaction2's ``SampleFrames``, sampling is separate from decoding: these functions only see a
frame count (or the annotated frame numbers) and give indices for :meth:`tpslab.video.VideoReader.get`.
Random choices come from ``seed`` (an int or a ``numpy.random.Generator``); the same seed gives the
same indices. Indices are int64 arrays, sorted unless stated otherwise.

- :func:`tsn_indices`: one frame per equal segment (random offset when training, centre at test).
- :func:`uniform_indices`: ``k`` frames evenly spread over the video, first and last included.
- :func:`dense_indices`: ``num_clips`` clips of ``clip_len`` frames, ``interval`` apart.
- :func:`scored_indices`: the frames the challenge scores (img_00001, img_00006, ...: every 5th).
- :func:`annotated_indices`: the frames that have an annotation file (optionally ``k`` of them).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from tpslab.challenge import SCORED_STRIDE, frame_number_to_index, is_scored  # noqa: F401 (is_scored: re-exported)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError("random sampling needs a seed (an int or a numpy Generator)")
    return np.random.default_rng(seed)


def _check_count(num_frames) -> int:
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    return int(num_frames)


def tsn_indices(num_frames: int, num_segments: int, *, train: bool = False, seed=None) -> np.ndarray:
    """TSN sampling: split the video into ``num_segments`` equal segments, one frame from each.

    Training (``train=True``) takes a random frame in each segment (needs ``seed``); otherwise the
    segment's centre frame. With fewer frames than segments, segments share frames (indices repeat).
    """
    n = _check_count(num_frames)
    if num_segments < 1:
        raise ValueError(f"num_segments must be positive, got {num_segments}")
    edges = np.arange(num_segments + 1) * n / num_segments  # segment s covers [edges[s], edges[s+1])
    if train:
        offsets = _rng(seed).random(num_segments)
        points = edges[:-1] + offsets * (edges[1:] - edges[:-1])
    else:
        points = (edges[:-1] + edges[1:]) / 2
    return np.minimum(np.floor(points).astype(np.int64), n - 1)


def uniform_indices(num_frames: int, k: int) -> np.ndarray:
    """``k`` frames evenly spaced from the first to the last (rounded); repeats when ``k > num_frames``."""
    n = _check_count(num_frames)
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if k == 1:
        return np.array([(n - 1) // 2], dtype=np.int64)
    return np.round(np.linspace(0, n - 1, k)).astype(np.int64)


def dense_indices(num_frames: int, clip_len: int, interval: int = 1, num_clips: int = 1, *,
                  train: bool = False, seed=None) -> np.ndarray:
    """Dense clips, shape (num_clips, clip_len): ``clip_len`` frames ``interval`` apart per clip.

    Training places each clip's start at random (needs ``seed``); otherwise the clips' centres are
    spread evenly over the video. A clip that runs past the end repeats the last frame.
    """
    n = _check_count(num_frames)
    if clip_len < 1 or interval < 1 or num_clips < 1:
        raise ValueError(f"clip_len, interval and num_clips must be positive, got {clip_len}, {interval}, "
                         f"{num_clips}")
    span = (clip_len - 1) * interval + 1
    room = max(n - span, 0)  # the latest start that keeps the clip inside the video
    if train:
        starts = _rng(seed).integers(0, room + 1, size=num_clips)
    else:
        starts = np.floor((np.arange(num_clips) + 0.5) * (room + 1) / num_clips).astype(np.int64)
    clips = starts[:, None] + np.arange(clip_len)[None, :] * interval
    return np.minimum(clips, n - 1).astype(np.int64)


def scored_indices(num_frames: int) -> np.ndarray:
    """The frames the challenge scores: img_00001, img_00006, ... i.e. indices 0, 5, 10, ... < num_frames."""
    return np.arange(0, _check_count(num_frames), SCORED_STRIDE, dtype=np.int64)


def annotated_indices(frame_numbers: Iterable[int], k: int | None = None, *, train: bool = False,
                      seed=None, num_frames: int | None = None) -> np.ndarray:
    """Indices of annotated frames, from their 1-based numbers (the ``frame`` column of ``frames``).

    ``k`` picks that many of them: a random sorted subset when training (needs ``seed``), else ``k``
    evenly spread; with fewer annotated frames than ``k``, all of them (no repeats). ``num_frames``,
    when known, drops numbers past the video's end (annotations of frames that do not decode).
    """
    idx = frame_number_to_index(np.unique(np.asarray(list(frame_numbers), dtype=np.int64)))
    if num_frames is not None:
        idx = idx[idx < num_frames]
    if k is None or k >= len(idx):
        return idx
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if train:
        return np.sort(_rng(seed).choice(idx, size=k, replace=False))
    return idx[np.round(np.linspace(0, len(idx) - 1, k)).astype(np.int64)]
