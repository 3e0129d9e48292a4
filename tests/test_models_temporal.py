import numpy as np
import pandas as pd
import pytest
import torch

from tiny_models import with_extra_state
from tpslab.models.temporal import Sequences, TemporalClassifier, sequences


def train_labels(tiny):
    return {v: tiny.labels[v] for v in tiny.train}


def fit(tiny, kind="gru", **kw):
    kw = {"epochs": 30, "hidden": 32, "threads": 1, "progress": False, **kw}
    return TemporalClassifier(kind, **kw).fit_parts(tiny.dataset.parts, train_labels(tiny), tiny.dataset.vocab)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_learns_above_chance(tiny, kind):
    model = fit(tiny, kind)
    assert model.history_[-1] < model.history_[0]
    test = model.sequences(tiny.test_parts, videos=tiny.test)
    # 4 held-out videos of 4 actions: chance is 0.25 (seeds give 0.75 to 1.0).
    assert model.score(test, tiny.labels) >= 0.5
    proba = model.predict_proba(test)
    assert list(proba.columns) == sorted(set(train_labels(tiny).values()))
    assert np.allclose(proba.sum(axis=1), 1)


def test_seeded_and_leaves_global_rng_alone(tiny):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = fit(tiny, epochs=3)
    after = torch.rand(3)
    assert torch.equal(before, after)  # fit did not consume the caller's random numbers
    b = fit(tiny, epochs=3)
    seqs = a.sequences(tiny.test_parts)
    pd.testing.assert_frame_equal(a.predict_proba(seqs), b.predict_proba(seqs))
    c = fit(tiny, epochs=3, seed=1)
    assert not np.allclose(c.predict_proba(seqs).to_numpy(), a.predict_proba(seqs).to_numpy())


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_save_load_round_trip(tiny, tmp_path, kind):
    model = fit(tiny, kind, epochs=3)
    again = TemporalClassifier.load(model.save(tmp_path / "t.pt"), vocab=tiny.dataset.vocab)
    seqs = model.sequences(tiny.test_parts)
    pd.testing.assert_frame_equal(again.predict_proba(seqs), model.predict_proba(seqs))
    assert again.config == model.config and again.length == model.length


def test_sequences_with_one_hot_probabilities_equal_ground_truth(tiny):
    vocab, test = tiny.dataset.vocab, tiny.test_parts
    probs = np.zeros((len(test), len(vocab.states)))
    probs[np.arange(len(test)), vocab.states.ids(test["state"].astype(str))] = 1
    a, b = sequences(test, vocab), sequences(test, vocab, probs=probs)
    assert np.array_equal(a.X, b.X) and a.videos == b.videos and (a.lengths > 0).all()


def test_errors(tiny, tmp_path):
    vocab = tiny.dataset.vocab
    model = fit(tiny, epochs=1)
    with pytest.raises(ValueError, match="unknown kind"):
        TemporalClassifier("lstm")
    with pytest.raises(RuntimeError, match="not fitted"):
        TemporalClassifier().predict(model.sequences(tiny.test_parts))
    other = with_extra_state(vocab)
    with pytest.raises(ValueError, match="sequence features do not match"):
        model.predict(sequences(tiny.test_parts, other))
    with pytest.raises(ValueError, match="states vocabulary"):
        TemporalClassifier.load(model.save(tmp_path / "t.pt"), vocab=other)
    with pytest.raises(ValueError, match="at least two actions"):
        fit(tiny, epochs=1).fit_parts(tiny.dataset.parts, {tiny.train[0]: tiny.labels[tiny.train[0]]}, vocab)
    with pytest.raises(ValueError, match="does not match"):
        Sequences(np.zeros((2, 4, 3)), np.zeros(2), ["a"], ["x", "y", "z"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tiny):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        fit(tiny, epochs=1, device="cuda")
