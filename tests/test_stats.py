"""tpslab.stats: dataset statistics on small hand-made tables whose answers are counted by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tpslab import stats

PARTS = ["head", "hip", "left_hand"]


def parts_table(rows, parts=PARTS, states=("none", "bend", "hold", "lift")):
    """rows: (video, frame, human, part, state, object) with a part box made from the frame number."""
    df = pd.DataFrame(rows, columns=["video", "frame", "human", "part", "state", "object"])
    df["video"] = df["video"].astype("category")
    df["part"] = pd.Categorical(df["part"], categories=list(parts))
    df["state"] = pd.Categorical(df["state"], categories=list(states))
    df["object"] = pd.Categorical(df["object"], categories=["dumbbell", "none", "ball"])
    return df


def test_videos_per_class_counts_splits_and_keeps_empty_classes():
    videos = pd.DataFrame({"video": list("vwxyz"),
                           "label": pd.Categorical(["b", "b", "a", "a", "a"], categories=["a", "b", "c"]),
                           "split": pd.Categorical(["train", "test", "train", "train", "test"],
                                                   categories=["train", "test"])})
    table = stats.videos_per_class(videos)
    assert list(table.index) == ["a", "b", "c"]  # a has 3, b 2, c none
    assert table.loc["a"].tolist() == [2, 1, 3]
    assert table.loc["b"].tolist() == [1, 1, 2]
    assert table.loc["c"].tolist() == [0, 0, 0]
    assert list(table.columns) == ["train", "test", "total"]


def test_humans_and_parts_histograms_cover_zero_to_max():
    frames = pd.DataFrame({"num_humans": [0, 2, 2, 1, 2]})
    assert stats.humans_per_frame(frames).tolist() == [1, 1, 3]
    humans = pd.DataFrame({"num_parts": [10, 3, 3]})
    counts = stats.parts_per_human(humans, n_parts=10)
    assert len(counts) == 11 and counts[3] == 2 and counts[10] == 1 and counts.sum() == 3
    assert len(stats.parts_per_human(pd.DataFrame({"num_parts": [12]}), n_parts=10)) == 13


def test_missing_parts_counts_each_human_once_per_part():
    parts = parts_table([
        ("v", 1, 0, "head", "none", None), ("v", 1, 0, "hip", "bend", None),
        ("v", 1, 1, "head", "none", None), ("v", 1, 1, "head", "lift", None),  # head listed twice
    ])
    humans = pd.DataFrame({"video": ["v", "v", "v"], "frame": [1, 1, 1], "human": [0, 1, 2]})  # human 2: no parts
    table = stats.missing_parts(parts, humans).set_index("part")
    assert table.loc["head", "present"] == 2 and table.loc["head", "missing"] == 1
    assert table.loc["hip", "present"] == 1 and table.loc["hip", "missing_share"] == pytest.approx(2 / 3)
    assert table.loc["left_hand", "missing"] == 3
    assert list(table.index) == PARTS


def test_state_counts_order_and_normalisation():
    parts = parts_table([
        ("v", 1, 0, "head", "none", None), ("v", 2, 0, "head", "none", None), ("v", 3, 0, "head", "lift", None),
        ("v", 1, 0, "left_hand", "hold", "dumbbell"), ("v", 2, 0, "left_hand", "hold", "dumbbell"),
    ])
    counts = stats.state_counts(parts)
    assert list(counts.columns) == ["hold", "none", "lift"]  # 2, 2, 1: ties by name
    assert counts.loc["head"].tolist() == [0, 2, 1]
    assert counts.loc["hip"].sum() == 0
    shares = stats.state_counts(parts, normalize=True)
    assert shares.loc["head", "none"] == pytest.approx(2 / 3)
    assert shares.loc["hip"].tolist() == [0, 0, 0]
    assert shares.loc["left_hand"].sum() == pytest.approx(1.0)


def test_state_by_action_is_a_conditional_distribution():
    parts = parts_table([
        ("a1", 1, 0, "head", "none", None), ("a1", 2, 0, "head", "lift", None),
        ("a1", 1, 0, "hip", "bend", None),
        ("b1", 1, 0, "head", "none", None), ("b1", 1, 1, "head", "none", None),
    ])
    videos = pd.DataFrame({"video": ["a1", "b1"], "label": ["jump", "clap"]})
    table = stats.state_by_action(parts, videos, top=None)
    assert list(table.columns) == ["clap", "jump"]
    assert table.loc["head:none", "jump"] == pytest.approx(0.5)
    assert table.loc["head:lift", "jump"] == pytest.approx(0.5)
    assert table.loc["head:none", "clap"] == pytest.approx(1.0)
    assert table.loc["hip:bend", "jump"] == pytest.approx(1.0) and table.loc["hip:bend", "clap"] == 0
    for action in table.columns:  # each (action, part) block sums to 1 where the part occurs
        head = table.loc[[r for r in table.index if r.startswith("head:")], action].sum()
        assert head == pytest.approx(1.0)
    # top keeps the rows that vary most across actions: hip:bend (0 vs 1) first
    assert stats.state_by_action(parts, videos, top=1).index.tolist() == ["hip:bend"]


def test_state_by_action_refuses_videos_without_label():
    parts = parts_table([("ghost", 1, 0, "head", "none", None)])
    with pytest.raises(KeyError, match="ghost"):
        stats.state_by_action(parts, pd.DataFrame({"video": ["other"], "label": ["x"]}))


def test_object_counts_keep_none_label_and_skip_absent():
    parts = parts_table([
        ("v", 1, 0, "left_hand", "hold", "dumbbell"), ("v", 2, 0, "left_hand", "hold", "dumbbell"),
        ("v", 3, 0, "left_hand", "hold", "none"), ("v", 3, 0, "head", "none", None),
    ])
    counts = stats.object_counts(parts)
    assert counts.to_dict() == {"dumbbell": 2, "none": 1}
    assert stats.object_counts(parts, top=1).index.tolist() == ["dumbbell"]


def test_state_timeline_fills_the_slot_and_leaves_gaps_empty():
    parts = parts_table([
        ("v", 1, 0, "head", "none", None), ("v", 6, 0, "head", "lift", None),
        ("v", 6, 1, "hip", "bend", None),  # another human slot: not in the timeline of human 0
        ("w", 1, 0, "hip", "bend", None),  # another video
    ])
    table = stats.state_timeline(parts, "v")
    assert list(table.columns) == [1, 6]
    assert table.loc["head"].tolist() == ["none", "lift"]
    assert table.loc["hip"].tolist() == [None, None]
    wide = stats.state_timeline(parts, "v", frames=range(1, 8))
    assert wide.shape == (3, 7) and wide.loc["head", 6] == "lift" and wide.loc["head", 2] is None
    assert stats.state_timeline(parts, "v", human=1).loc["hip", 6] == "bend"


def test_box_jitter_measures_motion_relative_to_human_size_per_frame():
    # human box 0..29 x 0..39 -> 30 x 40 pixels, diagonal 50
    rows = []
    centres = {1: 10.0, 2: 15.0, 4: 25.0}  # moves 5 px in one frame, then 10 px over two frames
    for frame, cx in centres.items():
        rows.append(("v", frame, 0, "head", "none", cx - 2, 5.0, cx + 2, 9.0))
    rows.append(("v", 5, 0, "head", "none", 0, 0, 4, 4))  # a frame with two humans: skipped
    rows.append(("v", 5, 1, "head", "none", 0, 0, 4, 4))
    df = pd.DataFrame(rows, columns=["video", "frame", "human", "part", "state",
                                     "part_x1", "part_y1", "part_x2", "part_y2"])
    df["part"] = pd.Categorical(df["part"], categories=PARTS)
    df[["human_x1", "human_y1", "human_x2", "human_y2"]] = [0.0, 0.0, 29.0, 39.0]
    frames = pd.DataFrame({"video": ["v"] * 4, "frame": [1, 2, 4, 5], "num_humans": [1, 1, 1, 2]})
    table = stats.box_jitter(df, frames).set_index("part")
    assert table.loc["head", "pairs"] == 2
    assert table.loc["head", "median"] == pytest.approx(0.1)
    assert table.loc["head", "max"] == pytest.approx(0.1)
    assert table.loc["hip", "pairs"] == 0 and np.isnan(table.loc["hip", "median"])
