"""Per-video part-state representations, from ground truth or from predicted state probabilities.

Every function takes a parts table (the ``parts`` columns of :class:`tpslab.dataset.TPSDataset`:
at least ``video, frame, part, state`` and, for objects, ``object``) and optionally ``probs``, an
``(n_rows, n_states)`` array of predicted state probabilities aligned with the table's rows (soft
counts); without it each row counts one for its ``state``. Results are :class:`Features`: a matrix,
the video of each row and the name of each column, so models can refuse features built with another
vocabulary.

- :func:`state_bags`: normalised (part, state) bags, optionally (part, object) bags, optionally a
  temporal pyramid (whole video and its thirds);
- :func:`transition_counts`: per part, counts of state changes between consecutive annotated frames;
- :func:`frame_sequences`: per-frame (part, state) distributions, resampled to a fixed length, for
  temporal models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from tpslab.vocab import Vocab


@dataclass
class Features:
    """A feature matrix ``X`` (one row per video), the ``videos`` and the column ``names``."""

    X: np.ndarray
    videos: list[str]
    names: list[str]

    def __post_init__(self):
        if self.X.ndim != 2 or self.X.shape != (len(self.videos), len(self.names)):
            raise ValueError(f"feature matrix {self.X.shape} does not match {len(self.videos)} videos "
                             f"x {len(self.names)} names")

    def __len__(self) -> int:
        return len(self.videos)

    def to_frame(self) -> pd.DataFrame:
        """The matrix as a DataFrame indexed by video (2-D features only)."""
        return pd.DataFrame(self.X, index=pd.Index(self.videos, name="video"), columns=self.names)

    def hstack(self, other: "Features") -> "Features":
        """Columns of both (same videos in the same order)."""
        if other.videos != self.videos:
            raise ValueError("cannot stack features of different videos")
        return Features(np.hstack([self.X, other.X]), self.videos, self.names + other.names)

    def select(self, videos: Sequence[str]) -> "Features":
        """The rows of ``videos``, in that order."""
        pos = {v: i for i, v in enumerate(self.videos)}
        missing = [v for v in videos if v not in pos]
        if missing:
            raise KeyError(f"no features for videos {missing[:5]}")
        return Features(self.X[[pos[v] for v in videos]], list(videos), self.names)


def _video_order(parts: pd.DataFrame, videos: Sequence[str] | None) -> list[str]:
    if videos is not None:
        return list(videos)
    return list(pd.unique(parts["video"].astype(str)))


def _restrict(parts: pd.DataFrame, probs, order: list[str]):
    """The rows of videos in ``order``, their probs, and each row's position in ``order``."""
    index = {v: i for i, v in enumerate(order)}
    vid = parts["video"].astype(str).map(index)
    keep = vid.notna().to_numpy()
    if not keep.all():
        parts, vid = parts[keep], vid[keep]
        probs = None if probs is None else np.asarray(probs)[keep]
    return parts, probs, vid.to_numpy(np.int64)


def _state_weights(parts: pd.DataFrame, vocab: Vocab, probs) -> np.ndarray:
    """(n_rows, n_states): one-hot of ``state``, or the given probabilities."""
    n_states = len(vocab.states)
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (len(parts), n_states):
            raise ValueError(f"probs has shape {probs.shape}; expected ({len(parts)}, {n_states}): one row per "
                             f"part row, one column per state of the vocabulary")
        return probs
    w = np.zeros((len(parts), n_states))
    w[np.arange(len(parts)), vocab.states.codes(parts["state"])] = 1.0
    return w


def _segment(parts: pd.DataFrame, vid: np.ndarray, n_segments: int) -> np.ndarray:
    """Which third (etc.) of its video's annotated frames each row falls in."""
    if n_segments == 1:
        return np.zeros(len(parts), np.int64)
    frame = parts["frame"].to_numpy()
    out = np.zeros(len(parts), np.int64)
    for v in np.unique(vid):
        rows = np.flatnonzero(vid == v)
        uniq = np.unique(frame[rows])
        rank = np.searchsorted(uniq, frame[rows])
        out[rows] = np.minimum(rank * n_segments // max(len(uniq), 1), n_segments - 1)
    return out


def state_bags(parts: pd.DataFrame, vocab: Vocab, *, probs=None, objects: bool = False,
               pyramid: bool = False, videos: Sequence[str] | None = None) -> Features:
    """Normalised (part, state) bags per video.

    For each video and part, the state counts (soft with ``probs``) over all its annotated frames and
    humans are divided by their sum, so each present part contributes a distribution and a missing
    part contributes zeros. ``objects`` appends the same for (part, object), the object "absent"
    included. ``pyramid`` repeats the bag for each third of the video's annotated frames.
    ``videos`` fixes the row order (videos without parts get zero rows).
    """
    order = _video_order(parts, videos)
    parts, probs, vid = _restrict(parts, probs, order)
    part = vocab.parts.codes(parts["part"])
    blocks = [("state", _state_weights(parts, vocab, probs), list(vocab.states.names))]
    if objects:
        obj = vocab.objects.codes(parts["object"])
        w = np.zeros((len(parts), len(vocab.objects) + 1))
        w[np.arange(len(parts)), np.where(obj < 0, len(vocab.objects), obj)] = 1.0
        blocks.append(("object", w, list(vocab.objects.names) + ["<no object>"]))
    levels = [(1, "")] + ([(3, "@{}/3")] if pyramid else [])
    mats, names = [], []
    n_parts = len(vocab.parts)
    for n_seg, tag in levels:
        seg = _segment(parts, vid, n_seg)
        for kind, w, labels in blocks:
            k = len(labels)
            acc = np.zeros((len(order), n_seg, n_parts, k))
            np.add.at(acc, (vid, seg, part), w)
            total = acc.sum(-1, keepdims=True)
            acc = np.divide(acc, total, out=np.zeros_like(acc), where=total > 0)
            mats.append(acc.reshape(len(order), -1))
            names += [f"{p}:{kind}={lab}" + (tag.format(s + 1) if tag else "")
                      for s in range(n_seg) for p in vocab.parts.names for lab in labels]
    return Features(np.hstack(mats).astype(np.float32), order, names)


def _frame_distributions(parts, vocab, probs, order):
    """Per (video, frame): the mean state distribution of each part over the frame's humans."""
    parts, probs, vid = _restrict(parts, probs, order)
    w = _state_weights(parts, vocab, probs)
    frame = parts["frame"].to_numpy(np.int64)
    part = vocab.parts.codes(parts["part"])
    if len(parts):
        uniq, inv = np.unique(np.stack([vid, frame], 1), axis=0, return_inverse=True)
    else:
        uniq, inv = np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    inv = inv.reshape(-1)
    acc = np.zeros((len(uniq), len(vocab.parts), len(vocab.states)))
    np.add.at(acc, (inv, part), w)
    total = acc.sum(-1, keepdims=True)
    dist = np.divide(acc, total, out=np.zeros_like(acc), where=total > 0)
    return uniq, dist  # uniq sorted by (video, frame)


def transition_counts(parts: pd.DataFrame, vocab: Vocab, *, probs=None, videos: Sequence[str] | None = None,
                      changes_only: bool = True) -> Features:
    """Per part, soft counts of (state at one annotated frame -> state at the next), per video.

    There is no identity across frames, so a part's state at a frame is its mean over the frame's
    humans; consecutive frames contribute the outer product of their distributions. Counts are
    divided by the number of frame pairs. With ``changes_only``, staying in a state is not counted.
    Only the state pairs that occur in ``parts`` become columns.
    """
    order = _video_order(parts, videos)
    uniq, dist = _frame_distributions(parts, vocab, probs, order)
    n_s, n_p = len(vocab.states), len(vocab.parts)
    acc = np.zeros((len(order), n_p, n_s, n_s))
    pairs = np.zeros(len(order))
    same_video = uniq[1:, 0] == uniq[:-1, 0]
    for i in np.flatnonzero(same_video):
        v = uniq[i, 0]
        acc[v] += np.einsum("ps,pt->pst", dist[i], dist[i + 1])
        pairs[v] += 1
    if changes_only:
        acc[:, :, np.arange(n_s), np.arange(n_s)] = 0
    acc /= np.maximum(pairs, 1)[:, None, None, None]
    flat = acc.reshape(len(order), -1)
    used = np.flatnonzero(flat.any(0))
    names = [f"{p}:{a}->{b}" for p in vocab.parts.names for a in vocab.states.names for b in vocab.states.names]
    return Features(flat[:, used].astype(np.float32), order, [names[i] for i in used])


def frame_sequences(parts: pd.DataFrame, vocab: Vocab, *, probs=None, videos: Sequence[str] | None = None,
                    length: int = 32) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-frame (part, state) distributions of each video, resampled to ``length`` steps.

    Returns ``(X, lengths, names)``: ``X`` of shape (videos, length, parts * states) float32, each
    step one annotated frame (videos with more frames are sampled uniformly, shorter ones are
    zero-padded at the end), ``lengths`` the number of real steps per video, and the column names.
    """
    order = _video_order(parts, videos)
    uniq, dist = _frame_distributions(parts, vocab, probs, order)
    n_feat = len(vocab.parts) * len(vocab.states)
    X = np.zeros((len(order), length, n_feat), np.float32)
    lengths = np.zeros(len(order), np.int64)
    starts = np.searchsorted(uniq[:, 0], np.arange(len(order) + 1)) if len(uniq) else np.zeros(len(order) + 1, int)
    for v in range(len(order)):
        rows = dist[starts[v]:starts[v + 1]].reshape(-1, n_feat)
        if len(rows) > length:
            rows = rows[np.linspace(0, len(rows) - 1, length).round().astype(int)]
        X[v, : len(rows)] = rows
        lengths[v] = len(rows)
    names = [f"{p}:state={s}" for p in vocab.parts.names for s in vocab.states.names]
    return X, lengths, names
