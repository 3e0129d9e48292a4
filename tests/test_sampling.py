"""tpslab.sampling: index samplers, with expected values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tpslab.sampling import (
    annotated_indices, dense_indices, is_scored, scored_indices, tsn_indices, uniform_indices,
)


def test_tsn_test_mode_takes_segment_centres():
    # 100 frames, 4 segments of 25: centres 12.5, 37.5, 62.5, 87.5
    assert tsn_indices(100, 4).tolist() == [12, 37, 62, 87]
    # 10 frames, 3 segments of 3.33: centres 1.67, 5, 8.33
    assert tsn_indices(10, 3).tolist() == [1, 5, 8]


def test_tsn_train_mode_stays_in_segments_and_covers_them():
    seen = [set() for _ in range(4)]
    for seed in range(400):
        idx = tsn_indices(100, 4, train=True, seed=seed)
        for s, i in enumerate(idx):
            assert 25 * s <= i < 25 * (s + 1)
            seen[s].add(int(i))
    assert all(len(s) == 25 for s in seen)  # every frame of every segment can be drawn


def test_tsn_is_seeded():
    a = tsn_indices(300, 8, train=True, seed=7)
    assert np.array_equal(a, tsn_indices(300, 8, train=True, seed=7))
    assert not np.array_equal(a, tsn_indices(300, 8, train=True, seed=8))
    rng = np.random.default_rng(7)
    assert np.array_equal(a, tsn_indices(300, 8, train=True, seed=rng))
    with pytest.raises(ValueError, match="seed"):
        tsn_indices(300, 8, train=True)


def test_tsn_short_video_repeats_frames():
    idx = tsn_indices(3, 8)
    assert idx.min() >= 0 and idx.max() <= 2
    assert np.all(np.diff(idx) >= 0) and set(idx.tolist()) == {0, 1, 2}
    assert tsn_indices(3, 8, train=True, seed=0).max() <= 2


def test_uniform_indices():
    assert uniform_indices(11, 3).tolist() == [0, 5, 10]
    assert uniform_indices(101, 5).tolist() == [0, 25, 50, 75, 100]
    assert uniform_indices(10, 1).tolist() == [4]
    assert uniform_indices(2, 4).tolist() == [0, 0, 1, 1]


def test_dense_test_mode_centres_the_clips():
    # one clip of 8 frames, 2 apart (span 15) in 100 frames: starts 0..85, the middle start is 43
    assert dense_indices(100, 8, 2).tolist() == [[43, 45, 47, 49, 51, 53, 55, 57]]
    # three clips of 4 consecutive frames in 16 frames: starts 0..12 cut in thirds, centre of each
    clips = dense_indices(16, 4, 1, num_clips=3)
    assert clips[:, 0].tolist() == [2, 6, 10]
    assert np.all(np.diff(clips, axis=1) == 1)


def test_dense_train_mode_random_starts_inside_the_video():
    starts = set()
    for seed in range(300):
        clips = dense_indices(40, 8, 3, num_clips=2, train=True, seed=seed)
        assert clips.shape == (2, 8)
        assert np.all(np.diff(clips, axis=1) == 3) and clips.max() <= 39
        starts.update(clips[:, 0].tolist())
    assert starts == set(range(40 - 21 - 1 + 1))  # span 22: starts 0..18


def test_dense_short_video_repeats_the_last_frame():
    assert dense_indices(10, 8, 2).tolist() == [[0, 2, 4, 6, 8, 9, 9, 9]]


def test_scored_frames_are_every_fifth_from_the_first():
    assert scored_indices(12).tolist() == [0, 5, 10]
    assert scored_indices(1).tolist() == [0]
    assert [n for n in range(1, 17) if is_scored(n)] == [1, 6, 11, 16]
    assert is_scored(np.array([1, 2, 6])).tolist() == [True, False, True]


def test_annotated_frames():
    numbers = [16, 1, 6, 11, 6]  # unsorted, one repeated
    assert annotated_indices(numbers).tolist() == [0, 5, 10, 15]
    assert annotated_indices(numbers, k=2).tolist() == [0, 15]
    assert annotated_indices(numbers, k=10).tolist() == [0, 5, 10, 15]
    assert annotated_indices(numbers, num_frames=12).tolist() == [0, 5, 10]
    picks = [tuple(annotated_indices(numbers, k=2, train=True, seed=s)) for s in range(50)]
    assert all(len(set(p)) == 2 and list(p) == sorted(p) and set(p) <= {0, 5, 10, 15} for p in picks)
    assert len(set(picks)) > 1
    assert picks[3] == tuple(annotated_indices(numbers, k=2, train=True, seed=3))
    with pytest.raises(ValueError, match="start at 1"):
        annotated_indices([0, 1])


@pytest.mark.parametrize("call", [
    lambda: tsn_indices(0, 3), lambda: tsn_indices(10, 0), lambda: uniform_indices(10, 0),
    lambda: dense_indices(10, 0), lambda: dense_indices(10, 4, 0), lambda: scored_indices(0),
    lambda: tsn_indices(2.5, 2),
])
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
