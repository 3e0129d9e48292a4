"""Streaming part crops (tpslab.crops): the same crops, ids and states as the in-memory path, from videos
and from rawframes; errors that name the video; samplers that select rows without copying data."""

import re

import numpy as np
import pandas as pd
import pytest

import videogen
from tpslab.crops import (BatchView, CropAugment, CropSampler, PartCrops, ShardedBatches, VideoBatches, batch_loader,
                          box_geometry, crop_boxes, crop_parts, mirror_ids, rawframe_paths, row_uniforms,
                          video_paths)
from tpslab.video import VideoError

BOX_COLUMNS = ["video", "frame", "human", "human_x1", "human_y1", "human_x2", "human_y2",
               "part", "part_x1", "part_y1", "part_x2", "part_y2"]


@pytest.fixture(scope="module")
def videos(tiny):
    """Three training videos of the tiny release and their part rows."""
    chosen = tiny.train[:3]
    parts = tiny.dataset.parts
    return chosen, parts[parts["video"].astype(str).isin(chosen)].reset_index(drop=True)


@pytest.fixture(scope="module")
def rawframes(tiny, videos, tmp_path_factory):
    from tpslab.frames import extract_frames

    out = tmp_path_factory.mktemp("rawframes")
    report = extract_frames(tiny.dataset, out, videos=videos[0], progress=False)
    assert (report["status"] == "extracted").all()
    return out


def all_rows_through_a_loader(ds, batches, workers):
    got = {}
    for batch in batch_loader(ds, batches, workers):
        for k, v in batch.items():
            got.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in got.items()}


# ----------------------------------------------------------------------------- the same crops as in memory


@pytest.mark.parametrize("source", ["videos", "rawframes"])
def test_streamed_crops_ids_and_states_are_those_of_the_in_memory_path(tiny, videos, rawframes, source):
    names, parts = videos
    vocab = tiny.dataset.vocab
    paths = video_paths(tiny.dataset) if source == "videos" else rawframe_paths(tiny.dataset, rawframes, names)
    if source == "rawframes":
        assert all(p.startswith(str(rawframes)) for p in paths.values())
    held = crop_parts(parts, paths, progress=False)  # today's path: every crop in memory
    ds = PartCrops(parts, paths, vocab)
    # Rows in a shuffled, frame-grouped order, in batches that cut frames apart, through 2 workers.
    order = CropSampler(ds, seed=3).indices()
    batches = [order[i:i + 50].tolist() for i in range(0, len(order), 50)]
    got = all_rows_through_a_loader(ds, batches, workers=2)
    rows = got["index"]
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(parts)))
    np.testing.assert_array_equal(got["images"], held[rows])
    np.testing.assert_array_equal(got["parts"], vocab.parts.codes(parts["part"])[rows])
    np.testing.assert_array_equal(got["states"], vocab.states.codes(parts["state"])[rows])
    np.testing.assert_array_equal(got["geometry"], box_geometry(parts)[rows])
    # One sample at a time (torch's plain Dataset protocol) and the default collation give the same.
    sample = ds[int(rows[7])]
    np.testing.assert_array_equal(sample["images"].numpy(), held[rows[7]])
    assert int(sample["parts"]) == got["parts"][7] and int(sample["index"]) == rows[7]


def test_colour_statistics_are_those_of_the_chosen_crops_pixels(tiny, videos):
    names, parts = videos
    ds = PartCrops(parts, video_paths(tiny.dataset), tiny.dataset.vocab)
    for max_crops in (20000, 100, 1):
        pixels = ds.images(ds.colour_rows(max_crops, seed=1)).reshape(-1, 3).astype(np.float64) / 255
        mean, std = ds.colour_stats(max_crops, seed=1)
        assert mean.dtype == std.dtype == np.float32
        np.testing.assert_allclose(mean, pixels.mean(0), rtol=1e-6)
        np.testing.assert_allclose(std, pixels.std(0), rtol=1e-5)
    empty = PartCrops(parts.iloc[:0], video_paths(tiny.dataset), tiny.dataset.vocab)
    assert [a.tolist() for a in empty.colour_stats()] == [[0, 0, 0], [1, 1, 1]]


def test_rawframes_are_the_video_frames_up_to_jpeg(tiny, videos, rawframes):
    names, parts = videos
    from_video = crop_parts(parts, video_paths(tiny.dataset), progress=False).astype(int)
    from_jpeg = crop_parts(parts, rawframe_paths(tiny.dataset, rawframes, names), progress=False).astype(int)
    assert np.abs(from_video - from_jpeg).mean() < 3  # quality 95: the same pictures


def test_each_crop_depends_only_on_its_own_box():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 30, 40], [-20, -5, 15, 20], [60, 40, 79, 59], [2.5, 3.25, 70.75, 55.5],
                      [40, 20, 41, 21]])
    together = crop_boxes(frame, boxes, size=16)
    for i, box in enumerate(boxes):
        np.testing.assert_array_equal(crop_boxes(frame, box[None], size=16)[0], together[i])
    # Outside the frame is black: a box far off the top-left corner gives a black crop.
    assert not crop_boxes(frame, np.array([[-100, -100, -90, -90]]), size=16).any()
    with pytest.raises(ValueError, match="over 4 times the 80x60 frame"):
        crop_boxes(frame, np.array([[0, 0, 999, 999]]), where="frame")


def test_a_frame_that_cannot_be_read_is_an_error_naming_the_video(tmp_path, tiny, videos):
    path = videogen.write_video(tmp_path / "short.mp4", 5, width=128, height=128)
    table = pd.DataFrame([("clip", 9, 0, 0, 0, 127, 127, "head", 10, 10, 30, 30)], columns=BOX_COLUMNS)
    ds = PartCrops(table, {"clip": str(path)}, tiny.dataset.vocab)
    with pytest.raises(VideoError, match="video clip: frame img_00009 is past the end"):
        ds.images([0])
    # A rawframes folder with a frame missing: an error naming the folder, never a black crop.
    names, parts = videos
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in (1, 2, 4):
        from PIL import Image

        Image.new("RGB", (32, 32)).save(folder / f"img_{k:05d}.jpg")
    table = pd.DataFrame([("gap", 1, 0, 0, 0, 31, 31, "head", 4, 4, 20, 20)], columns=BOX_COLUMNS)
    with pytest.raises(VideoError, match=re.escape(str(folder))):
        PartCrops(table, {"gap": str(folder)}, tiny.dataset.vocab).images([0])
    with pytest.raises(VideoError, match="missing.mp4"):
        PartCrops(table.assign(video="m"), {"m": str(tmp_path / "missing.mp4")}, tiny.dataset.vocab).images([0])


def test_input_errors(tiny, videos, rawframes, tmp_path):
    names, parts = videos
    vocab = tiny.dataset.vocab
    with pytest.raises(KeyError, match="no video file known"):
        PartCrops(parts, {}, vocab)
    with pytest.raises(ValueError, match="needs columns"):
        PartCrops(parts.drop(columns=["part"]), video_paths(tiny.dataset), vocab)
    with pytest.raises(ValueError, match="start at 1"):
        PartCrops(parts.assign(frame=0), video_paths(tiny.dataset), vocab)
    with pytest.raises(FileNotFoundError, match="no frame folder"):
        rawframe_paths(tiny.dataset, rawframes)  # only three videos were extracted
    from tpslab.frames import extract_frames

    small = tmp_path / "small"
    extract_frames(tiny.dataset, small, videos=names[:1], short_side=64, progress=False)
    with pytest.raises(ValueError, match="short-side 64"):
        rawframe_paths(tiny.dataset, small, names[:1])


def test_frame_folders_of_another_tool_are_used_only_at_the_video_size(tiny, videos, rawframes, tmp_path):
    import shutil

    from PIL import Image

    from tpslab.frames import MANIFEST
    from tpslab.layout import rawframes_folder

    names, _ = videos
    row = tiny.dataset.videos.set_index("video").loc[names[0]]
    rel = rawframes_folder(row["split"], row["label"], names[0])
    other = tmp_path / "other"
    shutil.copytree(rawframes / rel, other / rel)
    (other / rel / MANIFEST).unlink()  # as another tool leaves it: frames, no record
    assert rawframe_paths(tiny.dataset, other, names[:1]) == {names[0]: str(other / rel)}  # full size: used
    for f in (other / rel).glob("img_*.jpg"):  # the same folder resized by that tool
        with Image.open(f) as im:
            im.resize((im.width // 2, im.height // 2)).save(f)
    with pytest.raises(ValueError, match="frames are .* but the video is"):
        rawframe_paths(tiny.dataset, other, names[:1])
    (other / rel / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="record .* is damaged"):
        rawframe_paths(tiny.dataset, other, names[:1])


# ----------------------------------------------------------------------------- augmentation


def test_augmentation_is_a_function_of_seed_epoch_and_row(tiny, videos):
    names, parts = videos
    vocab = tiny.dataset.vocab
    aug = CropAugment.for_vocab(vocab, flip=True, shift=2)
    ds = PartCrops(parts, video_paths(tiny.dataset), vocab).augmented(aug, seed=5)
    ds.set_epoch(2)
    whole = ds.batch([0, 1, 2, 3, 40, 41])
    alone = ds.batch([41])  # the same row alone, in another batch: the same flip and shift
    for k in whole:
        np.testing.assert_array_equal(alone[k].numpy()[0], whole[k].numpy()[5])
    ds.set_epoch(3)
    assert not all(np.array_equal(ds.batch([r])["images"], whole["images"][i:i + 1])
                   for i, r in enumerate([0, 1, 2, 3, 40, 41]))
    # A flip mirrors the pixels, swaps left and right parts and negates the horizontal offset.
    flipper = CropAugment.for_vocab(vocab, flip=True, shift=0)
    u = row_uniforms(0, 0, np.arange(len(parts)), 3)[:, 2]
    flipped = int(np.flatnonzero((u < 0.5) & parts["part"].astype(str).str.startswith("left_").to_numpy())[0])
    plain = PartCrops(parts, video_paths(tiny.dataset), vocab)
    before, after = plain.batch([flipped]), plain.augmented(flipper, seed=0).batch([flipped])
    np.testing.assert_array_equal(after["images"][0].numpy(), before["images"][0].numpy()[:, ::-1])
    assert vocab.parts.name(int(after["parts"][0])) == "right_" + vocab.parts.name(int(before["parts"][0]))[5:]
    assert float(after["geometry"][0, 3]) == -float(before["geometry"][0, 3])
    assert mirror_ids(vocab)[vocab.parts.id("head")] == vocab.parts.id("head")


@pytest.mark.parametrize("shift", [1, 2, 40])
def test_a_shift_moves_each_crop_by_its_offsets_repeating_the_edges(shift):
    rng = np.random.default_rng(shift)
    images = rng.integers(0, 256, (50, 12, 12, 3), dtype=np.uint8)
    rows = np.arange(100, 150)
    out, parts, _ = CropAugment(None, flip=False, shift=shift)(images, np.zeros(50, np.int64), None, seed=3, epoch=1,
                                                               rows=rows)
    u = row_uniforms(3, 1, rows, 3)
    d = np.floor(u[:, :2] * (2 * shift + 1)).astype(int) - shift  # each row's (dx, dy)
    assert (np.abs(d) <= shift).all() and len({tuple(x) for x in d}) > 5
    for i, (dx, dy) in enumerate(d):
        for y in range(12):
            for x in range(12):
                assert np.array_equal(out[i, y, x], images[i, min(max(y + dy, 0), 11), min(max(x + dx, 0), 11)])
    assert out.flags.c_contiguous and (parts == 0).all()
    empty, _, _ = CropAugment(None, shift=shift)(images[:0], np.zeros(0, np.int64), None, seed=3, epoch=1, rows=[])
    assert empty.shape == (0, 12, 12, 3)


# ----------------------------------------------------------------------------- samplers


def sampling_set(n_frames=40, parts_per_frame=5, seed=0):
    """A table of rows (no pixels needed to sample): a dominant state, a middling one and a rare one."""
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(n_frames):
        for k in range(parts_per_frame):
            state = rng.choice(["none", "bend", "kick"], p=[0.8, 0.15, 0.05])
            rows.append((f"v{f % 4}", f // 4 + 1, 0, 0, 0, 50, 90, "head", 10, 10, 20, 20, state))
    return pd.DataFrame(rows, columns=BOX_COLUMNS + ["state"])


def test_sampler_keeps_frames_together_and_draws_fresh_each_epoch():
    from tpslab.vocab import Vocab

    table = sampling_set()
    ds = PartCrops.from_array(np.zeros((len(table), 8, 8, 3), np.uint8), table, Vocab.default())
    sampler = CropSampler(ds, seed=1)
    a, b = sampler.indices(0), sampler.indices(1)
    assert sorted(a) == list(range(len(table))) and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, CropSampler(ds, seed=1).indices(0))  # a function of (seed, epoch)
    runs = ds.frame_id[a]
    assert (np.diff(runs) != 0).sum() == len(np.unique(runs)) - 1  # each frame's rows are contiguous
    assert not np.array_equal(np.sort(runs), runs)  # frames in a random order
    sub = CropSampler(ds, seed=1, num_samples=32)
    rows = sub.indices(0)
    assert len(sub) == 32 and len(set(rows)) == 32 and set(rows) != set(sub.indices(1))
    per_frame = np.bincount(ds.frame_id[rows])
    assert (per_frame[per_frame > 0] == 5).sum() >= 6  # whole frames (5 rows each), but perhaps the last
    loose = CropSampler(ds, seed=1, num_samples=32, group_frames=False).indices(0)
    assert len(set(loose)) == 32 and len(np.unique(ds.frame_id[loose])) > len(np.unique(ds.frame_id[rows]))
    with pytest.raises(ValueError, match="choose one"):
        CropSampler(ds, balance="state", cap_per_state=3)


def test_state_caps_and_balance_are_samplers_not_copies():
    from tpslab.vocab import Vocab

    table = sampling_set(n_frames=80)
    vocab = Vocab.default()
    ds = PartCrops.from_array(np.zeros((len(table), 8, 8, 3), np.uint8), table, vocab)
    counts = table["state"].value_counts()
    capped = CropSampler(ds, cap_per_state=30, seed=0)
    assert capped.states is ds.states and len(ds) == len(table)  # indices into the one dataset, no copy
    rows = capped.indices(0)
    got = pd.Series(table["state"].to_numpy()[rows]).value_counts()
    assert counts["kick"] < 30 < counts["bend"] < counts["none"]
    assert got["none"] == 30 and got["bend"] == 30 and got["kick"] == counts["kick"]  # rarer states whole
    assert len(rows) == len(capped) and len(set(rows)) == len(rows)
    assert set(rows[table["state"].to_numpy()[rows] == "none"]) != set(
        capped.indices(1)[table["state"].to_numpy()[capped.indices(1)] == "none"])  # a fresh choice each epoch
    balanced = CropSampler(ds, balance="state", num_samples=3000, seed=0)
    share = pd.Series(table["state"].to_numpy()[balanced.indices(0)]).value_counts(normalize=True)
    assert np.allclose(share.sort_index().to_numpy(), 1 / 3, atol=0.05)
    unlabelled = PartCrops.from_array(np.zeros((3, 8, 8, 3), np.uint8), table.iloc[:3].assign(state=None), vocab)
    with pytest.raises(ValueError, match="no row has a state"):
        CropSampler(unlabelled)


def test_video_blocks_read_each_video_forward():
    from tpslab.vocab import Vocab

    table = sampling_set(n_frames=120)
    table["video"] = [f"v{i % 12}" for i in range(len(table) // 5) for _ in range(5)]  # 12 videos of 10 frames
    ds = PartCrops.from_array(np.zeros((len(table), 8, 8, 3), np.uint8), table, Vocab.default())
    sampler = CropSampler(ds, video_block=3, seed=4)
    rows = sampler.indices(0)
    assert sorted(rows) == list(range(len(table)))
    video, frame = ds.video[rows], ds.frame[rows]
    blocks = [set(video[i:i + 150]) for i in range(0, len(rows), 150)]
    assert all(len(b) == 3 for b in blocks)  # 3 videos of 50 rows per block, one block after the other
    for v in np.unique(video):
        assert (np.diff(frame[video == v]) >= 0).all()  # each video read forward
    assert len(set(video[:20])) > 1  # and interleaved with the others of its block
    assert not np.array_equal(rows, sampler.indices(1))
    whole = CropSampler(ds, video_block=3, num_samples=100, seed=4).indices(0)
    assert len(whole) == 100 and np.bincount(ds.video[whole]).max() == 50  # whole videos (but the last)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_processes_share_each_global_batch(world):
    from tpslab.vocab import Vocab

    table = sampling_set(n_frames=20)  # 100 rows: batches of 32, the last one of 4
    ds = PartCrops.from_array(np.zeros((len(table), 8, 8, 3), np.uint8), table, Vocab.default())
    shares = [list(ShardedBatches(CropSampler(ds, seed=2), 32, rank=r, world_size=world)) for r in range(world)]
    single = list(ShardedBatches(CropSampler(ds, seed=2), 32))
    assert all(len(s) == len(single) == 4 for s in shares)
    for step, batch in enumerate(single):
        assert sum((s[step] for s in shares), []) == batch  # rank order = the batch's order
    with pytest.raises(ValueError, match="at least the number of processes"):
        ShardedBatches(CropSampler(ds), 2, world_size=3)


def test_prediction_batches_are_whole_videos_whatever_the_processes(tiny, videos):
    names, parts = videos
    ds = PartCrops(parts, video_paths(tiny.dataset), tiny.dataset.vocab)
    one = list(VideoBatches(ds, 100))
    assert all(len(set(ds.video[b])) == 1 for b in one) and max(map(len, one)) <= 100
    for b in one:  # pieces are cut between frames
        assert not set(ds.frame_id[b]) & set(ds.frame_id[np.setdiff1d(np.arange(len(ds)), b)])
    two = [list(VideoBatches(ds, 100, rank=r, world_size=2)) for r in range(2)]
    assert sorted(map(tuple, two[0] + two[1])) == sorted(map(tuple, one))
    assert np.array_equal(np.sort(np.concatenate([VideoBatches(ds, 100, rank=r, world_size=2).rows()
                                                  for r in range(2)])), np.arange(len(ds)))


def test_batch_view_hands_whole_batches(tiny, videos):
    names, parts = videos
    ds = PartCrops(parts, video_paths(tiny.dataset), tiny.dataset.vocab)
    view = BatchView(ds)
    empty = view.__getitems__([])[0]
    assert empty["images"].shape == (0, 32, 32, 3) and len(view) == len(ds)
    assert repr(ds).startswith(f"PartCrops({len(ds)} crops from 3 videos")
