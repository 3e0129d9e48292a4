import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tiny_models import with_extra_state
from tpslab.features import Features
from tpslab.models.compositional import CompositionalClassifier, FeatureConfig, video_features


def train_labels(tiny):
    return {v: tiny.labels[v] for v in tiny.train}


def held_out_accuracy(tiny, model="logreg", config=FeatureConfig()):
    clf = CompositionalClassifier(model, config=config).fit_parts(tiny.dataset.parts, train_labels(tiny),
                                                                 tiny.dataset.vocab)
    pred = clf.predict_parts(tiny.test_parts, videos=tiny.test)
    return np.mean([pred[v] == tiny.labels[v] for v in tiny.test])


@pytest.mark.parametrize("model", ["logreg", "forest"])
@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(objects=True, pyramid=True, transitions=True)])
def test_learns_above_chance(tiny, model, config):
    # 4 held-out videos of 4 actions: chance is 0.25 (seeds give 0.75 to 1.0).
    assert held_out_accuracy(tiny, model, config) >= 0.5


def test_votes_read_as_part_states_for_actions(tiny):
    clf = CompositionalClassifier().fit_parts(tiny.dataset.parts, train_labels(tiny), tiny.dataset.vocab)
    votes = clf.votes()
    assert votes.shape == (len(clf.feature_names_), 4)
    assert list(votes.columns) == sorted(set(train_labels(tiny).values()))
    # In the tiny preset only push_up presses the floor with its hands (its upper-body motif).
    top = clf.top_votes(k=8)
    push_up = top[top["action"] == "push_up"]["feature"].tolist()
    assert any(f.endswith("_hand:state=press") for f in push_up), push_up
    assert (top.groupby("action").size() == 8).all()
    imp = clf.importances()
    assert imp.index[0] in votes.index and imp.is_monotonic_decreasing


def test_soft_counts_of_one_hot_probabilities_give_the_same_predictions(tiny):
    clf = CompositionalClassifier().fit_parts(tiny.dataset.parts, train_labels(tiny), tiny.dataset.vocab)
    test = tiny.test_parts
    probs = np.zeros((len(test), len(tiny.dataset.vocab.states)))
    probs[np.arange(len(test)), tiny.dataset.vocab.states.ids(test["state"].astype(str))] = 1
    assert clf.predict_parts(test, probs=probs) == clf.predict_parts(test)


@pytest.mark.parametrize("model", ["logreg", "forest", "knn"])
def test_save_load_round_trip(tiny, tmp_path, model):
    config = FeatureConfig(transitions=True)
    clf = CompositionalClassifier(model, config=config, seed=3).fit_parts(tiny.dataset.parts, train_labels(tiny),
                                                                          tiny.dataset.vocab)
    again = CompositionalClassifier.load(clf.save(tmp_path / "clf.joblib"), vocab=tiny.dataset.vocab)
    assert again.config == config and again.feature_names_ == clf.feature_names_
    feats = again.features(tiny.test_parts, videos=tiny.test)
    pd.testing.assert_frame_equal(again.predict_proba(feats), clf.predict_proba(feats))


def test_seeded_fits_are_reproducible(tiny):
    def proba(seed):
        clf = CompositionalClassifier("forest", seed=seed).fit_parts(tiny.dataset.parts, train_labels(tiny),
                                                                     tiny.dataset.vocab)
        return clf.predict_proba(clf.features(tiny.test_parts)).to_numpy()
    assert np.array_equal(proba(1), proba(1))


def test_errors(tiny, tmp_path):
    vocab = tiny.dataset.vocab
    clf = CompositionalClassifier().fit_parts(tiny.dataset.parts, train_labels(tiny), vocab)
    with pytest.raises(RuntimeError, match="not fitted"):
        CompositionalClassifier().predict(clf.features(tiny.test_parts))
    other = with_extra_state(vocab)
    with pytest.raises(ValueError, match="do not match.*expected 660 columns, got 670"):
        clf.predict(video_features(tiny.test_parts, other))
    with_objects = video_features(tiny.test_parts, vocab, FeatureConfig(objects=True))
    with pytest.raises(ValueError, match="do not match"):
        clf.predict(with_objects)
    shuffled = Features(np.zeros((1, 660), np.float32), ["x"], list(reversed(clf.feature_names_)))
    with pytest.raises(ValueError, match="column 0 is 'right_foot:state=wave'"):
        clf.predict(shuffled)
    with pytest.raises(ValueError, match="object bags need ground-truth"):
        video_features(tiny.test_parts, vocab, FeatureConfig(objects=True), probs=np.zeros((len(tiny.test_parts), 66)))
    with pytest.raises(ValueError, match="not in the action vocabulary"):
        CompositionalClassifier().fit_parts(tiny.dataset.parts, {v: "yoga" for v in tiny.train}, vocab)
    with pytest.raises(ValueError, match="at least two actions"):
        CompositionalClassifier().fit_parts(tiny.dataset.parts, {tiny.train[0]: tiny.labels[tiny.train[0]]}, vocab)
    with pytest.raises(ValueError, match="unknown model"):
        CompositionalClassifier("deep").fit_parts(tiny.dataset.parts, train_labels(tiny), vocab)
    with pytest.raises(ValueError, match="states vocabulary"):
        CompositionalClassifier.load(clf.save(tmp_path / "c.joblib"), vocab=other)


def test_importing_the_scikit_learn_models_and_the_pipeline_does_not_import_torch():
    code = ("import sys, tpslab.models, tpslab.models.compositional, tpslab.models.baselines, tpslab.pipeline; "
            "from tpslab.models import CompositionalClassifier; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_package_names_resolve_lazily():
    import tpslab.models as models

    assert models.CompositionalClassifier is CompositionalClassifier
    assert set(models.__all__) <= set(dir(models))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        models.Nope
