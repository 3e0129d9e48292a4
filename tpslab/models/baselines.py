"""The challenge's majority baseline: per (action, part), the most frequent training state, for every frame.

Given an action for a video (predicted by any classifier, or the truth for an oracle study), every
part box of every frame of the video gets the state its part most often has in training videos of
that action. A (action, part) pair never seen in training falls back to the part's most frequent
state over all actions, and a part never seen at all to ``none``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from tpslab.fileio import atomic_path
from tpslab.models._common import (Estimator, check_actions, check_vocab, labels_for, read_saved, saved_data,
                                   vocab_from_names, vocab_names)
from tpslab.vocab import Vocab

_KIND = "tpslab.MajorityBaseline"


class MajorityBaseline(Estimator):
    """Per (action, part) majority state; see the module docstring.

    It has no parameters. Fitted: ``vocab_`` (the vocabulary it was fitted with), ``counts_`` (actions,
    parts, states) training counts, ``states_`` (actions, parts) the majority state ids.
    """

    def __repr__(self) -> str:
        return f"MajorityBaseline({self._state()})"

    def fit(self, parts: pd.DataFrame, labels, vocab: Vocab) -> "MajorityBaseline":
        """Count states per (action, part) over the rows of ``parts`` whose video has a label.

        ``labels``: ``{video: action}`` (a dict or Series); videos of ``parts`` without a label are
        ignored, so a whole dataset's parts table can be passed with the training videos' labels.
        """
        videos = parts["video"].astype(str)
        keep = videos.isin(set(labels.keys()) if isinstance(labels, Mapping) else set(labels.index)).to_numpy()
        if not keep.any():
            raise ValueError("no row of the parts table belongs to a labelled video")
        sel = parts[keep]
        actions = labels_for(list(pd.unique(videos[keep])), labels)
        check_actions(actions, vocab, "MajorityBaseline.fit")
        action_of = {v: vocab.actions.id(a) for v, a in zip(pd.unique(videos[keep]), actions)}
        a = videos[keep].map(action_of).to_numpy(np.int64)
        p = vocab.parts.codes(sel["part"])
        s = vocab.states.codes(sel["state"])
        ok = (p >= 0) & (s >= 0)
        counts = np.zeros((len(vocab.actions), len(vocab.parts), len(vocab.states)), np.int64)
        np.add.at(counts, (a[ok], p[ok], s[ok]), 1)
        self._learned(vocab, counts)
        return self

    def _learned(self, vocab: Vocab, counts: np.ndarray) -> None:
        """Set the fitted attributes from the training ``counts``."""
        # argmax keeps the first (lowest vocabulary id) of tied states: deterministic.
        per_part = counts.sum(0)
        fallback = np.where(per_part.any(-1), per_part.argmax(-1), vocab.states.id("none")
                            if "none" in vocab.states else 0)
        seen = counts.any(-1)
        self.vocab_, self.counts_ = vocab, counts
        self.states_ = np.where(seen, counts.argmax(-1), fallback[None, :])

    def state_of(self, action: str, part: str) -> str:
        """The state predicted for ``part`` in a video of ``action``."""
        self._check_fitted()
        return self.vocab_.states.name(self.states_[self.vocab_.actions.id(action), self.vocab_.parts.id(part)])

    def table(self) -> pd.DataFrame:
        """The predicted state of every (action, part): actions as rows, parts as columns."""
        self._check_fitted()
        names = np.asarray(self.vocab_.states.names, dtype=object)[self.states_]
        return pd.DataFrame(names, index=pd.Index(self.vocab_.actions.names, name="action"),
                            columns=list(self.vocab_.parts.names))

    def predict(self, boxes: pd.DataFrame, actions, vocab: Vocab | None = None) -> np.ndarray:
        """The state name for each row of ``boxes`` (columns ``video, part``), given ``{video: action}``.

        ``vocab``, when given, must be the vocabulary the baseline was fitted with.
        """
        self._check_fitted()
        if vocab is not None:
            check_vocab(vocab_names(self.vocab_), vocab, "MajorityBaseline")
        videos = boxes["video"].astype(str)
        uniq = list(pd.unique(videos))
        acts = labels_for(uniq, actions)
        check_actions(acts, self.vocab_, "MajorityBaseline.predict")
        a = videos.map({v: self.vocab_.actions.id(x) for v, x in zip(uniq, acts)}).to_numpy(np.int64)
        p = self.vocab_.parts.codes(boxes["part"])
        if (p < 0).any():
            raise ValueError("boxes has rows without a part name")
        return np.asarray(self.vocab_.states.names, dtype=object)[self.states_[a, p]]

    # ------------------------------------------------------------------ save / load
    def save(self, path) -> Path:
        """Write the fitted baseline as JSON (vocabularies and counts; the majority is recomputed on load)."""
        self._check_fitted()
        path = Path(path)
        vocab = self.vocab_
        data = saved_data(_KIND, vocab, counts={
            f"{a}|{p}": {s: int(c) for s, c in zip(vocab.states.names, row) if c}
            for a, arow in zip(vocab.actions.names, self.counts_) for p, row in zip(vocab.parts.names, arow)
            if row.any()})
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path, vocab: Vocab | None = None) -> "MajorityBaseline":
        """Read a baseline written by :meth:`save`; ``vocab``, when given, must match the saved one."""
        data = read_saved(json.loads(Path(path).read_text(encoding="utf-8")), _KIND, path, vocab, "the baseline")
        saved_vocab = vocab_from_names(data["vocab"])
        counts = np.zeros((len(saved_vocab.actions), len(saved_vocab.parts), len(saved_vocab.states)), np.int64)
        for key, row in data["counts"].items():
            a, p = key.split("|")
            for s, c in row.items():
                counts[saved_vocab.actions.id(a), saved_vocab.parts.id(p), saved_vocab.states.id(s)] = c
        model = cls()
        model._learned(saved_vocab, counts)
        return model
