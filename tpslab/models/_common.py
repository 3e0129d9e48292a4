"""What the models share: their conventions (:class:`Estimator`), labels, feature names, vocabularies,
saved files, seeds and torch settings."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from tpslab.fileio import atomic_path
from tpslab.vocab import Vocab

FORMAT_VERSION = 1  # of the files the models save; bump when their content changes


class Estimator:
    """scikit-learn's conventions, shared by tpslab's models.

    ``__init__`` stores each parameter under its own name (and checks it); what :meth:`fit` or
    ``load`` learns is stored in attributes whose names end in ``_`` and that exist only once fitted;
    :meth:`_check_fitted` is the one check (on ``__sklearn_is_fitted__``, scikit-learn's name for it;
    :func:`is_fitted` asks it).
    """

    #: the fitted attribute whose presence says that the model is fitted
    _FITTED = "vocab_"

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, self._FITTED, None) is not None

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() or load()")

    def _state(self) -> str:
        return "fitted" if self.__sklearn_is_fitted__() else "not fitted"


class NetworkModel(Estimator):
    """A torch model whose fitted network ``net_`` carries its settings (``net_.config``)."""

    @property
    def config(self):
        """The network's settings: the fitted network's, else those the parameters give."""
        return self.net_.config if self.__sklearn_is_fitted__() else self._config()

    def _config(self):
        """The network's settings that the parameters give."""
        raise NotImplementedError


def is_fitted(model) -> bool:
    """Whether ``model`` (one of tpslab's models) is fitted."""
    return bool(model.__sklearn_is_fitted__())


class PartsClassifier(Estimator):
    """An action classifier whose input is built from a parts table (:meth:`inputs`)."""

    def inputs(self, parts: pd.DataFrame, vocab: Vocab, *, probs=None, videos: Sequence[str] | None = None):
        raise NotImplementedError

    def fit(self, inputs, labels, vocab: Vocab):
        raise NotImplementedError

    def fit_parts(self, parts: pd.DataFrame, labels, vocab: Vocab, *, probs=None,
                  videos: Sequence[str] | None = None):
        """Build this model's input from ``parts`` (soft counts with ``probs``) and fit; ``videos``
        default: the labelled ones present in ``parts``."""
        if videos is None:
            present = set(parts["video"].astype(str))
            videos = [v for v in (labels.keys() if hasattr(labels, "keys") else labels.index) if v in present]
        return self.fit(self.inputs(parts, vocab, probs=probs, videos=videos), labels, vocab)


def video_labels(dataset, videos: Sequence[str] | None = None) -> dict[str, str]:
    """``{video: action}`` from a dataset's ``videos`` table (optionally only ``videos``)."""
    table = dataset.videos
    labels = dict(zip(table["video"].astype(str), table["label"].astype(object)))
    if videos is None:
        return {v: str(a) for v, a in labels.items() if isinstance(a, str)}
    missing = [v for v in videos if not isinstance(labels.get(v), str)]
    if missing:
        raise KeyError(f"no action label for videos {missing[:5]}")
    return {v: str(labels[v]) for v in videos}


def labels_for(videos: Sequence[str], labels) -> np.ndarray:
    """The label of each video, from a mapping (or Series) ``video -> action``; missing ones raise."""
    if isinstance(labels, pd.Series):
        labels = labels.to_dict()
    if isinstance(labels, Mapping):
        missing = [v for v in videos if v not in labels]
        if missing:
            raise KeyError(f"no action label for {len(missing)} video(s), e.g. {missing[:5]}")
        return np.asarray([str(labels[v]) for v in videos], dtype=object)
    out = np.asarray(list(labels), dtype=object)
    if len(out) != len(videos):
        raise ValueError(f"{len(out)} labels for {len(videos)} videos")
    return out


def check_actions(actions: Sequence[str], vocab: Vocab, where: str) -> None:
    """Raise when an action name is not in the vocabulary's actions."""
    unknown = sorted({a for a in actions if a not in vocab.actions})
    if unknown:
        raise ValueError(f"{where}: actions {unknown[:5]} are not in the action vocabulary "
                         f"({len(vocab.actions)} names, e.g. {list(vocab.actions.names[:3])})")


def check_names(expected: Sequence[str], got: Sequence[str], what: str = "features") -> None:
    """Raise a ValueError saying how ``got`` differs from the ``expected`` column names."""
    expected, got = list(expected), list(got)
    if expected == got:
        return
    if len(expected) != len(got):
        detail = f"expected {len(expected)} columns, got {len(got)}"
    else:
        i = next(i for i, (a, b) in enumerate(zip(expected, got)) if a != b)
        detail = f"column {i} is {got[i]!r}, expected {expected[i]!r}"
    missing = [n for n in expected if n not in set(got)][:3]
    extra = [n for n in got if n not in set(expected)][:3]
    raise ValueError(f"{what} do not match the ones the model was trained on: {detail}"
                     + (f"; missing e.g. {missing}" if missing else "")
                     + (f"; unexpected e.g. {extra}" if extra else "")
                     + ". Build them with the same vocabulary and options.")


def vocab_names(vocab: Vocab) -> dict[str, list[str]]:
    """The four vocabularies as plain lists (what saved models record)."""
    return {k: list(getattr(vocab, k).names) for k in ("actions", "parts", "states", "objects")}


def vocab_from_names(names: dict[str, list[str]]) -> Vocab:
    """The inverse of :func:`vocab_names`."""
    from tpslab.vocab import Vocabulary

    return Vocab(Vocabulary("action", names["actions"]), Vocabulary("part", names["parts"]),
                 Vocabulary("part state", names["states"]), Vocabulary("object", names["objects"]))


def check_vocab(saved: dict[str, list[str]], vocab: Vocab, what: str) -> None:
    """Raise when ``vocab`` differs from the vocabularies a model was trained with."""
    for kind, names in saved.items():
        now = list(getattr(vocab, kind).names)
        if now != names:
            diff = sorted(set(now) ^ set(names))[:5]
            raise ValueError(f"{what} was trained with another {kind} vocabulary ({len(names)} names) than the one "
                             f"given ({len(now)} names)" + (f"; differing names e.g. {diff}" if diff else
                                                            "; same names in another order"))


def check_saved(obj, kind: str, path) -> dict:
    """The dict a model saved, after checking it is one of ``kind`` in the current format."""
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        found = obj.get("kind") if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{path}: not a saved {kind} (found {found!r})")
    if obj.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: saved with format {obj.get('format')}, this tpslab reads format {FORMAT_VERSION}")
    return obj


def saved_data(kind: str, vocab: Vocab, **fields) -> dict:
    """What a model saves: its ``kind``, the format version, ``fields`` and its vocabularies."""
    return {"kind": kind, "format": FORMAT_VERSION, **fields, "vocab": vocab_names(vocab)}


def read_saved(obj, kind: str, path, vocab: Vocab | None, what: str) -> dict:
    """The dict of a saved model of ``kind`` (:func:`check_saved`); ``vocab``, when given, must be the
    one it was trained with (``what`` names the model in the error)."""
    data = check_saved(obj, kind, path)
    if vocab is not None:
        check_vocab(data["vocab"], vocab, f"{what} in {path}")
    return data


def save_torch(path, kind: str, net, vocab: Vocab, **fields) -> Path:
    """Write a torch model with ``torch.save``, whole or not at all: ``net``'s state_dict (on the CPU),
    ``fields`` (plain data: the file is read with ``weights_only=True``) and the vocabularies."""
    import torch

    path = Path(path)
    data = saved_data(kind, vocab, **fields, state_dict={k: v.cpu() for k, v in net.state_dict().items()})
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return path


def torch_load(path):
    """What ``torch.save`` wrote to ``path``, on the CPU (weights-only loading: no code runs); a file torch
    cannot read (empty, cut short, not written by torch.save) raises a ValueError naming it."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, pickle.UnpicklingError, RuntimeError, ValueError) as e:
        # torch's own messages run over many lines and suggest weights_only=False: say what is wrong instead
        why = "it is empty" if Path(path).stat().st_size == 0 else "damaged, or not written by tpslab"
        raise ValueError(f"{path}: cannot read it as a torch file ({why})") from e


def load_torch(path, kind: str, vocab: Vocab | None, what: str) -> dict:
    """The dict :func:`save_torch` wrote (tensors on the CPU), checked as :func:`read_saved` does."""
    return read_saved(torch_load(path), kind, path, vocab, what)


def first_nonfinite(state_dict: dict) -> str | None:
    """The name of the first floating-point tensor of ``state_dict`` that holds nan or inf, or None."""
    import torch

    return next((name for name, t in state_dict.items()
                 if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)


def check_finite(state_dict: dict, path) -> None:
    """Raise a ValueError naming ``path`` when a floating-point tensor of ``state_dict`` holds nan or inf
    (the weights of a training run that diverged)."""
    name = first_nonfinite(state_dict)
    if name is not None:
        raise ValueError(f"{path}: the weights {name} are not finite (nan or inf): the model is unusable")


def restore_net(net, data: dict, device):
    """``net`` with the weights of a :func:`load_torch` dict, on ``device``, in evaluation mode."""
    net.load_state_dict(data["state_dict"])
    return net.to(torch_device(device)).eval()


class DeviceError(ValueError, RuntimeError):
    """A device that torch does not know or this machine lacks (a ValueError: bad input; a RuntimeError as
    it was before)."""


def torch_device(device):
    """A torch device from ``device`` ("cpu", "cuda", "cuda:1", a torch.device); an unknown device or
    unavailable CUDA raises :class:`DeviceError`."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (None: leave the setting alone), then restore it.

    On a machine whose cores are busy with other work, one thread is often several times faster
    than oversubscribed ones.
    """
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_generator(seed: int):
    """A CPU torch generator seeded with ``seed`` (model initialisation and batch order use it)."""
    import torch

    g = torch.Generator()
    g.manual_seed(int(seed))
    return g
