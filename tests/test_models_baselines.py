import json

import numpy as np
import pandas as pd
import pytest

from tpslab.models.baselines import MajorityBaseline
from tpslab.vocab import Vocab, Vocabulary


def fitted(tiny):
    labels = {v: tiny.labels[v] for v in tiny.train}
    return MajorityBaseline().fit(tiny.dataset.parts, labels, tiny.dataset.vocab)


def test_majority_state_per_action_and_part(tiny):
    model = fitted(tiny)
    parts = tiny.dataset.parts.assign(action=tiny.dataset.parts["video"].astype(str).map(tiny.labels))
    vocab = tiny.dataset.vocab
    table = model.table()
    checked = 0
    for (action, part), rows in parts.groupby(["action", "part"], observed=True):
        counts = rows["state"].astype(str).value_counts()
        best = counts[counts == counts.max()].index
        expected = min(best, key=vocab.states.id)  # ties: the first state of the vocabulary
        assert table.loc[action, part] == expected == model.state_of(action, part)
        checked += 1
    assert checked == 4 * len(vocab.parts)


def test_predictions_broadcast_and_beat_chance(tiny):
    model = fitted(tiny)
    test = tiny.test_parts
    truth = {v: tiny.labels[v] for v in tiny.test}
    pred = model.predict(test, truth)
    assert len(pred) == len(test)
    per_video_part = pd.Series(pred, index=test.index).groupby([test["video"].astype(str), test["part"].astype(str)])
    assert (per_video_part.nunique() == 1).all()  # one state per (video, part): broadcast to every frame
    train = tiny.dataset.parts
    # Chance: a uniform guess among the states each part takes in training.
    n_states = train.groupby("part", observed=True)["state"].agg(lambda s: s.astype(str).nunique())
    chance = np.mean(1 / test["part"].astype(str).map(n_states).to_numpy())
    assert np.mean(pred == test["state"].astype(str).to_numpy()) > chance
    # On its training rows, conditioning on the action can only help over the per-part majority.
    fit_pred = model.predict(train, tiny.labels)
    prior = train.groupby("part", observed=True)["state"].agg(lambda s: s.astype(str).value_counts().index[0])
    states = train["state"].astype(str).to_numpy()
    assert np.mean(fit_pred == states) >= np.mean(train["part"].astype(str).map(prior).to_numpy() == states)


def test_unseen_action_part_falls_back_to_the_part_majority(tiny):
    parts = tiny.dataset.parts
    labels = {v: tiny.labels[v] for v in tiny.train}
    push_up = [v for v in tiny.train if tiny.labels[v] == "push_up"]
    dropped = parts[~(parts["video"].astype(str).isin(push_up) & (parts["part"] == "head"))]
    model = MajorityBaseline().fit(dropped, labels, tiny.dataset.vocab)
    heads = dropped[dropped["part"] == "head"]["state"].astype(str).value_counts()
    assert model.state_of("push_up", "head") == heads.index[0]


def test_save_load_round_trip(tiny, tmp_path):
    model = fitted(tiny)
    path = model.save(tmp_path / "majority.json")
    again = MajorityBaseline.load(path, vocab=tiny.dataset.vocab)
    pd.testing.assert_frame_equal(again.table(), model.table())
    truth = {v: tiny.labels[v] for v in tiny.test}
    assert (again.predict(tiny.test_parts, truth) == model.predict(tiny.test_parts, truth)).all()


def test_errors(tiny, tmp_path):
    model = fitted(tiny)
    with pytest.raises(RuntimeError, match="not fitted"):
        MajorityBaseline().predict(tiny.test_parts, {})
    with pytest.raises(KeyError, match="no action label"):
        model.predict(tiny.test_parts, {})
    with pytest.raises(ValueError, match="not in the action vocabulary"):
        model.predict(tiny.test_parts, {v: "yoga" for v in tiny.test})
    with pytest.raises(ValueError, match="labelled video"):
        MajorityBaseline().fit(tiny.dataset.parts, {"nope": "push_up"}, tiny.dataset.vocab)
    v = tiny.dataset.vocab
    other = Vocab(v.actions, v.parts, Vocabulary("part state", list(v.states.names)[::-1]), v.objects)
    path = model.save(tmp_path / "m.json")
    with pytest.raises(ValueError, match="part state|states vocabulary"):
        MajorityBaseline.load(path, vocab=other)
    with pytest.raises(ValueError, match="states vocabulary"):
        model.predict(tiny.test_parts, {t: tiny.labels[t] for t in tiny.test}, vocab=other)
    (tmp_path / "other.json").write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ValueError, match="not a saved"):
        MajorityBaseline.load(tmp_path / "other.json")
