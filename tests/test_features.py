import numpy as np
import pandas as pd
import pytest

from tpslab.features import Features, frame_sequences, state_bags, transition_counts
from tpslab.vocab import Vocab

V = Vocab.default()


def table(rows):
    return pd.DataFrame(rows, columns=["video", "frame", "human", "part", "state", "object"])


PARTS = table([
    ("A", 1, 0, "left_arm", "bend", None), ("A", 1, 0, "head", "none", None),
    ("A", 2, 0, "left_arm", "unbend", None), ("A", 2, 0, "head", "none", None),
    ("A", 3, 0, "left_arm", "unbend", None), ("A", 3, 0, "left_hand", "hold", "dumbbell"),
    ("B", 5, 0, "right_leg", "step", None), ("B", 5, 1, "right_leg", "stand", None),
])


def col(f: Features, name):
    return f.X[:, f.names.index(name)]


def test_bags_are_normalised_per_part():
    f = state_bags(PARTS, V)
    assert f.videos == ["A", "B"] and f.X.shape == (2, len(V.parts) * len(V.states))
    assert col(f, "left_arm:state=bend").tolist() == pytest.approx([1 / 3, 0])
    assert col(f, "left_arm:state=unbend").tolist() == pytest.approx([2 / 3, 0])
    assert col(f, "head:state=none").tolist() == [1, 0]
    assert col(f, "right_leg:state=step").tolist() == [0, 0.5]  # two humans in one frame
    per_part = f.X.reshape(2, len(V.parts), len(V.states)).sum(-1)
    assert per_part[0].tolist() == [1, 0, 1, 0, 1, 0, 0, 0, 0, 0]  # missing parts contribute zeros


def test_soft_counts_from_probabilities():
    probs = np.zeros((len(PARTS), len(V.states)))
    probs[:, V.states.id("none")] = 0.25
    probs[:, V.states.id("bend")] = 0.75
    f = state_bags(PARTS, V, probs=probs)
    assert col(f, "left_arm:state=bend")[0] == pytest.approx(0.75)
    assert col(f, "head:state=none")[0] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="one row per part row"):
        state_bags(PARTS, V, probs=probs[:3])


def test_objects_and_pyramid():
    f = state_bags(PARTS, V, objects=True, pyramid=True, videos=["B", "A", "C"])
    assert f.videos == ["B", "A", "C"] and not f.X[2].any()  # a video without parts: zeros
    assert col(f, "left_hand:object=dumbbell")[1] == 1 and col(f, "left_arm:object=<no object>")[1] == 1
    # thirds of A's frames 1, 2, 3
    assert col(f, "left_arm:state=bend@1/3")[1] == 1 and col(f, "left_arm:state=unbend@2/3")[1] == 1
    assert col(f, "left_arm:state=unbend@3/3")[1] == 1 and col(f, "left_arm:state=bend@3/3")[1] == 0
    assert len(set(f.names)) == len(f.names)


def test_transitions_count_changes_between_frames():
    f = transition_counts(PARTS, V)
    assert "left_arm:bend->unbend" in f.names and "left_arm:unbend->unbend" not in f.names
    assert col(f, "left_arm:bend->unbend").tolist() == [0.5, 0]  # 1 change in 2 frame pairs
    # head is in frames 1 and 2 only: one none->none pair out of two frame pairs
    assert transition_counts(PARTS, V, changes_only=False).to_frame().loc["A", "head:none->none"] == 0.5


def test_frame_sequences():
    X, lengths, names = frame_sequences(PARTS, V, length=2, videos=["A", "B"])
    assert X.shape == (2, 2, len(V.parts) * len(V.states)) and lengths.tolist() == [2, 1]
    assert X[0, 0, names.index("left_arm:state=bend")] == 1  # first and last of 3 frames
    assert X[0, 1, names.index("left_hand:state=hold")] == 1
    assert X[1, 0, names.index("right_leg:state=stand")] == 0.5 and not X[1, 1].any()


def test_unknown_names_and_selection():
    bad = PARTS.copy()
    bad.loc[0, "state"] = "wobble"
    with pytest.raises(ValueError, match="wobble"):
        state_bags(bad, V)
    f = state_bags(PARTS, V)
    assert f.select(["B"]).X.tolist() == f.X[1:].tolist()
    with pytest.raises(KeyError):
        f.select(["Z"])
    with pytest.raises(ValueError, match="does not match"):
        Features(np.zeros((2, 3)), ["A"], ["x", "y", "z"])
