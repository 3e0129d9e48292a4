"""tpslab.torchdata: clips are the frames the sampler asked for, with the right annotations."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import tpslab
import videogen as vg
from release import human, make_release, part
from tpslab import sampling
from tpslab.frames import extract_frames
from tpslab.torchdata import (
    TSN, Annotated, CenterCrop, ClipDataset, Compose, Dense, Normalize, RandomCrop, RandomHorizontalFlip,
    ShortSideResize, Uniform, collate_clips, eval_transform, train_transform,
)
from tpslab.video import VideoError

PLAIN, CUT, SPARSE, BROKEN = "plain", "cut", "sparse", "broken"


def _frame(number):
    """Boxes that move with the frame number, so a wrong frame gets wrong boxes."""
    return {"humans": [
        human([number, 10, number + 40, 80], [
            part("head", [number + 10, 12, number + 20, 22], "none"),
            part("left_hand", [10, 20, 29, 39], "hold", "dumbbell", [5, 5, 9, 9]),
        ]),
        human([90, 30, 120, 90], [part("right_foot", [100, 80, 110, 89], "step_on")]),
    ]}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchdata") / "Kinetics-TPS"
    make_release(root, {
        ("lunge", PLAIN): {1: _frame(1), 6: _frame(6), 11: _frame(11), 16: {"humans": []}},
        ("lunge", CUT): {1: _frame(1), 21: _frame(21)},
        ("push_up", SPARSE): {3: _frame(3)},
        ("push_up", BROKEN): {1: _frame(1)},
    })
    videos = root / "train_videos"
    vg.write_video(videos / "lunge" / f"{PLAIN}.mp4", 40, gop=12, bframes=2)
    vg.write_video(root / "src.mp4", 40, gop=12, bframes=2)
    vg.trim_stream_copy(root / "src.mp4", videos / "lunge" / f"{CUT}.mp4", 9)  # shows frames 9..39
    vg.write_video(videos / "push_up" / f"{SPARSE}.mp4", 24)
    vg.truncate(root / "src.mp4", videos / "push_up" / f"{BROKEN}.mp4", 0.5)
    (root / "src.mp4").unlink()
    return root


@pytest.fixture(scope="module")
def dataset(release):
    return tpslab.load_dataset(release, progress=False)


def codes(sample) -> list[int]:
    """The frame index coded in the pixels of each frame of a (C, T, H, W) clip in [0, 1]."""
    frames = (sample["frames"].permute(1, 2, 3, 0) * 255).round().clamp(0, 255).byte().numpy()
    return vg.read_indices(frames)


def test_tsn_clip_holds_the_sampled_frames(dataset):
    ds = ClipDataset(dataset, [PLAIN, CUT])
    sample = ds[0]
    assert sample["frames"].shape == (3, 8, 96, 128) and sample["frames"].dtype == torch.float32
    assert 0 <= sample["frames"].min() and sample["frames"].max() <= 1
    assert sample["indices"].tolist() == sampling.tsn_indices(40, 8).tolist()
    assert codes(sample) == sample["indices"].tolist()
    assert sample["label"] == dataset.vocab.actions.id("lunge") and sample["video"] == PLAIN
    cut = ds[1]  # edit-listed file: 31 frames shown, from frame 9 of the source
    assert cut["indices"].tolist() == sampling.tsn_indices(31, 8).tolist()
    assert codes(cut) == [9 + i for i in cut["indices"].tolist()]


def test_annotations_of_sampled_frames(dataset):
    ds = ClipDataset(dataset, [PLAIN], sampler=Annotated(4))
    s = ds[0]
    assert s["indices"].tolist() == [0, 5, 10, 15] and codes(s) == [0, 5, 10, 15]
    assert s["annotated"].tolist() == [True] * 4
    # two humans on each of img_00001/6/11, none on img_00016; at most two humans on a frame anywhere
    P = len(dataset.vocab.parts)
    assert s["boxes"].shape == (4, 2, 4) and s["part_boxes"].shape == (4, 2, P, 4)
    assert s["part_states"].shape == s["part_mask"].shape == (4, 2, P)
    assert s["human_mask"].tolist() == [[True, True]] * 3 + [[False, False]]
    np.testing.assert_array_equal(s["boxes"][:3, 0].numpy(),
                                  [[1, 10, 41, 80], [6, 10, 46, 80], [11, 10, 51, 80]])
    parts, states = dataset.vocab.parts, dataset.vocab.states
    head, lhand, rfoot = parts.id("head"), parts.id("left_hand"), parts.id("right_foot")
    assert s["part_mask"][0, 0].nonzero().flatten().tolist() == sorted([head, lhand])
    assert s["part_mask"][0, 1].nonzero().flatten().tolist() == [rfoot]
    assert s["part_states"][0, 0, lhand] == states.id("hold")
    assert s["part_states"][0, 1, rfoot] == states.id("step_on")
    assert s["part_states"][0, 0, parts.id("hip")] == -1
    np.testing.assert_array_equal(s["part_boxes"][1, 0, head].numpy(), [16, 12, 26, 22])  # img_00006
    assert s["part_boxes"][0, 0, parts.id("hip")].abs().sum() == 0
    # padding: no box, no part, no state
    assert s["boxes"][3].abs().sum() == 0 and s["part_boxes"][3].abs().sum() == 0
    assert (s["part_states"][3] == -1).all() and not s["part_mask"][3].any()


def test_unannotated_frames_have_no_humans(dataset):
    s = ClipDataset(dataset, [PLAIN], sampler=Uniform(3))[0]  # frames 0, 20, 39
    assert s["indices"].tolist() == [0, 20, 39]
    assert s["annotated"].tolist() == [True, False, False]
    assert s["human_mask"].tolist() == [[True, True], [False, False], [False, False]]


def test_annotated_sampler_repeats_or_refuses(dataset):
    s = ClipDataset(dataset, [SPARSE], sampler=Annotated(3))[0]
    assert s["indices"].tolist() == [2, 2, 2] and codes(s) == [2, 2, 2]
    with pytest.raises(ValueError, match=f"{SPARSE}: no annotated frames"):
        ClipDataset(dataset, [SPARSE], sampler=Annotated(3, scored_only=True))[0]


def test_dense_sampler(dataset):
    s = ClipDataset(dataset, [PLAIN], sampler=Dense(4, 3))[0]
    assert s["indices"].tolist() == sampling.dense_indices(40, 4, 3)[0].tolist()
    assert codes(s) == s["indices"].tolist()


def test_resize_and_crop_move_boxes(dataset):
    ds = ClipDataset(dataset, [PLAIN], sampler=Annotated(1), transform=Compose([ShortSideResize(48)]))
    s = ds[0]
    assert s["frames"].shape[-2:] == (48, 64)
    # box [1, 10, 41, 80] covers pixels 1..41 and 10..80: halved, x2 = (41 + 1) / 2 - 1, y2 = (80 + 1) / 2 - 1
    np.testing.assert_allclose(s["boxes"][0, 0].numpy(), [0.5, 5, 20, 39.5])
    crop = ClipDataset(dataset, [PLAIN], sampler=Annotated(1),
                       transform=Compose([ShortSideResize(48), CenterCrop((48, 40))]))[0]
    assert crop["frames"].shape[-2:] == (48, 40)
    # crop x from 12 to 51: the first human [0.5, 5, 20, 39.5] -> [0, 5, 8, 39.5]; the second human
    # [90, 30, 120, 90] -> [45, 15, 59.5, 44.5] -> [33, 15, 39, 44.5]; its right foot [100, 80, 110, 89]
    # -> [50, 40, 54.5, 44] -> [38, 40, 39, 44]
    np.testing.assert_allclose(crop["boxes"][0].numpy(), [[0, 5, 8, 39.5], [33, 15, 39, 44.5]])
    rfoot = dataset.vocab.parts.id("right_foot")
    np.testing.assert_allclose(crop["part_boxes"][0, 1, rfoot].numpy(), [38, 40, 39, 44])
    lhand = dataset.vocab.parts.id("left_hand")  # [10, 20, 29, 39] -> [5, 10, 14, 19] -> [0, 10, 2, 19]
    np.testing.assert_allclose(crop["part_boxes"][0, 0, lhand].numpy(), [0, 10, 2, 19])
    head = dataset.vocab.parts.id("head")  # head [11, 12, 21, 22] -> [5.5, 6, 10, 10.5]: left of the crop
    assert not crop["part_mask"][0, 0, head] and crop["part_states"][0, 0, head] == -1
    assert crop["part_boxes"][0, 0, head].abs().sum() == 0
    gone = ClipDataset(dataset, [PLAIN], sampler=Annotated(1),
                       transform=Compose([ShortSideResize(48), CenterCrop((20, 10))]))[0]
    assert not gone["human_mask"].any() and gone["boxes"].abs().sum() == 0  # outside the crop: masked
    assert gone["part_states"].shape == (1, 2, len(dataset.vocab.parts)) and (gone["part_states"] == -1).all()


def test_flip_mirrors_frames_boxes_and_part_sides(dataset):
    parts = dataset.vocab.parts
    plain = ClipDataset(dataset, [PLAIN], sampler=Annotated(1))[0]
    flipped = ClipDataset(dataset, [PLAIN], sampler=Annotated(1),
                          transform=Compose([RandomHorizontalFlip(parts.names, p=1.0)]))[0]
    assert torch.equal(flipped["frames"], torch.flip(plain["frames"], dims=[-1]))
    np.testing.assert_array_equal(flipped["boxes"][0, 0].numpy(), [127 - 41, 10, 127 - 1, 80])
    lhand, rhand = parts.id("left_hand"), parts.id("right_hand")
    # the left hand [10, 20, 29, 39] holding a dumbbell is, mirrored, a right hand at [98, 20, 117, 39]
    assert not flipped["part_mask"][0, 0, lhand] and flipped["part_mask"][0, 0, rhand]
    assert flipped["part_states"][0, 0, rhand] == dataset.vocab.states.id("hold")
    np.testing.assert_array_equal(flipped["part_boxes"][0, 0, rhand].numpy(), [98, 20, 117, 39])
    rfoot, lfoot = parts.id("right_foot"), parts.id("left_foot")
    assert flipped["part_mask"][0, 1, lfoot] and not flipped["part_mask"][0, 1, rfoot]
    never = ClipDataset(dataset, [PLAIN], sampler=Annotated(1),
                        transform=Compose([RandomHorizontalFlip(parts.names, p=0.0)]))[0]
    assert torch.equal(never["frames"], plain["frames"])



def test_flip_refuses_a_part_list_without_the_other_side():
    with pytest.raises(ValueError, match="cannot mirror"):
        RandomHorizontalFlip(["head", "left_hand"])

def test_normalize():
    frames = torch.rand(2, 3, 4, 5)
    out = Normalize(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))({"frames": frames.clone()}, None)["frames"]
    torch.testing.assert_close(out[:, 0], (frames[:, 0] - 0.5) / 0.5)
    torch.testing.assert_close(out[:, 1], (frames[:, 1] - 0.25) / 0.25)
    torch.testing.assert_close(out[:, 2], frames[:, 2])


def test_random_choices_follow_seed_epoch_and_item(dataset):
    def draw(seed=0, epoch=0, item=0):
        ds = ClipDataset(dataset, [PLAIN, CUT], train=True, seed=seed,
                         transform=Compose([ShortSideResize(48), RandomCrop(40),
                                            RandomHorizontalFlip(dataset.vocab.parts.names)]))
        ds.set_epoch(epoch)
        s = ds[item]
        return s["indices"].tolist(), s["frames"]

    first, frames = draw()
    again, frames_again = draw()
    assert first == again and torch.equal(frames, frames_again)
    assert len({tuple(draw(epoch=e)[0]) for e in range(5)}) > 1
    assert draw(seed=1)[0] != first or not torch.equal(draw(seed=1)[1], frames)
    for epoch in range(3):  # training offsets stay inside their segments
        idx = draw(epoch=epoch)[0]
        assert all(5 * s <= i < 5 * (s + 1) for s, i in enumerate(idx))


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_batches_with_the_default_collation(dataset, workers):
    ds = ClipDataset(dataset, [PLAIN, CUT, SPARSE], sampler=TSN(4), train=True,
                     transform=train_transform(dataset.vocab.parts.names, short_side=48, crop=40))
    assert len(pickle.dumps(ds)) < 200_000  # no readers, no tables: numpy arrays and paths
    batches = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=workers))
    assert [b["video"] for b in batches] == [[PLAIN, CUT], [SPARSE]]
    b, P = batches[0], len(dataset.vocab.parts)
    assert b["frames"].shape == (2, 3, 4, 40, 40) and b["label"].shape == (2,)
    assert b["indices"].shape == b["annotated"].shape == (2, 4)
    assert b["boxes"].shape == (2, 4, 2, 4) and b["human_mask"].shape == (2, 4, 2)
    assert b["part_boxes"].shape == (2, 4, 2, P, 4) and b["part_states"].shape == (2, 4, 2, P)
    for k, sample in enumerate(ds[i] for i in range(2)):  # each clip as the dataset gives it
        for key in ("frames", "indices", "boxes", "human_mask", "part_boxes", "part_states", "part_mask"):
            assert torch.equal(b[key][k], sample[key]), key
    custom = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=workers,
                                              collate_fn=collate_clips))
    for a, c in zip(batches, custom):
        assert a.keys() == c.keys() and all(torch.equal(a[k], c[k]) for k in a if k != "video")


def test_collate_clips_names_the_clips_that_differ(dataset):
    ds = ClipDataset(dataset, [PLAIN, SPARSE], sampler=Annotated(2))
    batch = collate_clips([ds[0], ds[1]])
    # plain: img_00001 and img_00016 (evenly spread of 1, 6, 11, 16): 2 humans; sparse: img_00003 twice: 4
    assert batch["human_mask"].sum(dim=(1, 2)).tolist() == [2, 4]
    with pytest.raises(ValueError, match=f"differ in shape.*{PLAIN}.*crop"):
        collate_clips([ds[0], ClipDataset(dataset, [PLAIN], sampler=Annotated(3))[0]])


def test_max_humans_pads_or_refuses(dataset):
    s = ClipDataset(dataset, [PLAIN], sampler=Annotated(2), max_humans=5)[0]
    assert s["boxes"].shape == (2, 5, 4) and s["human_mask"].sum() == 2
    with pytest.raises(ValueError, match=f"{PLAIN}.*img_00001.*2 humans.*max_humans=1"):
        ClipDataset(dataset, [PLAIN], max_humans=1)


def test_unreadable_video_raises_not_substituted(dataset):
    ds = ClipDataset(dataset)
    assert BROKEN in ds.videos
    with pytest.raises(VideoError, match=BROKEN):
        ds[ds.videos.index(BROKEN)]


def test_rawframes_source_matches_video(dataset, tmp_path):
    extract_frames(dataset.subset([PLAIN, CUT]), tmp_path, progress=False)
    from_frames = ClipDataset(dataset, [PLAIN, CUT], frames_root=tmp_path, transform=eval_transform(48, 40))
    from_video = ClipDataset(dataset, [PLAIN, CUT], transform=eval_transform(48, 40))
    for i in range(2):
        a, b = from_frames[i], from_video[i]
        assert torch.equal(a["indices"], b["indices"])
        assert (a["frames"] - b["frames"]).abs().mean() < 0.05  # JPEG loss only
        assert torch.equal(a["boxes"], b["boxes"])


def test_a_video_listed_twice(dataset):
    ds = ClipDataset(dataset, [SPARSE, PLAIN, SPARSE], sampler=Annotated(1))
    assert [int(ds[i]["human_mask"].sum()) for i in range(3)] == [2, 2, 2]
    assert ds[2]["indices"].tolist() == [2] and ds[1]["indices"].tolist() == [0]


def test_unknown_videos(dataset):
    with pytest.raises(KeyError, match="nope"):
        ClipDataset(dataset, ["nope"])


# ----------------------------------------------------------------------------- the README's example


@pytest.fixture(scope="module")
def mini(tiny_record):
    """The tiny mini dataset (generated once per session: conftest.tiny_record), loaded as the README does."""
    return tpslab.load_dataset(tiny_record.root, progress=False)


def _readme_code(containing: str) -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if containing in b]
    return block


@pytest.mark.parametrize("workers", [0, 2])
def test_readme_clip_example_batches_with_a_plain_dataloader(mini, workers):
    train, val = mini.split_train_val(val_fraction=0.25, seed=0)
    names = {"ds": mini, "train": train, "val": val}
    exec(_readme_code("ClipDataset("), names)  # the example as written
    clips = names["clips"]
    batches = list(torch.utils.data.DataLoader(clips, batch_size=4, num_workers=workers))
    assert sum(len(b["video"]) for b in batches) == len(train)
    b = batches[0]
    assert b["frames"].dtype == torch.float32 and b["frames"].shape[:3] == (4, 3, 8)
    assert b["label"].tolist() == [int(clips.labels[i]) for i in range(4)]
    assert b["boxes"].shape[:2] == (4, 8) and b["human_mask"].any()
