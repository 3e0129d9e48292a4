"""A temporal action classifier over per-frame part-state sequences (PyTorch).

Input: :func:`tpslab.features.frame_sequences`, i.e. per annotated frame the distribution of each
part's states (ground truth, or predicted probabilities), resampled to a fixed number of steps.
Model: a per-step linear projection, then either a bidirectional GRU (``kind="gru"``) or a small
transformer encoder with learned positions (``kind="transformer"``), masked mean and max pooling
over the real steps, and a linear layer to the actions.

Training is seeded (initialisation, dropout and batch order come from ``seed``; the caller's global
torch random state is left untouched), runs on ``device`` and shows a progress bar per epoch.
Saved files hold a state_dict and plain metadata and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from tpslab.features import frame_sequences
from tpslab.models._common import (NetworkModel, PartsClassifier, check_actions, check_names, labels_for, load_torch,
                                   restore_net, save_torch, torch_device, torch_generator, torch_threads,
                                   vocab_from_names)
from tpslab.vocab import Vocab

KINDS = ("gru", "transformer")
_KIND = "tpslab.TemporalClassifier"


@dataclass
class Sequences:
    """Per-video sequences: ``X`` (videos, steps, features), real ``lengths``, ``videos``, column ``names``."""

    X: np.ndarray
    lengths: np.ndarray
    videos: list[str]
    names: list[str]

    def __post_init__(self):
        if self.X.ndim != 3 or self.X.shape[0] != len(self.videos) or self.X.shape[2] != len(self.names):
            raise ValueError(f"sequence array {self.X.shape} does not match {len(self.videos)} videos "
                             f"x steps x {len(self.names)} names")
        if len(self.lengths) != len(self.videos):
            raise ValueError(f"{len(self.lengths)} lengths for {len(self.videos)} videos")

    def __len__(self) -> int:
        return len(self.videos)


def sequences(parts: pd.DataFrame, vocab: Vocab, *, probs=None, videos: Sequence[str] | None = None,
              length: int = 32) -> Sequences:
    """:func:`tpslab.features.frame_sequences` of ``parts`` as :class:`Sequences`."""
    if videos is None:
        videos = list(pd.unique(parts["video"].astype(str)))
    X, lengths, names = frame_sequences(parts, vocab, probs=probs, videos=videos, length=length)
    return Sequences(X, lengths, list(videos), names)


@dataclass(frozen=True)
class TemporalConfig:
    kind: str = "gru"
    hidden: int = 64
    layers: int = 1
    heads: int = 4
    dropout: float = 0.2
    max_steps: int = 64  # positions the transformer knows


class _Net(nn.Module):
    def __init__(self, n_features: int, n_classes: int, cfg: TemporalConfig):
        super().__init__()
        self.config = cfg
        self.kind = cfg.kind
        h = cfg.hidden
        self.project = nn.Sequential(nn.Linear(n_features, h), nn.ReLU(), nn.Dropout(cfg.dropout))
        if cfg.kind == "gru":
            self.encoder = nn.GRU(h, h // 2, num_layers=cfg.layers, batch_first=True, bidirectional=True)
        else:
            self.positions = nn.Parameter(torch.zeros(1, cfg.max_steps, h))
            layer = nn.TransformerEncoderLayer(h, cfg.heads, dim_feedforward=2 * h, dropout=cfg.dropout,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(2 * h, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, F), ``mask`` (B, T) True on real steps -> logits (B, classes)."""
        z = self.project(x)
        if self.kind == "gru":
            z, _ = self.encoder(z)
        else:
            z = self.encoder(z + self.positions[:, : z.shape[1]], src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(z.dtype)
        mean = (z * m).sum(1) / m.sum(1).clamp(min=1)
        top = z.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # a video without steps
        return self.head(torch.cat([mean, top], -1))


class TemporalClassifier(PartsClassifier, NetworkModel):
    """Action from a per-frame part-state sequence; see the module docstring.

    ``kind``: one of :data:`KINDS`; ``hidden``, ``layers``, ``heads``, ``dropout``: the network
    (:class:`TemporalConfig`); ``epochs``, ``lr``, ``weight_decay``, ``batch_size``: training;
    ``length``: steps per sequence; ``device``: where to train and predict; ``threads``: torch CPU
    threads while training and predicting (None: torch's setting). Fitted: ``net_``, ``names_`` (the
    sequence features), ``classes_`` (the actions), ``vocab_`` (the vocabulary it was trained with),
    ``history_`` (the training loss per epoch).
    """

    def __init__(self, kind: str = "gru", *, hidden: int = 64, layers: int = 1, heads: int = 4, dropout: float = 0.2,
                 epochs: int = 40, lr: float = 3e-3, weight_decay: float = 1e-3, batch_size: int = 16,
                 length: int = 32, seed: int = 0, device="cpu", threads: int | None = None,
                 progress: bool = True):
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
        self.kind, self.hidden, self.layers, self.heads, self.dropout = kind, hidden, layers, heads, dropout
        self.epochs, self.lr, self.weight_decay, self.batch_size = epochs, lr, weight_decay, batch_size
        self.length, self.seed, self.device, self.progress = length, seed, device, progress
        self.threads = threads

    def _config(self) -> TemporalConfig:
        """The network's settings that the parameters give."""
        return TemporalConfig(self.kind, self.hidden, self.layers, self.heads, self.dropout, max(64, self.length))

    def __repr__(self) -> str:
        return f"TemporalClassifier({self.config}, epochs={self.epochs}, {self._state()})"

    def sequences(self, parts: pd.DataFrame, vocab: Vocab | None = None, *, probs=None,
                  videos: Sequence[str] | None = None) -> Sequences:
        """This model's input for a parts table (its trained vocabulary when fitted)."""
        vocab = vocab or getattr(self, "vocab_", None)
        if vocab is None:
            raise ValueError("give the vocabulary (the model is not fitted yet)")
        return sequences(parts, vocab, probs=probs, videos=videos, length=self.length)

    def inputs(self, parts: pd.DataFrame, vocab: Vocab, *, probs=None,
               videos: Sequence[str] | None = None) -> Sequences:
        """The sequences :meth:`fit_parts` fits on (:meth:`sequences`)."""
        return self.sequences(parts, vocab, probs=probs, videos=videos)

    def _tensors(self, seqs: Sequences, dev):
        x = torch.as_tensor(seqs.X, dtype=torch.float32, device=dev)
        steps = torch.arange(seqs.X.shape[1], device=dev)
        mask = steps[None, :] < torch.as_tensor(seqs.lengths, device=dev)[:, None]
        return x, mask

    def fit(self, seqs: Sequences, labels, vocab: Vocab) -> "TemporalClassifier":
        """Train on ``seqs`` with ``labels`` (``{video: action}`` or one per video)."""
        from tqdm.auto import tqdm

        y_names = labels_for(seqs.videos, labels)
        check_actions(y_names, vocab, "TemporalClassifier.fit")
        classes = sorted(set(y_names))
        if len(classes) < 2:
            raise ValueError(f"need videos of at least two actions to fit, got {classes}")
        cfg = self._config()
        if seqs.X.shape[1] > cfg.max_steps:
            raise ValueError(f"sequences have {seqs.X.shape[1]} steps; this model takes at most {cfg.max_steps}")
        dev = torch_device(self.device)
        y = torch.as_tensor([classes.index(c) for c in y_names], device=dev)
        x, mask = self._tensors(seqs, dev)
        gen = torch_generator(self.seed)
        history = []
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), torch_threads(self.threads):
            torch.manual_seed(self.seed)
            net = _Net(x.shape[2], len(classes), cfg).to(dev)
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=self.epochs * (
                (len(y) + self.batch_size - 1) // self.batch_size))
            bar = tqdm(range(self.epochs), desc="temporal model", unit="epoch", disable=not self.progress, leave=False)
            for _ in bar:
                net.train()
                order = torch.randperm(len(y), generator=gen).to(dev)
                total = 0.0
                for start in range(0, len(y), self.batch_size):
                    idx = order[start:start + self.batch_size]
                    loss = nn.functional.cross_entropy(net(x[idx], mask[idx]), y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += loss.detach().item() * len(idx)
                history.append(total / len(y))
                bar.set_postfix(loss=f"{history[-1]:.3f}")
        net.eval()
        self.net_, self.names_, self.classes_, self.vocab_ = net, list(seqs.names), classes, vocab
        self.history_ = history
        return self

    def _check(self, seqs: Sequences):
        self._check_fitted()
        check_names(self.names_, seqs.names, "sequence features")

    @torch.no_grad()
    def predict_proba(self, seqs: Sequences) -> pd.DataFrame:
        """Action probabilities, one row per video, one column per trained action."""
        self._check(seqs)
        dev = next(self.net_.parameters()).device
        x, mask = self._tensors(seqs, dev)
        with torch_threads(self.threads):
            p = torch.softmax(self.net_(x, mask), -1).cpu().numpy()
        return pd.DataFrame(p, index=pd.Index(seqs.videos, name="video"), columns=self.classes_)

    def predict(self, seqs: Sequences) -> np.ndarray:
        """The predicted action name per video."""
        p = self.predict_proba(seqs)
        return np.asarray(self.classes_, dtype=object)[p.to_numpy().argmax(1)]

    def score(self, seqs: Sequences, labels) -> float:
        return float(np.mean(self.predict(seqs) == labels_for(seqs.videos, labels)))

    # ------------------------------------------------------------------ save / load
    def save(self, path) -> Path:
        """Write the state_dict and metadata with ``torch.save`` (temporary file, then renamed)."""
        self._check_fitted()
        return save_torch(path, _KIND, self.net_, self.vocab_, config=asdict(self.config), length=self.length,
                          names=self.names_, classes=self.classes_)

    @classmethod
    def load(cls, path, vocab: Vocab | None = None, device="cpu", threads: int | None = None) -> "TemporalClassifier":
        """Read a model written by :meth:`save` onto ``device``; ``vocab``, when given, must match."""
        data = load_torch(path, _KIND, vocab, "the temporal model")
        cfg = TemporalConfig(**data["config"])
        model = cls(cfg.kind, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, dropout=cfg.dropout,
                    length=data["length"], device=device, threads=threads)
        model.net_ = restore_net(_Net(len(data["names"]), len(data["classes"]), cfg), data, device)
        model.names_, model.classes_ = data["names"], data["classes"]
        model.vocab_ = vocab_from_names(data["vocab"])
        return model
