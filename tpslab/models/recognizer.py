"""Part states from pixels: a CNN on a crop around each part box.

Boxes come from a table shaped like the dataset's ``parts`` table (columns ``video, frame, human,
human_x1..human_y2, part, part_x1..part_y2`` and, to train, ``state``): ground-truth boxes, or the
boxes of an external detections file read by :func:`tpslab.pipeline.boxes_from_predictions`.

- crops come from :mod:`tpslab.crops`: :func:`crop_parts` holds every crop of a table in memory,
  :class:`~tpslab.crops.PartCrops` reads them on demand (the streaming path: memory does not grow with
  the data); both cut the same crops. :func:`box_geometry` describes each part box relative to its
  human box (size, shape, position);
- :class:`PartStateRecognizer` embeds the crop with a backbone (a small CNN with GroupNorm by default,
  or any ``torch.nn.Module`` mapping a crop batch to features, see :class:`Backbone`), adds the part
  identity and the geometry, and predicts a state. States never seen for a part in training are masked
  out, the loss copes with the dominant ``none`` state (see :data:`LOSSES`), and training flips crops
  left-right while swapping the part (``left_arm`` <-> ``right_arm``). Training runs in
  :mod:`tpslab.models.training` (checkpoints, resume, several processes under ``torchrun``);
- :func:`link_humans` and :func:`smooth_probs` link humans across annotated frames and smooth each
  part's probabilities along a person's track, optionally blending in the person's video-level
  distribution (one state per part for the whole video when ``video_level=1``).

Training is seeded and leaves the caller's global torch random state untouched. tpslab never
downloads weights: a pretrained backbone is one the caller built (e.g. from its own cache).
"""

from __future__ import annotations

import copy
import importlib
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from tpslab.crops import (GEOMETRY, HUMAN_BOX, PartCrops, box_geometry, crop_parts, need_columns,  # noqa: F401
                          video_paths)
from tpslab.models._common import (NetworkModel, check_finite, load_torch, restore_net, save_torch, torch_threads,
                                   vocab_from_names)
from tpslab.vocab import Vocab

#: ``weighted``: cross-entropy with class weights 1/sqrt(frequency) (the default: frequent states such
#: as ``none`` weigh less, rare ones more); ``focal``: focal loss (easy, mostly frequent, examples
#: weigh less); ``weighted_focal``: both; ``ce``: plain cross-entropy (best top-1, worst on rare states).
LOSSES = ("weighted", "focal", "weighted_focal", "ce")
#: Normalisation layers of the default CNN: ``group`` (GroupNorm: each crop on its own, so training is
#: the same however a batch is split across processes) or ``batch`` (BatchNorm; models saved before
#: GroupNorm became the default use it).
NORMS = ("group", "batch")
_KIND = "tpslab.PartStateRecognizer"
_need = need_columns
_HUMAN_BOX = HUMAN_BOX


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
    norm: str = "group"
    backbone: str | None = None  # the name of a custom backbone (None: the small CNN)
    features: int | None = None  # the size of a custom backbone's features


@dataclass
class Backbone:
    """A custom feature extractor for :class:`PartStateRecognizer`.

    ``module`` maps a float batch (B, 3, size, size), normalised with ``mean``/``std`` (per channel, for
    pixels in [0, 1]), to features (B, F) or feature maps (B, F, h, w) (averaged over h, w). ``size``:
    the crop size it expects (None: the recogniser's ``size``); ``mean``/``std``: its normalisation (None:
    estimated from the training crops); ``features``: F (None: found by running the module once);
    ``name``: recorded in saved models (default: the module's class). The module is copied, never changed.
    """

    module: nn.Module
    size: int | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    features: int | None = None
    name: str | None = None


def resolve_backbone(spec) -> Backbone | None:
    """A :class:`Backbone` from ``spec``: None, a Backbone, a ``torch.nn.Module``, or ``"module:callable"``
    (imported and called without arguments; it returns a Module or a Backbone)."""
    if spec is None:
        return None
    if isinstance(spec, Backbone):
        if spec.name is None:
            spec = replace(spec, name=f"{type(spec.module).__module__}.{type(spec.module).__qualname__}")
        return spec
    if isinstance(spec, nn.Module):
        return resolve_backbone(Backbone(spec))
    if isinstance(spec, str):
        mod, _, attr = spec.partition(":")
        if not mod or not attr:
            raise ValueError(f"a backbone is named 'package.module:callable', got {spec!r}")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"cannot import the backbone {spec!r}: {e}") from None
        try:
            made = factory()
        except Exception as e:  # the caller's code: whatever it raises means this spec is unusable
            raise ValueError(f"the backbone factory {spec!r} failed: {type(e).__name__}: {e}") from e
        if not isinstance(made, (nn.Module, Backbone)):
            raise ValueError(f"the backbone factory {spec!r} returned {type(made).__name__}, not a torch.nn.Module "
                             "or a Backbone")
        return replace(resolve_backbone(made), name=spec)
    raise TypeError(f"backbone must be a torch.nn.Module, a Backbone or 'module:callable', got {type(spec).__name__}")


def _conv(cin: int, cout: int, norm: str, stride: int = 1) -> list[nn.Module]:
    layer = nn.GroupNorm(min(8, cout), cout) if norm == "group" else nn.BatchNorm2d(cout)
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), layer, nn.ReLU(inplace=True)]


def _small_cnn(cfg: RecognizerConfig) -> nn.Sequential:
    w, n = cfg.width, cfg.norm
    stem = _conv(3, w, n, 2) if cfg.stem_stride == 2 else [*_conv(3, w, n), *_conv(w, w, n), nn.MaxPool2d(2)]
    return nn.Sequential(*stem, *_conv(w, 2 * w, n), nn.MaxPool2d(2), *_conv(2 * w, 4 * w, n), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten())


class _Net(nn.Module):
    def __init__(self, n_parts: int, n_states: int, cfg: RecognizerConfig, backbone: nn.Module | None = None):
        super().__init__()
        self.config = cfg
        self.features = _small_cnn(cfg) if backbone is None else backbone
        n_features = 16 * 4 * cfg.width if backbone is None else int(cfg.features)
        self.part = nn.Embedding(n_parts, cfg.part_dim)
        n_geo = len(GEOMETRY) if cfg.geometry else 0
        self.head = nn.Sequential(nn.Linear(n_features + cfg.part_dim + n_geo, cfg.hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, n_states))
        # allowed[p, s]: state s was seen for part p in training; others are masked out.
        self.register_buffer("allowed", torch.ones(n_parts, n_states, dtype=torch.bool))
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("std", torch.ones(3))

    def embed(self, images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> backbone features (B, F)."""
        x = (images.permute(0, 3, 1, 2).float() / 255 - self.mean[:, None, None]) / self.std[:, None, None]
        x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        f = self.features(x)
        if f.ndim == 4:
            f = f.mean((2, 3))
        return f.flatten(1)

    def forward(self, images: torch.Tensor, parts: torch.Tensor, geometry: torch.Tensor | None = None,
                dropout_mask: torch.Tensor | None = None, channels_last: bool = False) -> torch.Tensor:
        """``images`` uint8 (B, H, W, 3), ``parts`` (B,) ids, ``geometry`` (B, G) or None -> logits (B, states).

        ``dropout_mask`` (B, hidden), already scaled: the head's dropout in training (else drawn here).
        """
        z = [self.embed(images, channels_last), self.part(parts)]
        if geometry is not None:
            z.append(geometry)
        z = [t.to(z[0].dtype) for t in z]
        h = self.head[1](self.head[0](torch.cat(z, 1)))
        if self.training:
            h = h * dropout_mask.to(h.dtype) if dropout_mask is not None else self.head[2](h)
        logits = self.head[3](h)
        return logits.masked_fill(~self.allowed[parts], -1e4)


# ----------------------------------------------------------------------------- the recogniser


class PartStateRecognizer(NetworkModel):
    """Part state from a part crop, its part name and its box geometry; see the module docstring.

    ``size``/``context``: the crops it expects (:func:`crop_parts` arguments, recorded so that saved
    models crop the same way); ``width``: channels of the first convolutions; ``norm``: see :data:`NORMS`;
    ``backbone``: a custom feature extractor (a ``torch.nn.Module``, a :class:`Backbone`, or
    ``"module:callable"``; default: the small CNN); ``mean``/``std``: the input normalisation (default:
    the backbone's, else estimated from the training crops); ``loss``: one of :data:`LOSSES`
    (``gamma`` for the focal ones); ``epochs``, ``batch_size`` (the global batch, over all processes),
    ``lr`` (peak of a one-cycle schedule), ``weight_decay`` (AdamW), ``clip_grad`` (gradient norm,
    None: no clipping); ``max_crops``: crops drawn per epoch (default: all); ``flip``: left-right flip
    with part swap as augmentation; ``shift``: random shift in pixels; ``geometry``: use
    :func:`box_geometry`; ``stem_stride``: 2 (fast) or 1 (a full-resolution stem); ``device``: where
    to train and predict; ``amp``: mixed precision on CUDA (never on the CPU); ``threads``: torch CPU
    threads while training and predicting (None: torch's setting; 1 is often fastest on a busy machine).
    Fitted: ``net_``, ``vocab_`` (the vocabulary it was trained with), ``history_`` (the training loss
    per epoch), ``metrics_`` (each epoch's record).
    """

    def __init__(self, *, size: int = 32, context: float = 1.5, width: int = 16, hidden: int = 128,
                 dropout: float = 0.2, geometry: bool = True, stem_stride: int = 2, norm: str = "group",
                 backbone=None, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 loss: str = "weighted", gamma: float = 2.0, epochs: int = 4, batch_size: int = 128,
                 lr: float = 3e-3, weight_decay: float = 1e-4, clip_grad: float | None = 1.0,
                 max_crops: int | None = None, flip: bool = True, shift: int = 2, seed: int = 0, device="cpu",
                 amp: bool = True, threads: int | None = None, progress: bool = True):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.size, self.context, self.width, self.hidden, self.dropout = size, context, width, hidden, dropout
        self.geometry, self.stem_stride, self.norm = geometry, stem_stride, norm
        self.backbone = resolve_backbone(backbone)  # the spec in one form (a factory is called once)
        self.mean, self.std = mean, std
        self.loss, self.gamma, self.epochs, self.batch_size, self.lr = loss, gamma, epochs, batch_size, lr
        self.weight_decay, self.clip_grad, self.max_crops, self.flip, self.shift = (weight_decay, clip_grad,
                                                                                    max_crops, flip, shift)
        self.seed, self.device, self.amp, self.threads, self.progress = seed, device, amp, threads, progress

    def _config(self) -> RecognizerConfig:
        """The network's settings that the parameters give (a backbone's crop size before ``size``)."""
        bb = self.backbone
        size = int(bb.size) if bb is not None and bb.size is not None else self.size
        return RecognizerConfig(size, self.context, self.width, 16, self.hidden, self.dropout, self.geometry,
                                self.stem_stride, self.norm, None if bb is None else bb.name,
                                None if bb is None else bb.features)

    def __repr__(self) -> str:
        return f"PartStateRecognizer({self.config}, loss={self.loss!r}, epochs={self.epochs}, {self._state()})"

    # ------------------------------------------------------------------ inputs
    def crops(self, boxes: pd.DataFrame, paths: Mapping[str, str], **kwargs) -> np.ndarray:
        """:func:`crop_parts` with this model's crop size and context (every crop in memory)."""
        return crop_parts(boxes, paths, size=self.config.size, context=self.config.context, **kwargs)

    def dataset(self, boxes: pd.DataFrame, paths: Mapping[str, str], vocab: Vocab, *,
                backend: str = "auto") -> PartCrops:
        """A :class:`~tpslab.crops.PartCrops` with this model's crop size and context: crops read on demand
        from ``paths`` (video files, or rawframes folders: :func:`tpslab.crops.rawframe_paths`)."""
        return PartCrops(boxes, paths, vocab, size=self.config.size, context=self.config.context,
                         geometry=self.config.geometry, backend=backend)

    def _check_crops(self, crops: np.ndarray, boxes: pd.DataFrame) -> None:
        size = self.config.size
        if (not isinstance(crops, np.ndarray) or crops.ndim != 4 or crops.shape[1:] != (size, size, 3)
                or crops.dtype != np.uint8):
            got = f"{crops.dtype} {crops.shape}" if isinstance(crops, np.ndarray) else type(crops).__name__
            raise ValueError(f"crops must be uint8 (rows, {size}, {size}, 3) as crop_parts(size={size}) makes them; "
                             f"got {got}")
        if len(crops) != len(boxes):
            raise ValueError(f"{len(crops)} crops for {len(boxes)} box rows")

    def _as_dataset(self, crops, boxes: pd.DataFrame | None, vocab: Vocab) -> PartCrops:
        if isinstance(crops, PartCrops):
            if boxes is not None:
                raise ValueError("give either a PartCrops dataset or crops with their boxes, not both")
            if (crops.size, crops.context) != (self.config.size, self.config.context):
                raise ValueError(f"the dataset cuts crops of size {crops.size}, context {crops.context}; this model "
                                 f"expects size {self.config.size}, context {self.config.context} "
                                 "(make it with model.dataset(...))")
            if (crops.geometry is None) == self.config.geometry:
                raise ValueError("the dataset's box geometry setting differs from the model's")
            return crops
        if boxes is None:
            raise ValueError("give the crops' box table (or a PartCrops dataset)")
        self._check_crops(crops, boxes)
        return PartCrops.from_array(crops, boxes, vocab, geometry=self.config.geometry)

    # ------------------------------------------------------------------ training
    def fit(self, crops, boxes: pd.DataFrame | None = None, vocab: Vocab | None = None, *,
            val: PartCrops | None = None, workers: int = 0, balance: str | None = None,
            cap_per_state: int | None = None, group_frames: bool = True, video_block="auto",
            patience: int | None = None, run_dir=None, resume: bool = False, log=None) -> "PartStateRecognizer":
        """Train on ``crops`` and the ``part``/``state`` (and box) columns of ``boxes``.

        ``crops``: crops in memory (from :meth:`crops`) with their ``boxes`` and ``vocab``, or a
        :class:`~tpslab.crops.PartCrops` (from :meth:`dataset`: read on demand, ``boxes``/``vocab`` not
        given). Rows without a state are left out. ``val``: a PartCrops to report validation metrics
        on (and stop early with ``patience``); ``workers``: DataLoader worker processes;
        ``balance``/``cap_per_state``/``group_frames``/``video_block``: sampling
        (:class:`~tpslab.crops.CropSampler`; by default blocks of a few videos read forward when the crops
        come from video files, so that no frame is decoded twice);
        ``run_dir``/``resume``: checkpoints and metrics in a run folder; ``log``: called with a line per
        epoch. See :func:`tpslab.models.training.fit`, which does the work (also under ``torchrun``).
        """
        from tpslab.models.training import fit

        if not isinstance(crops, PartCrops):
            if vocab is None:
                raise ValueError("give the vocabulary of the crops' boxes")
            _need(boxes if boxes is not None else pd.DataFrame(), ["state"], "training the recogniser")
        train = self._as_dataset(crops, boxes, vocab if vocab is not None else crops.vocab)
        if val is not None:
            val = self._as_dataset(val, None, train.vocab)
        return fit(self, train, val, workers=workers, balance=balance, cap_per_state=cap_per_state,
                   group_frames=group_frames, video_block=video_block, patience=patience, run_dir=run_dir,
                   resume=resume, log=log)

    def _build_net(self, vocab: Vocab, allowed: np.ndarray, train: PartCrops | None) -> _Net:
        """A new network for ``vocab`` (initialised from ``seed``; call inside a forked torch RNG): its
        allowed states, and its normalisation (given, the backbone's, or estimated from ``train``)."""
        bb = self.backbone
        cfg = self._config()
        module = None
        if bb is not None:
            module = copy.deepcopy(bb.module)
            if cfg.features is None:
                cfg = replace(cfg, features=_feature_size(module, cfg.size))
        torch.manual_seed(self.seed)
        net = _Net(len(vocab.parts), len(vocab.states), cfg, module)
        net.allowed.copy_(torch.from_numpy(allowed))
        mean = self.mean if self.mean is not None else (None if bb is None else bb.mean)
        std = self.std if self.std is not None else (None if bb is None else bb.std)
        if mean is not None and std is not None:
            mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        elif train is not None:
            mean, std = train.colour_stats(seed=self.seed)
        else:
            return net
        net.mean.copy_(torch.as_tensor(mean))
        net.std.copy_(torch.as_tensor(std).clamp(min=1e-3))
        return net

    # ------------------------------------------------------------------ predicting
    def predict_proba(self, crops, boxes: pd.DataFrame | None = None, *, batch_size: int = 1024,
                      workers: int = 0) -> np.ndarray:
        """State probabilities (rows, states of the vocabulary), one row per crop.

        ``crops``: crops in memory with their ``boxes``, or a :class:`~tpslab.crops.PartCrops` (read in
        batches of ``batch_size`` rows by ``workers`` DataLoader workers).
        """
        self._check_fitted()
        ds = self._as_dataset(crops, boxes, self.vocab_)
        batches = [list(range(i, min(i + batch_size, len(ds)))) for i in range(0, len(ds), batch_size)]
        rows, probs = self.predict_batches(ds, batches, workers=workers)
        out = np.zeros((len(ds), len(self.vocab_.states)), np.float32)
        out[rows] = probs
        return out

    @torch.no_grad()
    def predict_batches(self, ds: PartCrops, batches, *, workers: int = 0, progress: bool = False,
                        desc: str = "part states") -> tuple[np.ndarray, np.ndarray]:
        """``(rows, probabilities)`` of the rows of ``batches`` (lists of rows of ``ds``, e.g. a
        :class:`~tpslab.crops.VideoBatches`), read by ``workers`` DataLoader workers."""
        from tqdm.auto import tqdm

        from tpslab.crops import batch_loader

        self._check_fitted()
        if ds.vocab.parts != self.vocab_.parts or ds.vocab.states != self.vocab_.states:
            raise ValueError("the crops' part or state vocabulary differs from the recogniser's")
        dev = next(self.net_.parameters()).device
        cuda = dev.type == "cuda"
        self.net_.eval()
        rows, out = [], []
        total = len(batches) if hasattr(batches, "__len__") else None
        with torch_threads(self.threads):
            loader = batch_loader(ds, batches, workers)
            for batch in tqdm(loader, total=total, desc=desc, unit="batch", disable=not progress, leave=False):
                g = batch.get("geometry")
                cast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and self.amp and \
                    torch.cuda.is_bf16_supported() else nullcontext()
                with cast:
                    logits = self.net_(batch["images"].to(dev), batch["parts"].to(dev),
                                       g.to(dev) if g is not None else None, channels_last=cuda)
                out.append(torch.softmax(logits.float(), -1).cpu().numpy())
                rows.append(batch["index"].numpy())
        n = len(self.vocab_.states)
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, n), np.float32)
        return np.concatenate(rows), np.concatenate(out).astype(np.float32)

    def predict(self, crops, boxes: pd.DataFrame | None = None) -> np.ndarray:
        """The most probable state name per row."""
        return self.states_of(self.predict_proba(crops, boxes))

    def states_of(self, probs: np.ndarray) -> np.ndarray:
        """State names of the argmax of each probability row."""
        return np.asarray(self.vocab_.states.names, dtype=object)[np.asarray(probs).argmax(1)]

    # ------------------------------------------------------------------ save / load
    def save(self, path) -> Path:
        """Write the state_dict and metadata with ``torch.save`` (temporary file, then renamed)."""
        self._check_fitted()
        return save_torch(path, _KIND, self.net_, self.vocab_, config=asdict(self.config))

    @classmethod
    def load(cls, path, vocab: Vocab | None = None, device="cpu", threads: int | None = None,
             backbone=None) -> "PartStateRecognizer":
        """Read a model written by :meth:`save` onto ``device``; ``vocab``, when given, must match.

        A model trained with a custom backbone needs ``backbone``: the same architecture (a Module, a
        :class:`Backbone` or ``"module:callable"``); its weights are then those saved.
        """
        data = load_torch(path, _KIND, vocab, "the recogniser")
        check_finite(data["state_dict"], path)
        saved = {"norm": "batch", "backbone": None, "features": None, **data["config"]}  # older files: BatchNorm
        cfg = RecognizerConfig(**saved)
        if cfg.backbone is not None and backbone is None:
            raise ValueError(f"{path} was trained with the backbone {cfg.backbone!r}; pass backbone= (the same "
                             "architecture: a Module, a Backbone or 'module:callable') to load it")
        if cfg.backbone is None and backbone is not None:
            raise ValueError(f"{path} was trained with the default CNN, not a custom backbone")
        model = cls(size=cfg.size, context=cfg.context, width=cfg.width, hidden=cfg.hidden, dropout=cfg.dropout,
                    geometry=cfg.geometry, stem_stride=cfg.stem_stride, norm=cfg.norm, backbone=backbone,
                    device=device, threads=threads)
        vocab = vocab_from_names(data["vocab"])
        module = None if model.backbone is None else copy.deepcopy(model.backbone.module)
        model.net_ = restore_net(_Net(len(vocab.parts), len(vocab.states), cfg, module), data, device)
        model.vocab_ = vocab
        return model


@torch.no_grad()
def _feature_size(module: nn.Module, size: int) -> int:
    was = module.training
    module.eval()
    f = module(torch.zeros(2, 3, size, size))
    module.train(was)
    if f.ndim == 4:
        f = f.mean((2, 3))
    return int(f.flatten(1).shape[1])


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
