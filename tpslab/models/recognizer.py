"""Part states from pixels: a small CNN on a crop around each part box.

Boxes come from a table shaped like the dataset's ``parts`` table (columns ``video, frame, human,
human_x1..human_y2, part, part_x1..part_y2`` and, to train, ``state``): ground-truth boxes, or the
boxes of an external detections file read by :func:`tpslab.models.pipeline.boxes_from_predictions`.

- :func:`crop_parts` decodes the frames of each video once and cuts a square crop around every part
  box (``context`` times its longer side), resized to ``size`` pixels;
- :func:`box_geometry` describes each part box relative to its human box (size, shape, position);
- :class:`PartStateRecognizer` embeds the crop with a small CNN, adds the part identity and the
  geometry, and predicts a state. States never seen for a part in training are masked out, the
  loss copes with the dominant ``none`` state (see :data:`LOSSES`), and training flips crops
  left-right while swapping the part (``left_arm`` <-> ``right_arm``);
- :func:`link_humans` and :func:`smooth_probs` link humans across annotated frames and smooth each
  part's probabilities along a person's track, optionally blending in the person's video-level
  distribution (one state per part for the whole video when ``video_level=1``).

Training is seeded and leaves the caller's global torch random state untouched.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from tpslab.fileio import atomic_path
from tpslab.models._common import (FORMAT_VERSION, check_saved, check_vocab, torch_device,
                                   torch_generator, torch_threads, vocab_from_names,
                                   vocab_names)
from tpslab.vocab import Vocab, mirror_part

#: ``weighted``: cross-entropy with class weights 1/sqrt(frequency) (the default: frequent states such
#: as ``none`` weigh less, rare ones more); ``focal``: focal loss (easy, mostly frequent, examples
#: weigh less); ``weighted_focal``: both; ``ce``: plain cross-entropy (best top-1, worst on rare states).
LOSSES = ("weighted", "focal", "weighted_focal", "ce")
_KIND = "tpslab.PartStateRecognizer"
_PART_BOX = ["part_x1", "part_y1", "part_x2", "part_y2"]
_HUMAN_BOX = ["human_x1", "human_y1", "human_x2", "human_y2"]
GEOMETRY = ("width/human_height", "height/human_height", "log_aspect", "centre_x/human_width",
            "centre_y/human_height")


def _need(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing} (a table shaped like the dataset's parts table)")


# ----------------------------------------------------------------------------- crops


def video_paths(dataset) -> dict[str, str]:
    """``{video: path of its video file}`` from a dataset's ``videos`` table."""
    t = dataset.videos
    return {str(v): str(p) for v, p in zip(t["video"], t["path"]) if isinstance(p, str)}


def _sample_crops(frames: np.ndarray, which: np.ndarray, boxes: np.ndarray, size: int, context: float,
                  min_side: float) -> np.ndarray:
    """Square crops of ``frames[which[i]]`` around ``boxes[i]`` (inclusive pixels), resized by Pillow.

    Pillow's bilinear resize widens its filter when shrinking, so small output crops are not aliased.
    """
    from PIL import Image

    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    side = np.maximum(np.maximum(boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1) * context, min_side)
    # Pixel i covers [i - 0.5, i + 0.5]; Pillow's box is in pixel-edge coordinates, on a zero-padded frame.
    pad = int(np.ceil(side.max() / 2)) + 2
    x0 = cx - side / 2 + 0.5 + pad
    y0 = cy - side / 2 + 0.5 + pad
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for t in np.unique(which):
        image = Image.fromarray(np.pad(frames[t], ((pad, pad), (pad, pad), (0, 0))))
        for i in np.flatnonzero(which == t):
            region = (x0[i], y0[i], x0[i] + side[i], y0[i] + side[i])
            out[i] = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, box=region))
    return out


def crop_parts(boxes: pd.DataFrame, paths: Mapping[str, str], *, size: int = 32, context: float = 1.5,
               min_side: float = 8.0, backend: str = "auto", progress: bool = True) -> np.ndarray:
    """Square crops around every part box of ``boxes``: uint8 array (rows, size, size, 3), RGB.

    ``boxes`` needs ``video, frame`` (1-based, as ``img_00001.json``) and ``part_x1..part_y2``;
    ``paths`` maps each video to its file (see :func:`video_paths`). Each crop is centred on its box,
    ``context`` times the box's longer side wide (at least ``min_side`` pixels); pixels outside the
    frame are black. Each video is decoded once, only at the frames needed.
    """
    from tqdm.auto import tqdm

    from tpslab.video import open_video

    _need(boxes, ["video", "frame", *_PART_BOX], "crop_parts")
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    if not len(boxes):
        return out
    videos = boxes["video"].astype(str).to_numpy()
    missing = sorted(set(videos) - set(paths))
    if missing:
        raise KeyError(f"no video file known for {len(missing)} video(s), e.g. {missing[:3]}")
    frame = boxes["frame"].to_numpy(np.int64)
    box = boxes[_PART_BOX].to_numpy(np.float64)
    bad = ~np.isfinite(box).all(1)
    if bad.any():
        raise ValueError(f"{bad.sum()} part box(es) are not 4 finite numbers, e.g. row {np.flatnonzero(bad)[0]} "
                         f"of video {videos[bad][0]}")
    groups = pd.Series(np.arange(len(boxes))).groupby(videos, sort=False).indices
    for video, rows in tqdm(groups.items(), desc="cropping parts", unit="video", disable=not progress, leave=False):
        uniq, which = np.unique(frame[rows], return_inverse=True)
        with open_video(paths[video], backend=backend) as reader:
            frames = reader.get(uniq - 1)  # annotation img_k.json is decoded frame k-1
        out[rows] = _sample_crops(frames, which, box[rows], size, context, min_side)
    return out


def box_geometry(boxes: pd.DataFrame) -> np.ndarray:
    """Per row, the part box relative to its human box (see :data:`GEOMETRY`): float32 (rows, 5)."""
    _need(boxes, _PART_BOX + _HUMAN_BOX, "box_geometry")
    p = boxes[_PART_BOX].to_numpy(np.float64)
    hb = boxes[_HUMAN_BOX].to_numpy(np.float64)
    pw, ph = p[:, 2] - p[:, 0] + 1, p[:, 3] - p[:, 1] + 1
    hw, hh = np.maximum(hb[:, 2] - hb[:, 0] + 1, 1), np.maximum(hb[:, 3] - hb[:, 1] + 1, 1)
    g = np.stack([pw / hh, ph / hh, np.log(np.maximum(pw, 1) / np.maximum(ph, 1)),
                  ((p[:, 0] + p[:, 2]) / 2 - (hb[:, 0] + hb[:, 2]) / 2) / hw,
                  ((p[:, 1] + p[:, 3]) / 2 - hb[:, 1]) / hh], 1)
    bad = ~np.isfinite(g).all(1)
    if bad.any():
        raise ValueError(f"{bad.sum()} row(s) lack a finite part or human box, e.g. row {np.flatnonzero(bad)[0]}")
    return g.astype(np.float32)


# ----------------------------------------------------------------------------- the network


@dataclass(frozen=True)
class RecognizerConfig:
    size: int = 32
    context: float = 1.5
    width: int = 16
    part_dim: int = 16
    hidden: int = 128
    dropout: float = 0.2
    geometry: bool = True
    stem_stride: int = 2  # 1: a second full-resolution convolution instead of a strided first one


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class _Net(nn.Module):
    def __init__(self, n_parts: int, n_states: int, cfg: RecognizerConfig):
        super().__init__()
        w = cfg.width
        stem = _conv(3, w, 2) if cfg.stem_stride == 2 else [*_conv(3, w), *_conv(w, w), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*stem, *_conv(w, 2 * w), nn.MaxPool2d(2), *_conv(2 * w, 4 * w), nn.MaxPool2d(2),
                                      nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.part = nn.Embedding(n_parts, cfg.part_dim)
        n_geo = len(GEOMETRY) if cfg.geometry else 0
        self.head = nn.Sequential(nn.Linear(16 * 4 * w + cfg.part_dim + n_geo, cfg.hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, n_states))
        # allowed[p, s]: state s was seen for part p in training; others are masked out.
        self.register_buffer("allowed", torch.ones(n_parts, n_states, dtype=torch.bool))
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("std", torch.ones(3))

    def forward(self, images: torch.Tensor, parts: torch.Tensor, geometry: torch.Tensor | None) -> torch.Tensor:
        """``images`` uint8 (B, H, W, 3), ``parts`` (B,) ids, ``geometry`` (B, G) or None -> logits (B, states)."""
        x = (images.permute(0, 3, 1, 2).float() / 255 - self.mean[:, None, None]) / self.std[:, None, None]
        z = [self.features(x), self.part(parts)]
        if geometry is not None:
            z.append(geometry)
        logits = self.head(torch.cat(z, 1))
        return logits.masked_fill(~self.allowed[parts], -1e4)


def _focal(logits: torch.Tensor, y: torch.Tensor, gamma: float, weight: torch.Tensor | None) -> torch.Tensor:
    logp = torch.log_softmax(logits, -1).gather(1, y[:, None])[:, 0]
    loss = -((1 - logp.exp()) ** gamma) * logp
    if weight is not None:
        loss = loss * weight[y]
    return loss.mean()


# ----------------------------------------------------------------------------- the recogniser


class PartStateRecognizer:
    """Part state from a part crop, its part name and its box geometry; see the module docstring.

    ``size``/``context``: the crops it expects (:func:`crop_parts` arguments, recorded so that saved
    models crop the same way); ``width``: channels of the first convolutions; ``loss``: one of
    :data:`LOSSES` (``gamma`` for the focal ones); ``max_crops``: crops drawn per epoch (default: all);
    ``flip``: left-right flip with part swap as augmentation; ``shift``: random shift in pixels;
    ``geometry``: use :func:`box_geometry`; ``stem_stride``: 2 (fast) or 1 (a full-resolution stem);
    ``device``: where to train and predict; ``threads``: torch CPU threads while training and
    predicting (None: torch's setting; 1 is often fastest on a busy machine).
    """

    def __init__(self, *, size: int = 32, context: float = 1.5, width: int = 16, hidden: int = 128,
                 dropout: float = 0.2, geometry: bool = True, stem_stride: int = 2, loss: str = "weighted",
                 gamma: float = 2.0, epochs: int = 4, batch_size: int = 128, lr: float = 3e-3,
                 weight_decay: float = 1e-4,
                 max_crops: int | None = None, flip: bool = True, shift: int = 2, seed: int = 0, device="cpu",
                 threads: int | None = None, progress: bool = True):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        self.config = RecognizerConfig(size, context, width, 16, hidden, dropout, geometry, stem_stride)
        self.loss, self.gamma, self.epochs, self.batch_size, self.lr = loss, gamma, epochs, batch_size, lr
        self.weight_decay, self.max_crops, self.flip, self.shift = weight_decay, max_crops, flip, shift
        self.seed, self.device, self.threads, self.progress = seed, device, threads, progress
        self.net_: _Net | None = None
        self.vocab: Vocab | None = None
        self.history_: list[float] = []

    def __repr__(self) -> str:
        state = "fitted" if self.net_ is not None else "not fitted"
        return f"PartStateRecognizer({self.config}, loss={self.loss!r}, epochs={self.epochs}, {state})"

    # ------------------------------------------------------------------ inputs
    def crops(self, boxes: pd.DataFrame, paths: Mapping[str, str], **kwargs) -> np.ndarray:
        """:func:`crop_parts` with this model's crop size and context."""
        return crop_parts(boxes, paths, size=self.config.size, context=self.config.context, **kwargs)

    def _inputs(self, crops: np.ndarray, boxes: pd.DataFrame, vocab: Vocab):
        size = self.config.size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
            raise ValueError(f"crops must be uint8 (rows, {size}, {size}, 3) as crop_parts(size={size}) makes them; "
                             f"got {crops.dtype} {crops.shape}")
        if len(crops) != len(boxes):
            raise ValueError(f"{len(crops)} crops for {len(boxes)} box rows")
        _need(boxes, ["part"], "the recogniser")
        parts = vocab.parts.codes(boxes["part"])
        if (parts < 0).any():
            raise ValueError(f"{(parts < 0).sum()} box row(s) have no part name")
        geo = box_geometry(boxes) if self.config.geometry else None
        return crops, parts, geo

    # ------------------------------------------------------------------ training
    def fit(self, crops: np.ndarray, boxes: pd.DataFrame, vocab: Vocab) -> "PartStateRecognizer":
        """Train on ``crops`` (from :meth:`crops`) and the ``part``/``state`` (and box) columns of ``boxes``."""
        from tqdm.auto import tqdm

        _need(boxes, ["state"], "training the recogniser")
        crops, parts, geo = self._inputs(crops, boxes, vocab)
        states = vocab.states.codes(boxes["state"])
        keep = states >= 0
        if not keep.any():
            raise ValueError("no box row has a state to learn from")
        crops, parts, states = crops[keep], parts[keep], states[keep]
        geo = geo[keep] if geo is not None else None
        dev = torch_device(self.device)
        n_parts, n_states = len(vocab.parts), len(vocab.states)
        counts = np.bincount(states, minlength=n_states).astype(np.float64)
        allowed = np.zeros((n_parts, n_states), bool)
        allowed[parts, states] = True
        if self.flip:  # a flipped left_arm crop is shown as a right_arm
            mirror = np.asarray([vocab.parts.id(mirror_part(p)) if mirror_part(p) in vocab.parts else i
                                 for i, p in enumerate(vocab.parts.names)])
            allowed |= allowed[mirror]
        weight = None
        if self.loss.startswith("weighted"):
            # Inverse square-root frequency, mean 1 over the training rows: `none` no longer dominates.
            w = np.where(counts > 0, 1 / np.sqrt(np.maximum(counts, 1)), 0.0)
            w /= (w[states]).mean()
            weight = torch.as_tensor(w, dtype=torch.float32, device=dev)
        x_all = torch.from_numpy(np.ascontiguousarray(crops))
        p_all = torch.from_numpy(parts)
        y_all = torch.from_numpy(states)
        g_all = torch.from_numpy(geo) if geo is not None else None
        sample = x_all[:: max(1, len(x_all) // 20000)].float()  # colour statistics from up to ~20k crops
        mean, std = sample.mean((0, 1, 2)) / 255, sample.std((0, 1, 2)) / 255
        gen = torch_generator(self.seed)
        per_epoch = min(len(y_all), self.max_crops or len(y_all))
        steps = self.epochs * math.ceil(per_epoch / self.batch_size)
        mirror_t = torch.as_tensor(mirror) if self.flip else None
        self.history_ = []
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), torch_threads(self.threads):
            torch.manual_seed(self.seed)
            net = _Net(n_parts, n_states, self.config)
            net.allowed.copy_(torch.from_numpy(allowed))
            net.mean.copy_(mean)
            net.std.copy_(std.clamp(min=1e-3))
            net.to(dev)
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=max(steps, 1))
            bar = tqdm(total=steps, desc="part-state recogniser", unit="batch", disable=not self.progress, leave=False)
            for _ in range(self.epochs):
                net.train()
                order = torch.randperm(len(y_all), generator=gen)[:per_epoch]
                total = 0.0
                for start in range(0, per_epoch, self.batch_size):
                    idx = order[start:start + self.batch_size]
                    x, p, y = x_all[idx], p_all[idx], y_all[idx]
                    g = g_all[idx].clone() if g_all is not None else None
                    x = self._augment(x, gen)
                    if self.flip:
                        flip = torch.rand(len(idx), generator=gen) < 0.5
                        x = torch.where(flip[:, None, None, None], x.flip(2), x)
                        p = torch.where(flip, mirror_t[p], p)
                        if g is not None:
                            g[:, 3] = torch.where(flip, -g[:, 3], g[:, 3])
                    logits = net(x.to(dev), p.to(dev), g.to(dev) if g is not None else None)
                    y = y.to(dev)
                    if self.loss.endswith("focal"):
                        loss = _focal(logits, y, self.gamma, weight)
                    else:
                        loss = nn.functional.cross_entropy(logits, y, weight=weight)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += loss.detach().item() * len(idx)
                    bar.update(1)
                self.history_.append(total / per_epoch)
                bar.set_postfix(loss=f"{self.history_[-1]:.3f}")
            bar.close()
        net.eval()
        self.net_, self.vocab = net, vocab
        return self

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A random shift of up to ``shift`` pixels per batch (edges repeated)."""
        if not self.shift:
            return x
        dx, dy = (int(v) for v in torch.randint(-self.shift, self.shift + 1, (2,), generator=gen))
        s = self.config.size
        ix = torch.clamp(torch.arange(s) + dx, 0, s - 1)
        iy = torch.clamp(torch.arange(s) + dy, 0, s - 1)
        return x[:, iy][:, :, ix]

    # ------------------------------------------------------------------ predicting
    @torch.no_grad()
    def predict_proba(self, crops: np.ndarray, boxes: pd.DataFrame, *, batch_size: int = 1024) -> np.ndarray:
        """State probabilities (rows, states of the vocabulary), one row per crop."""
        if self.net_ is None:
            raise RuntimeError("PartStateRecognizer is not fitted; call fit() or load()")
        crops, parts, geo = self._inputs(crops, boxes, self.vocab)
        dev = next(self.net_.parameters()).device
        out = np.zeros((len(crops), len(self.vocab.states)), np.float32)
        with torch_threads(self.threads):
            for start in range(0, len(crops), batch_size):
                sl = slice(start, start + batch_size)
                g = torch.from_numpy(geo[sl]).to(dev) if geo is not None else None
                logits = self.net_(torch.from_numpy(np.ascontiguousarray(crops[sl])).to(dev),
                                   torch.from_numpy(parts[sl]).to(dev), g)
                out[sl] = torch.softmax(logits, -1).cpu().numpy()
        return out

    def predict(self, crops: np.ndarray, boxes: pd.DataFrame) -> np.ndarray:
        """The most probable state name per row."""
        return self.states_of(self.predict_proba(crops, boxes))

    def states_of(self, probs: np.ndarray) -> np.ndarray:
        """State names of the argmax of each probability row."""
        return np.asarray(self.vocab.states.names, dtype=object)[np.asarray(probs).argmax(1)]

    # ------------------------------------------------------------------ save / load
    def save(self, path) -> Path:
        """Write the state_dict and metadata with ``torch.save`` (temporary file, then renamed)."""
        if self.net_ is None:
            raise RuntimeError("PartStateRecognizer is not fitted; nothing to save")
        path = Path(path)
        data = {"kind": _KIND, "format": FORMAT_VERSION, "config": asdict(self.config),
                "state_dict": {k: v.cpu() for k, v in self.net_.state_dict().items()},
                "vocab": vocab_names(self.vocab)}
        with atomic_path(path) as tmp:
            torch.save(data, tmp)
        return path

    @classmethod
    def load(cls, path, vocab: Vocab | None = None, device="cpu", threads: int | None = None) -> "PartStateRecognizer":
        """Read a model written by :meth:`save` onto ``device``; ``vocab``, when given, must match."""
        data = check_saved(torch.load(path, map_location="cpu", weights_only=True), _KIND, path)
        if vocab is not None:
            check_vocab(data["vocab"], vocab, f"the recogniser in {path}")
        cfg = RecognizerConfig(**data["config"])
        model = cls(size=cfg.size, context=cfg.context, width=cfg.width, hidden=cfg.hidden, dropout=cfg.dropout,
                    geometry=cfg.geometry, stem_stride=cfg.stem_stride, device=device,
                    threads=threads)
        model.config = cfg
        model.vocab = vocab_from_names(data["vocab"])
        net = _Net(len(model.vocab.parts), len(model.vocab.states), cfg)
        net.load_state_dict(data["state_dict"])
        model.net_ = net.to(torch_device(device)).eval()
        return model


# ----------------------------------------------------------------------------- tracks and smoothing


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of inclusive-pixel boxes a (n, 4) and b (m, 4)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1 + 1, 0, None) * np.clip(y2 - y1 + 1, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def link_humans(boxes: pd.DataFrame, min_iou: float = 0.3, max_gap: int = 10) -> np.ndarray:
    """A track id per row: humans linked across a video's frames by their boxes.

    Frames are visited in order; each human joins the live track whose last box overlaps it most
    (IoU >= ``min_iou``, last seen at most ``max_gap`` frames before), greedily from the best pair,
    else starts a new track. Ids are unique over the table.
    """
    _need(boxes, ["video", "frame", "human", *_HUMAN_BOX], "link_humans")
    video = boxes["video"].astype(str).to_numpy()
    frame = boxes["frame"].to_numpy(np.int64)
    human = boxes["human"].to_numpy()
    keys = pd.DataFrame({"video": video, "frame": frame, "human": human})
    first = ~keys.duplicated().to_numpy()  # one row per human
    hrows = np.flatnonzero(first)
    hbox = boxes[_HUMAN_BOX].to_numpy(np.float64)[hrows]
    track = np.zeros(len(hrows), np.int64)
    next_id = 0
    by_video = pd.Series(np.arange(len(hrows))).groupby(video[hrows], sort=False).indices
    for members in by_video.values():
        members = members[np.argsort(frame[hrows[members]], kind="stable")]
        live: list[tuple[int, int, np.ndarray]] = []  # (track, last frame, box)
        fr = frame[hrows[members]]
        _, starts = np.unique(fr, return_index=True)  # fr is sorted: each frame is one run
        for start, stop in zip(starts, np.append(starts[1:], len(fr))):
            cur = members[start:stop]
            t = int(fr[start])
            live = [x for x in live if t - x[1] <= max_gap]
            assigned: dict[int, int] = {}
            if live:
                iou = _iou(hbox[cur], np.stack([x[2] for x in live]))
                for flat in np.argsort(-iou, axis=None, kind="stable"):
                    i, j = divmod(int(flat), len(live))
                    if iou[i, j] < min_iou:
                        break
                    if i not in assigned and j not in assigned.values():
                        assigned[i] = j
            kept = [x for j, x in enumerate(live) if j not in assigned.values()]
            for i, m in enumerate(cur):
                if i in assigned:
                    track[m] = live[assigned[i]][0]
                else:
                    track[m], next_id = next_id, next_id + 1
                kept.append((int(track[m]), t, hbox[m]))
            live = kept
    # Every row takes the track of its human's first row.
    of_human = pd.Series(track, index=pd.MultiIndex.from_frame(keys.iloc[hrows]))
    return of_human.reindex(pd.MultiIndex.from_frame(keys)).to_numpy(np.int64)


def smooth_probs(boxes: pd.DataFrame, probs: np.ndarray, *, window: int = 1, video_level: float = 0.0,
                 tracks: np.ndarray | None = None) -> np.ndarray:
    """Part-state probabilities smoothed along each person's track.

    Per (track, part) in frame order, each row becomes the mean of itself and up to ``window``
    neighbouring rows on each side; then ``video_level`` in [0, 1] blends in the mean over the
    whole track (1: the same distribution, hence the same state, in every frame of the video).
    ``tracks`` defaults to :func:`link_humans`.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(boxes):
        raise ValueError(f"probs must have one row per box row: {probs.shape} for {len(boxes)} rows")
    if not 0 <= video_level <= 1:
        raise ValueError(f"video_level must lie in [0, 1], got {video_level}")
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    tracks = link_humans(boxes) if tracks is None else np.asarray(tracks)
    out = probs.copy()
    frame = boxes["frame"].to_numpy(np.int64)
    groups = pd.Series(np.arange(len(boxes))).groupby([tracks, boxes["part"].astype(str).to_numpy()]).indices
    for rows in groups.values():
        rows = rows[np.argsort(frame[rows], kind="stable")]
        p = probs[rows]
        if window and len(rows) > 1:
            c = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(p, 0)])
            i = np.arange(len(rows))
            lo, hi = np.maximum(i - window, 0), np.minimum(i + window + 1, len(rows))
            p = (c[hi] - c[lo]) / (hi - lo)[:, None]
        if video_level:
            p = (1 - video_level) * p + video_level * p.mean(0, keepdims=True)
        out[rows] = p
    return out
