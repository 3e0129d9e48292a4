"""tpslab.video: every backend hands out the frame a player shows, or says why it cannot.

Test videos carry their own index in pixels (tests/videogen.py); the expected index of each shown
frame follows from how the file was made (e.g. a cut at frame 17 shows 17, 18, ...), and is checked
against FFmpeg's own sequential decoding through PyAV.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import traceback
from dataclasses import replace

import av
import numpy as np
import pytest

import videogen as vg
from tpslab.video import (
    VideoError, clear_probe_cache, count_frames, frame_index, frame_name, frame_number_to_index, index_to_frame_number,
    open_video, probe,
)

N = 120
HAS_AV1 = "libsvtav1" in av.codecs_available


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    """name -> (path, expected index of each shown frame)."""
    d = tmp_path_factory.mktemp("videos")
    out = {}
    vg.write_video(d / "long_gop.mp4", N, gop=250, bframes=3)
    out["long_gop"] = (d / "long_gop.mp4", list(range(N)))
    vg.write_video(d / "short_gop.mp4", N, gop=12, bframes=2)
    out["short_gop"] = (d / "short_gop.mp4", list(range(N)))
    vg.write_video(d / "no_bframes.mkv", 40, gop=10, bframes=0)
    out["no_bframes_mkv"] = (d / "no_bframes.mkv", list(range(40)))
    # stream copy cut at frame 17 (inside a GOP) and at frame 30 of a single-GOP file: edit lists
    vg.trim_stream_copy(d / "short_gop.mp4", d / "cut17.mp4", 17)
    out["cut17"] = (d / "cut17.mp4", list(range(17, N)))
    vg.trim_stream_copy(d / "long_gop.mp4", d / "cut30_long.mp4", 30)
    out["cut30_long"] = (d / "cut30_long.mp4", list(range(30, N)))
    vg.shorten_edit_list(d / "cut17.mp4", d / "cut17_end.mp4", 50)
    out["cut17_end"] = (d / "cut17_end.mp4", list(range(17, 17 + 50)))
    # the same cut without an edit list shows every copied frame, from the keyframe at 12
    vg.trim_stream_copy(d / "short_gop.mp4", d / "cut17_noedit.mp4", 17, edit_list=False)
    out["cut17_noedit"] = (d / "cut17_noedit.mp4", list(range(12, N)))
    if HAS_AV1:
        vg.write_video(d / "av1.mp4", 40, codec="libsvtav1", gop=16)
        out["av1"] = (d / "av1.mp4", list(range(40)))
    return out


@pytest.fixture(scope="session")
def broken(tmp_path_factory, videos):
    d = tmp_path_factory.mktemp("broken")
    src = videos["short_gop"][0]
    vg.write_video(d / "faststart.mp4", N, gop=12, bframes=2, faststart=True)
    files = {
        "truncated": vg.truncate(src, d / "truncated.mp4", 0.5),  # index at the end: lost
        "truncated_faststart": vg.truncate(d / "faststart.mp4", d / "truncated_fs.mp4", 0.5),
        "empty": d / "empty.mp4",
        "missing": d / "missing.mp4",
        "text": d / "notes.mp4",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a video\n")
    data = bytearray(src.read_bytes())
    for k in np.random.default_rng(0).integers(2000, len(data) // 2, 40):
        data[k:k + 20] = bytes(20)
    files["corrupt"] = d / "corrupt.mp4"
    files["corrupt"].write_bytes(bytes(data))
    return files


def decode_all(path) -> list[int]:
    """FFmpeg's own sequential decoding, straight through PyAV: the reference for what a player shows."""
    with av.open(str(path)) as c:
        return [vg.read_index(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def read(reader, indices) -> list[int]:
    return vg.read_indices(reader.get(indices))


# ----------------------------------------------------------------------------- naming


def test_frame_names_map_release_numbers_to_indices():
    assert frame_name(0) == "img_00001.jpg"
    assert frame_name(4, ext="json") == "img_00005.json"
    assert frame_name(9, ext=None) == "img_00010"
    assert frame_index("img_00001.json") == 0
    assert frame_index("/data/x/img_00151.jpg") == 150
    assert frame_index("img_00007") == 6
    for i in (0, 1, 99, 12345):
        assert frame_index(frame_name(i)) == i
    assert frame_number_to_index(1) == 0 and index_to_frame_number(0) == 1
    np.testing.assert_array_equal(frame_number_to_index(np.array([1, 6, 11])), [0, 5, 10])
    np.testing.assert_array_equal(index_to_frame_number(np.array([0, 5])), [1, 6])


@pytest.mark.parametrize("bad", ["frame_0001.jpg", "img_.jpg", "img_00001.json.bak", ""])
def test_frame_index_rejects_other_names(bad):
    with pytest.raises(ValueError):
        frame_index(bad)


def test_frame_numbers_start_at_one():
    with pytest.raises(ValueError):
        frame_number_to_index(0)
    with pytest.raises(ValueError):
        frame_index("img_00000.jpg")
    with pytest.raises(ValueError):
        index_to_frame_number(-1)


# ----------------------------------------------------------------------------- the test files


def test_generated_files_are_what_they_claim(videos):
    # the reference decode shows what each file was built to show
    for name, (path, expected) in videos.items():
        assert decode_all(path) == expected, name
    # and the files exercise the traps: B-frames, edit lists hiding coded frames
    with av.open(str(videos["long_gop"][0])) as c:
        packets = [p for p in c.demux(video=0) if p.size]
        assert any(p.pts != p.dts for p in packets)  # reordered (B-)frames
        assert sum(p.is_keyframe for p in packets) == 1
    # cut17 copies from the keyframe at 12 (GOP 12): 108 coded frames, 5 hidden before the cut;
    # cut30_long copies all 120 and hides 30; cut17_end also hides all but 50 of the 108
    for name, coded, hidden in (("cut17", 108, 5), ("cut30_long", 120, 30), ("cut17_end", 108, 58)):
        info = probe(videos[name][0])
        assert (info.coded_frames, info.hidden_frames) == (coded, hidden), name


def test_plain_decord_is_wrong_on_edit_lists(videos):
    """The reason for the fallback: raw decord miscounts and misplaces frames of a cut file."""
    import decord

    path, expected = videos["cut17"]
    vr = decord.VideoReader(str(path))
    assert len(vr) == probe(path).coded_frames > len(expected)
    got = vg.read_indices(vr.get_batch([50, 10]).asnumpy())  # a seek past the first GOP
    assert got != [expected[50], expected[10]]


# ----------------------------------------------------------------------------- probe


def test_probe_counts_frames_a_player_shows(videos):
    for name, (path, expected) in videos.items():
        info = probe(path)
        assert info.num_frames == len(expected), name
        assert info.fps == pytest.approx(25.0)
        assert (info.width, info.height) == (128, 96)
        assert list(info.pts) == sorted(info.pts)


@pytest.mark.parametrize("kind,reason", [
    ("truncated", "cannot open"), ("truncated_faststart", "truncated"), ("empty", "empty"),
    ("missing", "not found"), ("text", "cannot open"),
])
def test_probe_rejects_broken_files_naming_them(broken, kind, reason):
    with pytest.raises(VideoError, match=reason) as err:
        probe(broken[kind])
    assert err.value.path == str(broken[kind])
    assert str(broken[kind]) in str(err.value)


# ----------------------------------------------------------------------------- readers


BACKENDS = ["pyav", "decord", "auto"]
DECORD_REFUSES = {"cut17", "cut30_long", "cut17_end", "av1"}


def _open(path, backend, name):
    if backend == "decord" and name in DECORD_REFUSES:
        with pytest.raises(VideoError, match="decord|edit list") as err:
            open_video(path, backend)
        assert str(path) in str(err.value)
        return None
    return open_video(path, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_unsorted_repeated_access_is_frame_exact(videos, backend):
    rng = np.random.default_rng(0)
    for name, (path, expected) in videos.items():
        reader = _open(path, backend, name)
        if reader is None:
            continue
        with reader:
            n = len(expected)
            assert len(reader) == n, name
            for _ in range(4):
                idx = rng.integers(0, n, size=9)
                idx[:2] = [n - 1, idx[2]]  # the last frame, and a repeat
                assert read(reader, idx) == [expected[i] for i in idx], (name, idx)
            assert read(reader, [5, 3, 1]) == [expected[5], expected[3], expected[1]], name
            assert read(reader, list(range(n))) == expected, name


def test_pyav_reads_frame_after_frame_without_seeking_back(videos):
    """One frame per call, forward (a player's or a labelling tool's access): each call goes on decoding
    where the last stopped, seeking only into a new GOP; jumps back, and decoding by iter_frames in
    between, still give the exact frames."""
    from tpslab.video import PyAVReader

    for name, (path, expected) in videos.items():
        with PyAVReader(path) as reader:
            seeks = []
            decode_from = reader._decode_from
            reader._decode_from = lambda seek_to: seeks.append(seek_to) or decode_from(seek_to)
            n = len(expected)
            assert [read(reader, [i])[0] for i in range(n)] == expected, name
            assert len(seeks) <= len(np.unique(reader.info.gop)), (name, len(seeks))
            steps = [3, 4, 9, 1, 2, n // 2, 0, n - 1, n - 2]  # forward with skips, back, to the end, back
            assert [read(reader, [i])[0] for i in steps] == [expected[i] for i in steps], name
            assert read(reader, [1, 2])[1] == expected[2] and next(reader.iter_frames()) is not None
            assert read(reader, [3]) == [expected[3]], name  # after iter_frames reopened the file


def test_a_dropped_pyav_reader_is_freed_at_once(videos):
    """A reader dropped without close() must not wait in a reference cycle for the garbage collector: a
    collection in a forked DataLoader worker that frees its decoder deadlocks on the decoder's threads."""
    import gc
    import weakref

    from tpslab.video import PyAVReader

    gc.disable()
    try:
        reader = PyAVReader(videos["short_gop"][0])
        reader.get([3])  # leaves its decoding live for the next call
        dropped = weakref.ref(reader)
        del reader
        assert dropped() is None
    finally:
        gc.enable()


def test_auto_uses_decord_only_where_it_is_exact(videos):
    for name, (path, _) in videos.items():
        with open_video(path) as reader:
            assert reader.active_backend == ("pyav" if name in DECORD_REFUSES else "decord"), name
            if name in DECORD_REFUSES:
                assert reader.fallback_reason


@pytest.mark.parametrize("backend", BACKENDS)
def test_indices_past_the_end_raise(videos, backend):
    path, expected = videos["cut17"] if backend != "decord" else videos["short_gop"]
    with open_video(path, backend) as reader:
        for bad in ([len(expected)], [0, len(expected) + 5], [-1]):
            with pytest.raises(IndexError, match=str(path)):
                reader.get(bad)
        assert reader.get([]).shape == (0, 96, 128, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_are_rgb_uint8(videos, backend):
    with open_video(videos["short_gop"][0], backend) as reader:
        frames = reader.get([3, 4])
        assert frames.dtype == np.uint8 and frames.shape == (2, 96, 128, 3)
        assert reader.size == (128, 96) and reader.fps == pytest.approx(25.0)
        red, blue = vg.strip_colours(frames[0])
        assert red[0] > 180 and red[2] < 70 and blue[2] > 180 and blue[0] < 70


def test_decord_and_pyav_give_the_same_pixels(videos):
    path, _ = videos["short_gop"]
    idx = [0, 50, 13, 119]
    with open_video(path, "decord") as d, open_video(path, "pyav") as p:
        diff = np.abs(d.get(idx).astype(int) - p.get(idx).astype(int))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 4


def test_pyav_without_timestamps_decodes_in_order(videos):
    path, expected = videos["cut17"]
    info = replace(probe(path), pts=None, seek_pts=None, gop=None, key_pts=None,
                   untrusted_times="simulated: no timestamps")
    from tpslab.video import PyAVReader

    with PyAVReader(path, info) as reader:
        assert read(reader, [40, 2, 2, 90]) == [expected[i] for i in (40, 2, 2, 90)]


def test_iter_frames_matches_get(videos):
    path, expected = videos["cut17_end"]
    with open_video(path, "pyav") as reader:
        assert vg.read_indices(reader.iter_frames()) == expected
        assert vg.read_indices(reader.iter_frames(stop=3)) == expected[:3]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["truncated", "truncated_faststart", "empty", "missing", "text"])
def test_broken_files_raise_video_error(broken, backend, kind):
    with pytest.raises(VideoError) as err:
        open_video(broken[kind], backend)
    assert str(broken[kind]) in str(err.value)


@pytest.mark.parametrize("backend", ["pyav", "auto"])
def test_corrupt_data_raises_instead_of_returning_junk(broken, backend):
    # the container is whole, the coded data damaged: decoding fails, loudly
    with pytest.raises(VideoError, match="corrupt.mp4"):
        with open_video(broken["corrupt"], backend) as reader:
            reader.get(np.arange(len(reader)))


@pytest.fixture(scope="session")
def damaged(videos, tmp_path_factory):
    """short_gop.mp4 with 16 bytes zeroed inside the packet of one P-frame: FFmpeg decodes the file to the end,
    concealing the errors (a frame of junk it flags as corrupt). Returns (path, that frame's index)."""
    src = videos["short_gop"][0]
    info = probe(src)
    with av.open(str(src)) as c:
        packets = [(p.pos, p.size, p.pts) for p in c.demux(video=0) if p.size and not p.is_keyframe]
    pos, size, pts = packets[len(packets) // 2]
    data = bytearray(src.read_bytes())
    data[pos + size // 3:pos + size // 3 + 16] = bytes(16)
    path = tmp_path_factory.mktemp("damaged") / "damaged.mp4"
    path.write_bytes(bytes(data))
    with av.open(str(path)) as c:  # plain FFmpeg: no error, one frame flagged
        assert [f.pts for f in c.decode(video=0) if f.is_corrupt] == [pts]
    return path, int(np.flatnonzero(info.pts == pts)[0])


def test_a_frame_the_decoder_had_to_conceal_is_an_error_not_junk(damaged, videos):
    path, bad = damaged
    expected = videos["short_gop"][1]
    with open_video(path, "pyav") as reader:
        with pytest.raises(VideoError, match=f"frame {bad} is damaged") as err:
            reader.get([bad])
        assert str(path) in str(err.value)
        assert read(reader, [0, bad - 13]) == [expected[0], expected[bad - 13]]  # an earlier GOP reads exactly
        with pytest.raises(VideoError, match=rf"frame {bad}\b.* damaged"):  # or a B-frame shown before it
            list(reader.iter_frames())
    with pytest.raises(VideoError, match=rf"frame {bad}\b.* damaged"):
        count_frames(path)  # check-videos --decode


def test_frames_that_depend_on_a_damaged_frame_are_errors_too_with_pyav(damaged, videos):
    """The decoder flags only the damaged frame; the frames decoded after it in its GOP (and the B-frames
    shown just before it) carry its concealed errors unflagged. PyAV handed them out as good frames read one
    by one; now each is an error, in any order, and the other GOPs still read exactly."""
    path, bad = damaged
    clean, expected = videos["short_gop"]
    with av.open(str(clean)) as a, av.open(str(path)) as b:  # plain FFmpeg: the frames the damage reached
        differ = [i for i, (x, y) in enumerate(zip(a.decode(video=0), b.decode(video=0)))
                  if not np.array_equal(x.to_ndarray(format="rgb24"), y.to_ndarray(format="rgb24"))]
    assert bad in differ and len(differ) > 3 and max(differ) > bad  # B-frames before it, P- and B-frames after
    info = probe(path)
    for i in differ:
        with open_video(path, "pyav") as reader:
            with pytest.raises(VideoError, match="damaged"):
                reader.get([i])
    with open_video(path, "pyav") as reader:
        with pytest.raises(VideoError, match="damaged"):
            reader.get([min(differ) - 1, max(differ)])  # on from a frame read in the same decoding
        other = [i for i in range(len(info.pts)) if info.gop[i] != info.gop[bad]]
        assert read(reader, other[::-1]) == [expected[i] for i in other[::-1]]
    with pytest.raises(VideoError, match="damaged"):
        with open_video(path, "pyav") as reader:
            for k, frame in enumerate(reader.iter_frames()):
                assert k < min(differ), k  # no frame the damage reached comes out
                assert vg.read_index(frame) == expected[k]


def test_folder_given_to_a_file_backend(tmp_path):
    with pytest.raises(VideoError, match="folder"):
        open_video(tmp_path, "pyav")


def test_readers_refuse_pickling(videos):
    for backend in BACKENDS:
        with open_video(videos["short_gop"][0], backend) as reader:
            with pytest.raises(TypeError, match="worker"):
                pickle.dumps(reader)


def test_video_error_survives_pickling():
    err = pickle.loads(pickle.dumps(VideoError("/x.mp4", "empty file")))
    assert (err.path, err.reason, str(err)) == ("/x.mp4", "empty file", "/x.mp4: empty file")


class _FailingClips:
    """A map-style dataset whose items all fail to read, as a broken video would."""

    def __init__(self, path):
        self.path = path

    def __len__(self):
        return 2

    def __getitem__(self, i):
        raise VideoError(self.path, "simulated: cannot decode")


def test_video_error_survives_a_dataloader_worker(tmp_path):
    import torch

    path = str(tmp_path / "broken.mp4")
    loader = torch.utils.data.DataLoader(_FailingClips(path), batch_size=1, num_workers=1)
    with pytest.raises(VideoError) as err:
        next(iter(loader))
    # The traceback's frames hold the loader's iterator in a reference cycle. Left to the garbage collector,
    # its shutdown finds the queues to its worker closed already and waits 5 s for the worker (in whichever
    # test the collection comes): clear the frames, and the iterator and its worker go now.
    traceback.clear_frames(err.tb)
    assert path in str(err.value) and "simulated: cannot decode" in str(err.value)
    again = pickle.loads(pickle.dumps(err.value))  # the re-raised form pickles too
    assert type(again) is VideoError and str(again) == str(err.value)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        open_video("x.mp4", "opencv")


# ----------------------------------------------------------------------------- rawframes


def _extract(video_path, folder, first=1):
    from PIL import Image

    folder.mkdir(parents=True)
    with open_video(video_path, "pyav") as reader:
        for i, frame in enumerate(reader.iter_frames()):
            Image.fromarray(frame).save(folder / f"img_{i + first:05d}.jpg", quality=95)
    return folder


def test_rawframes_match_the_video(videos, tmp_path):
    path, expected = videos["cut17"]
    folder = _extract(path, tmp_path / "cut17")
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(expected), 12)
    with open_video(folder) as raw, open_video(path) as video:
        assert raw.backend == "rawframes"
        assert len(raw) == len(video) == len(expected)
        assert raw.size == video.size
        a, b = raw.get(idx), video.get(idx)
        assert vg.read_indices(a) == [expected[i] for i in idx]
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3  # JPEG loss only


def test_rawframes_zero_based_folder_is_reported(tmp_path):
    folder = vg.write_rawframes(tmp_path / "v", 6, first=0)
    with pytest.raises(VideoError, match="0-based") as err:
        open_video(folder)
    assert str(folder) in str(err.value)
    with open_video(folder, "rawframes", first_number=0) as reader:  # read anyway, knowingly
        assert read(reader, [0, 5]) == [0, 5]


def test_rawframes_gaps_empty_and_bad_images(tmp_path):
    folder = vg.write_rawframes(tmp_path / "gap", 6)
    (folder / "img_00003.jpg").unlink()
    with pytest.raises(VideoError, match="img_00003"):
        open_video(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no img_"):
        open_video(tmp_path / "empty")
    with pytest.raises(VideoError, match="not found"):
        open_video(tmp_path / "nothing", "rawframes")
    folder = vg.write_rawframes(tmp_path / "bad", 4)
    (folder / "img_00002.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with open_video(folder) as reader:
        assert read(reader, [0, 3]) == [0, 3]
        with pytest.raises(VideoError, match="img_00002.jpg"):
            reader.get([1])
        with pytest.raises(IndexError):
            reader.get([4])


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_rawframes_with_an_exif_orientation_read_as_viewers_show_them(tmp_path, orientation):
    """A frame JPEG with an EXIF orientation (another tool's frames) is shown turned or mirrored by image
    viewers and by the detector toolchains (OpenCV's imread, detectron2): tpslab read the stored picture."""
    from PIL import Image, ImageOps

    from tpslab.interop import _scan_video

    folder = tmp_path / "v"
    folder.mkdir()
    rng = np.random.default_rng(orientation)
    pictures = []
    for n in (1, 2):
        img = Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8))
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(folder / f"img_{n:05d}.jpg", exif=exif, quality=95)
        with Image.open(folder / f"img_{n:05d}.jpg") as saved:
            pictures.append(np.asarray(ImageOps.exif_transpose(saved).convert("RGB")))
    shown = (48, 80) if orientation < 5 else (80, 48)
    with open_video(folder) as reader:
        assert (reader.height, reader.width) == shown
        np.testing.assert_array_equal(reader.get([0, 1]), np.stack(pictures))
    assert _scan_video((tmp_path, "v", None, [1, 2]))["size"] == shown[::-1]  # the COCO export's sizes


def test_count_frames_decodes_everything(videos, broken):
    for name in ("cut17_end", "short_gop"):
        path, expected = videos[name]
        assert count_frames(path) == len(expected)
    with pytest.raises(VideoError, match="corrupt.mp4"):
        count_frames(broken["corrupt"])


def test_iter_frames_resizes(videos):
    path, expected = videos["cut17"]
    with open_video(path, "pyav") as reader:
        frames = list(reader.iter_frames(stop=4, size=(64, 48)))
    assert frames[0].shape == (48, 64, 3)
    assert vg.read_indices(frames, made_at=(128, 96)) == expected[:4]


def test_auto_switches_to_pyav_when_decord_fails(videos, monkeypatch):
    from tpslab.video import AutoReader, DecordReader

    def broken_get(self, idx):
        raise VideoError(self.path, "simulated decord failure")

    path, expected = videos["short_gop"]
    monkeypatch.setattr(DecordReader, "_get", broken_get)
    with open_video(path) as reader:
        assert reader.active_backend == "decord"
        assert read(reader, [7, 3]) == [expected[7], expected[3]]
        assert reader.active_backend == "pyav" and "simulated" in reader.fallback_reason
    info = replace(probe(path), pts=None, seek_pts=None, gop=None, key_pts=None,
                   untrusted_times="simulated: no timestamps")
    with AutoReader(path, info) as reader:  # no timestamps: decoded in order by PyAV
        assert reader.active_backend == "pyav" and read(reader, [9]) == [expected[9]]
        assert reader.fallback_reason == ("its frames are numbered in decoding order (simulated: no timestamps), "
                                          "which decord does not follow")


def test_remembered_probe_follows_file_changes(videos, tmp_path):
    import shutil

    from tpslab.video import clear_probe_cache, probe_cached

    path = tmp_path / "v.mp4"
    shutil.copy(videos["short_gop"][0], path)
    assert probe_cached(path) is probe_cached(path)
    with open_video(path) as reader:
        assert len(reader) == N
    shutil.copy(videos["cut17"][0], path)  # replaced in place: another size and time
    with open_video(path) as reader:
        assert len(reader) == N - 17 and read(reader, [0]) == [17]
    path.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        open_video(path)
    clear_probe_cache()


# ----------------------------------------------------------------------------- other containers and codecs

X264_B = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
          "-x264-params", "keyint=12:min-keyint=12:scenecut=0:bframes=3:b-adapt=0"]
XVID_B = ["-c:v", "libxvid", "-bf", "2", "-q:v", "2"]  # AVI: packed B-frames ("DivX503b...p")
X264_OPEN_GOP = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                 "-x264-params", "keyint=12:min-keyint=12:scenecut=0:bframes=3:b-pyramid=2:open-gop=1"]
# kind -> (file name, ffmpeg output options); every file encodes frames 0..FOOTAGE_N-1
FOOTAGE = {
    "h264_bframes_mp4": ("h264.mp4", X264_B),
    "h264_bframes_mkv": ("h264.mkv", X264_B),
    "h264_bframes_avi": ("h264.avi", X264_B),
    "h264_bframes_ts": ("h264.ts", X264_B),
    "xvid_packed_avi": ("xvid.avi", XVID_B),
    "xvid_packed_gop12_avi": ("xvid_gop12.avi", [*XVID_B, "-g", "12"]),
    "mpeg4_bframes_mp4": ("mpeg4.mp4", ["-c:v", "mpeg4", "-bf", "2", "-g", "12", "-q:v", "2"]),
    "hevc_bframes_mp4": ("hevc.mp4", ["-c:v", "libx265", "-crf", "18",
                                      "-x265-params", "keyint=12:bframes=3:log-level=error"]),
    "vp9_webm": ("vp9.webm", ["-c:v", "libvpx-vp9", "-g", "24", "-crf", "10", "-b:v", "0", "-cpu-used", "8",
                              "-auto-alt-ref", "1", "-lag-in-frames", "16"]),
    "vp8_webm": ("vp8.webm", ["-c:v", "libvpx", "-g", "12", "-crf", "4", "-b:v", "1M"]),
    "xvid_no_bframes_avi": ("xvid_ip.avi", ["-c:v", "libxvid", "-bf", "0", "-g", "12", "-q:v", "2"]),
    # keyframes that are not IDR pictures: decord, seeking to one, handed out the wrong frames
    "h264_open_gop_mp4": ("h264_og.mp4", X264_OPEN_GOP),
    "h264_open_gop_mkv": ("h264_og.mkv", X264_OPEN_GOP),
    "h264_intra_refresh_mp4": ("h264_ir.mp4", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                                               "-x264-params", "keyint=12:intra-refresh=1:bframes=0"]),
}
FOOTAGE_N = 50


@pytest.fixture(scope="session")
def footage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("footage")


@pytest.fixture(scope="session")
def footage(footage_dir):
    """kind -> (path, what FFmpeg's sequential decode shows), each file made on first use."""
    made = {}

    def get(kind):
        if kind not in made:
            name, args = FOOTAGE[kind]
            encoder = args[args.index("-c:v") + 1]
            if encoder not in vg.ffmpeg_encoders():
                pytest.skip(f"the bundled ffmpeg has no {encoder} encoder")
            path = vg.write_video_ffmpeg(footage_dir / name, FOOTAGE_N, args)
            made[kind] = (path, decode_all(path))
        return made[kind]

    return get


@pytest.mark.parametrize("kind", FOOTAGE)
def test_footage_is_what_a_player_shows(footage, kind):
    path, shown = footage(kind)
    # a player shows the encoded frames in order (libxvid's packed B-frames lose the last two)
    assert shown == list(range(len(shown))) and len(shown) >= FOOTAGE_N - 2
    info = probe(path)
    assert info.num_frames == len(shown)
    assert (info.width, info.height) == (128, 96) and info.fps == pytest.approx(25.0)


def test_packed_bframes_footage_is_the_trap_it_claims(footage):
    """AVI with packed B-frames: more frames announced than decodable, decoded times out of order."""
    path, shown = footage("xvid_packed_avi")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert b"DivX" in bytes(stream.codec_context.extradata) and stream.frames == FOOTAGE_N > len(shown)
        times = [f.pts for f in c.decode(stream)]
    assert times != sorted(times)
    assert probe(path).num_frames == len(shown)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", FOOTAGE)
def test_every_frame_in_random_order(footage, kind, backend):
    """Each backend hands out every frame a player shows, in any order, or refuses the file."""
    path, shown = footage(kind)
    try:
        reader = open_video(path, backend)
    except VideoError as err:
        assert backend == "decord" and err.path == str(path) and "decord" in err.reason, err
        return
    rng = np.random.default_rng(sum(map(ord, kind)))
    with reader:
        assert len(reader) == len(shown)
        order = rng.permutation(len(shown))
        for chunk in np.array_split(order, 8):  # unsorted reads, each from wherever the last left off
            assert read(reader, chunk) == [shown[i] for i in chunk], (kind, chunk)
        assert read(reader, order) == [shown[i] for i in order], kind


@pytest.mark.parametrize("ext", ["mp4", "mkv", "hevc.mkv"])
def test_open_gop_video_cut_by_stream_copy_is_read_exactly_or_refused(footage, tmp_path, ext):
    """Cut at an open-GOP keyframe, a file starts with frames that depend on what was cut away. mp4's edit list
    hides them; this Matroska file has no times to tell them apart, and tpslab counted them (2 frames no player
    shows, and decord handed out wrong frames): now it refuses the file."""
    # (x265's GOPs are open by default: CRA pictures; the HEVC count was 3 frames too high)
    path, _ = footage("hevc_bframes_mp4") if ext == "hevc.mkv" else footage(f"h264_open_gop_{ext}")
    cut = tmp_path / f"cut.{ext}"
    subprocess.run([vg.ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-ss", "0.9", "-i", str(path), "-c",
                    "copy", str(cut)], check=True)
    shown = decode_all(cut)
    if ext.endswith("mkv"):
        with pytest.raises(VideoError, match="starts at a keyframe that is not an IDR picture") as err:
            probe(cut)
        assert err.value.path == str(cut)
        for backend in BACKENDS:
            with pytest.raises(VideoError, match="not an IDR picture"):
                open_video(cut, backend)
        return
    for backend in ("auto", "pyav"):
        with open_video(cut, backend) as reader:
            assert len(reader) == len(shown) and getattr(reader, "active_backend", "pyav") == "pyav"
            order = np.random.default_rng(3).permutation(len(shown))
            assert read(reader, order) == [shown[i] for i in order]
    with pytest.raises(VideoError, match="decord"):
        open_video(cut, "decord")


@pytest.mark.parametrize("crop", ["crop_left=2", "crop_left=16:crop_right=8:crop_top=8:crop_bottom=4"])
def test_pictures_cropped_on_the_left_or_top_by_the_stream_are_refused(footage, tmp_path, crop):
    """An H.264 stream may say to show only part of each coded picture. FFmpeg's decoders leave a crop on the left
    or top to the player: decord squeezed the whole picture into the shown size (every frame wrong, under auto),
    PyAV called it a size change mid-stream."""
    path, _ = footage("h264_bframes_mp4")
    cropped = tmp_path / "cropped.mp4"
    subprocess.run([vg.ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-i", str(path), "-c", "copy",
                    "-bsf:v", f"h264_metadata={crop}", str(cropped)], check=True)
    with pytest.raises(VideoError, match="crops its pictures") as err:
        probe(cropped)
    assert err.value.path == str(cropped) and "(they hand out " in err.value.reason
    for backend in BACKENDS:
        with pytest.raises(VideoError, match="crops its pictures"):
            open_video(cropped, backend)
    right = tmp_path / "right.mp4"  # a crop on the right and bottom is applied by the decoders: read exactly
    subprocess.run([vg.ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-i", str(path), "-c", "copy",
                    "-bsf:v", "h264_metadata=crop_right=2:crop_bottom=2", str(right)], check=True)
    shown = decode_all(right)
    for backend in BACKENDS:
        with open_video(right, backend) as reader:
            assert reader.size == (126, 94)
            order = np.random.default_rng(5).permutation(len(shown))
            assert read(reader, order) == [shown[i] for i in order]


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_a_file_with_two_video_streams_is_refused_not_read_from_a_guessed_one(footage, tmp_path, ext):
    """Players show the default stream, decord its own pick, PyAV the first: with the second marked default,
    auto and decord read one stream and pyav the other, without a word."""
    from PIL import Image

    path, _ = footage("h264_bframes_mp4")
    two = vg.mux_streams(tmp_path / f"two.{ext}", [path, path], "-disposition:v:0", "0", "-disposition:v:1",
                         "default")
    Image.fromarray(vg.make_frame(2000)).save(tmp_path / "cover.png")
    # an image before the video: Matroska keeps it as a one-frame video stream, which PyAV read as the video
    cover = vg.mux_streams(tmp_path / f"cover.{ext}", [tmp_path / "cover.png", path], "-c:v:0", "mjpeg")
    for file in (two, cover):
        message = f"holds 2 video streams ({'h264, h264' if file == two else 'mjpeg, h264'})"
        with pytest.raises(VideoError, match=re.escape(message)) as err:
            probe(file)
        assert err.value.path == str(file) and "-map 0:v:N" in err.value.reason
        for backend in BACKENDS:
            with pytest.raises(VideoError, match=re.escape(message)):
                open_video(file, backend)


def test_a_cover_picture_is_not_a_second_video_stream(footage, tmp_path):
    from PIL import Image

    path, shown = footage("h264_bframes_mp4")
    Image.fromarray(vg.make_frame(2000)).save(tmp_path / "cover.png")
    # mp4 keeps an attached picture as such (stored after the video whatever the order asked)
    file = vg.mux_streams(tmp_path / "cover.mp4", [tmp_path / "cover.png", path], "-c:v:0", "mjpeg",
                          "-disposition:v:0", "attached_pic")
    with av.open(str(file)) as c:
        assert len(c.streams.video) == 2
    assert probe(file).num_frames == len(shown)
    for backend in BACKENDS:
        with open_video(file, backend) as reader:
            assert read(reader, range(len(shown))) == shown, backend


def player_frames(path, turned: bool) -> np.ndarray:
    """Every frame as the ffmpeg command shows it (turned and mirrored by the display matrix), (n, h, w, 3)."""
    out = subprocess.run([vg.ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    height, width = (128, 96) if turned else (96, 128)
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)


def with_display_matrix(src, dst, rotation, hflip=False, vflip=False):
    """A stream copy of ``src`` whose display matrix turns the picture (as phones record) and mirrors it."""
    flags = ["-display_rotation", str(rotation)] + ["-display_hflip"] * hflip + ["-display_vflip"] * vflip
    subprocess.run([vg.ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", *flags, "-i", str(src), "-c", "copy",
                    str(dst)], check=True)
    return dst


@pytest.mark.parametrize("rotation,hflip,vflip", [(90, False, False), (-90, False, False), (180, False, False),
                                                  (0, True, False), (90, True, False), (270, False, True)])
def test_a_turned_or_mirrored_video_reads_as_players_show_it(footage, tmp_path, rotation, hflip, vflip):
    """A phone video's display matrix: pyav returned the picture as stored, decord turned it (but ignores
    mirrors), and probe and reader.size gave the stored size, without a word."""
    from PIL import Image

    from tpslab.video import PyAVReader

    path, shown = footage("h264_bframes_mp4")
    file = with_display_matrix(path, tmp_path / "turned.mp4", rotation, hflip, vflip)
    want = player_frames(file, turned=rotation % 180 != 0)
    assert len(want) == len(shown)
    info = probe(file)
    assert (info.height, info.width) == want.shape[1:3] and info.display is not None
    order = np.random.default_rng(rotation % 360 + 2 * hflip + vflip).permutation(len(want))
    for backend in ("pyav", "auto"):
        with open_video(file, backend) as reader:
            assert reader.size == (want.shape[2], want.shape[1]) and reader.get([]).shape == (0, *want.shape[1:])
            for chunk in np.array_split(order, 4):
                assert np.abs(reader.get(chunk).astype(int) - want[chunk]).max() <= 2, (backend, chunk)
    with pytest.raises(VideoError, match="display matrix turns or mirrors"):
        open_video(file, "decord")
    # frames resized on the way (extract-frames --short-side): scaled as stored, then turned
    size = (want.shape[2] // 2, want.shape[1] // 2)
    with PyAVReader(file) as reader:
        small = next(reader.iter_frames(size=size))
    expected = np.asarray(Image.fromarray(want[0]).resize(size, Image.BILINEAR))
    assert small.shape == expected.shape and np.abs(small.astype(int) - expected).mean() < 8


def test_a_turn_that_is_not_a_quarter_turn_is_refused(footage, tmp_path):
    file = with_display_matrix(footage("h264_bframes_mp4")[0], tmp_path / "tilted.mp4", 45)
    with pytest.raises(VideoError, match="turns the picture by 45 degrees, which tpslab does not apply"):
        probe(file)


def test_a_picture_size_that_changes_mid_stream_is_an_error_not_frames_of_two_sizes(tmp_path):
    """Two H.264 streams of different sizes joined: check-videos --decode said ok and extract-frames wrote
    frames of both sizes (their record giving the first), so boxes fitted half of them."""
    from tpslab.video import PyAVReader

    x264 = ["-c:v", "libx264", "-bf", "0", "-f", "h264"]
    first = vg.write_video_ffmpeg(tmp_path / "a.h264", 12, x264)
    second = vg.write_video_ffmpeg(tmp_path / "b.h264", 12, x264, width=160, height=120)
    (tmp_path / "ab.h264").write_bytes(first.read_bytes() + second.read_bytes())
    path = tmp_path / "ab.mp4"
    subprocess.run([vg.ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-r", "25", "-i",
                    str(tmp_path / "ab.h264"), "-c", "copy", str(path)], check=True)
    assert probe(path).num_frames == 24 and (probe(path).width, probe(path).height) == (128, 96)
    message = "frame {} is 160x120 where the video's first frames are 128x96: the picture size changes mid-stream"
    with pytest.raises(VideoError, match=message.format(12)):
        count_frames(path)
    with PyAVReader(path) as reader:
        assert read(reader, [3, 11]) == [3, 11]
        with pytest.raises(VideoError, match=message.format(20)):
            reader.get([20])
        with pytest.raises(VideoError, match=message.format(12)):
            list(reader.iter_frames(size=(64, 48)))


def test_a_raw_stream_muxed_without_times_is_read_in_decoding_order(tmp_path):
    """H.264 with B-frames copied from a raw stream into mp4: presentation times equal decoding times, so they
    do not give the order. Reading trusted them and refused a playable file ("frame 0 did not decode (got
    time 512, expected 0; corrupt file?)"); frames now come in the decoder's order, as ffmpeg shows them."""
    raw = vg.write_video_ffmpeg(tmp_path / "raw.h264", 30, ["-c:v", "libx264", "-bf", "2", "-g", "12", "-f", "h264"])
    path = tmp_path / "raw.mp4"
    subprocess.run([vg.ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-r", "25", "-i", str(raw), "-c", "copy",
                    str(path)], check=True)
    info = probe(path)
    assert "presentation times equal its decoding times" in info.untrusted_times
    out = subprocess.run([vg.ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-fps_mode",
                          "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True)
    shown = vg.read_indices(np.frombuffer(out.stdout, np.uint8).reshape(-1, 96, 128, 3))
    assert shown == sorted(shown) and len(shown) == info.num_frames  # the decoder's order is the display order
    assert count_frames(path) == len(shown)
    for backend in ("pyav", "auto"):
        with open_video(path, backend) as reader:
            assert read(reader, range(len(shown))) == shown
            assert read(reader, [len(shown) - 1, 0]) == [shown[-1], shown[0]]


def test_a_picture_beyond_the_pixel_limit_is_refused_before_decoding(footage, monkeypatch):
    """A 560 KB file of 16000 x 16000 frames took 2.4 GB to extract one frame at a time (a traceback under a
    4 GB limit). The limit is a module constant, checked on the header before any frame is decoded."""
    import tpslab.video as video

    path, _ = footage("h264_bframes_mp4")
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 128 * 96 - 1)
    clear_probe_cache()  # readers take probes remembered from earlier tests
    with pytest.raises(VideoError, match=r"frames of 128x96 \(0\.0 GiB each as RGB\) are beyond the 0\.0 megapixels"):
        probe(path)
    for backend in BACKENDS:
        with pytest.raises(VideoError, match="MAX_FRAME_PIXELS"):
            open_video(path, backend)
    monkeypatch.undo()
    clear_probe_cache()
    assert probe(path).width == 128


def test_truncated_avi_is_still_refused(footage, tmp_path):
    path = vg.truncate(footage("xvid_packed_avi")[0], tmp_path / "cut.avi", 0.5)
    with pytest.raises(VideoError, match="truncated") as err:
        probe(path)
    assert err.value.path == str(path)


def test_untrusted_times_are_numbered_in_decoding_order(footage, videos):
    for kind in ("xvid_packed_avi", "h264_bframes_avi"):
        info = probe(footage(kind)[0])
        assert info.container == "avi" and "B-frames" in info.untrusted_times and info.pts is None, kind
    # no reordering, or times the file stores (Matroska: presentation times only, with B-frames)
    for kind in ("xvid_no_bframes_avi", "h264_bframes_mp4", "h264_bframes_mkv"):
        info = probe(footage(kind)[0])
        assert info.untrusted_times is None and len(info.pts) == info.num_frames, kind
    with av.open(str(footage("h264_bframes_mkv")[0])) as c:
        assert any(p.dts is None for p in c.demux(video=0) if p.size)


def test_a_seek_past_the_wanted_frame_falls_back_to_decoding_in_order(footage):
    from tpslab.video import PyAVReader

    path, shown = footage("h264_bframes_mkv")
    info = probe(path)
    late = replace(info, seek_pts=np.full_like(info.seek_pts, info.seek_pts[-1]))  # every seek lands late
    with PyAVReader(path, late) as reader:
        assert read(reader, [40, 3, len(shown) - 1]) == [shown[40], shown[3], shown[-1]]


def test_decord_only_on_verified_kinds(footage):
    """decord (and auto through it) reads only verified kinds, and every verified kind is read above."""
    from tpslab.video import DECORD_VERIFIED

    verified = {(c, k) for c, codecs in DECORD_VERIFIED.items() for k in codecs}
    made, by_decord = set(), set()
    for kind in FOOTAGE:
        try:
            path, _ = footage(kind)
        except pytest.skip.Exception:
            continue
        info = probe(path)
        made.add((info.container, info.codec))
        try:
            open_video(path, "decord").close()
            by_decord.add((info.container, info.codec))
        except VideoError as err:
            assert "decord" in err.reason
        with open_video(path) as reader:
            if reader.active_backend == "decord":
                assert (info.container, info.codec) in verified and info.untrusted_times is None, kind
            else:
                assert reader.fallback_reason, kind
    assert by_decord == made & verified  # test_every_frame_in_random_order checks each of their frames
    if verified - made:
        pytest.skip(f"no footage made for {sorted(verified - made)}")


def test_decoding_order_refuses_more_frames_than_counted(footage):
    from tpslab.video import PyAVReader

    path, shown = footage("xvid_packed_avi")
    info = replace(probe(path), num_frames=len(shown) - 1)
    with PyAVReader(path, info) as reader:
        assert read(reader, [3, 0]) == [3, 0]
        with pytest.raises(VideoError, match="more frames"):
            reader.get([len(shown) - 2])


# ----------------------------------------------------------------------------- installs


@pytest.fixture
def decord_install(monkeypatch):
    """Fake what is installed: returns a function taking the installed decord distributions."""
    import importlib.metadata

    from tpslab import video

    real = importlib.metadata.distribution

    def fake(installed, importable=True):
        def distribution(name):
            if name in ("decord", "decord2"):
                if name not in installed:
                    raise importlib.metadata.PackageNotFoundError(name)
                return real("numpy")  # an installed distribution stands in
            return real(name)

        monkeypatch.setattr(importlib.metadata, "distribution", distribution)
        if not importable:
            monkeypatch.setitem(sys.modules, "decord", None)  # import decord raises ImportError
        video._decord_status.cache_clear()

    yield fake
    monkeypatch.undo()
    video._decord_status.cache_clear()


def test_decord_and_decord2_together_are_refused(videos, decord_install):
    path, expected = videos["short_gop"]
    decord_install({"decord", "decord2"})
    with pytest.raises(ImportError, match="decord2 are installed.*pip uninstall"):
        open_video(path, "decord")
    with open_video(path) as reader:
        assert reader.active_backend == "pyav" and "decord2 are installed" in reader.fallback_reason
        assert read(reader, [7, 3]) == [expected[7], expected[3]]


@pytest.mark.parametrize("installed", [set(), {"decord2"}])
def test_without_decord_auto_uses_pyav(videos, decord_install, installed):
    path, expected = videos["short_gop"]
    decord_install(installed, importable=False)
    with pytest.raises(ImportError, match="decord cannot be imported.*backend='pyav'"):
        open_video(path, "decord")
    with open_video(path) as reader:
        assert reader.active_backend == "pyav" and "cannot be imported" in reader.fallback_reason
        assert read(reader, [5, 0]) == [expected[5], expected[0]]


@pytest.mark.parametrize("installed", [{"decord"}, {"decord2"}])
def test_one_decord_package_is_used(videos, decord_install, installed):
    decord_install(installed)
    with open_video(videos["short_gop"][0]) as reader:
        assert reader.active_backend == "decord"
