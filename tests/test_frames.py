"""tpslab.frames (check-videos, extract-frames) on a hand-made release with index-coded videos."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tpslab
import videogen as vg
from release import human, make_release, part
from tpslab.cli import main
from tpslab.frames import check_videos, extract_frames, summarize_check, summarize_extraction

PLAIN, CUT, LONGER, BROKEN, TESTV = "plain", "cut", "longer", "broken", "testv"


def _frames(*numbers):
    return {n: {"humans": [human([2, 2, 60, 80], [part("head", [10, 5, 20, 15], "none")])]} for n in numbers}


def video_release(root):
    """Five videos: plain (30 frames), cut (edit list, shows frames 7..31 = 25 frames, annotated past
    its end), longer (flist says 40, shows 30), broken (truncated), testv (test split, 20 frames)."""
    make_release(root, {
        ("lunge", PLAIN): _frames(1, 6, 11),
        ("lunge", CUT): _frames(1, 26),
        ("push_up", LONGER): _frames(1),
        ("push_up", BROKEN): _frames(1),
    }, test_videos=[("lunge", TESTV, 20)])
    train, test = root / "train_videos", root / "test_videos"
    vg.write_video(train / "lunge" / f"{PLAIN}.mp4", 30, gop=12, bframes=2)
    vg.write_video(root / "src.mp4", 32, gop=12, bframes=2)
    vg.trim_stream_copy(root / "src.mp4", train / "lunge" / f"{CUT}.mp4", 7)
    (root / "src.mp4").unlink()
    vg.write_video(train / "push_up" / f"{LONGER}.mp4", 30, gop=12, bframes=2)
    vg.write_video(root / "whole.mp4", 30, faststart=True)
    vg.truncate(root / "whole.mp4", train / "push_up" / f"{BROKEN}.mp4", 0.6)
    (root / "whole.mp4").unlink()
    vg.write_video(test / "lunge" / f"{TESTV}.mp4", 20, gop=12, bframes=2)
    (root / "list" / "video_train_flist.csv").write_text(
        f"class,video,frames\nlunge,{PLAIN},30\nlunge,{CUT},25\npush_up,{LONGER},40\npush_up,{BROKEN},30\n")
    (root / "list" / "video_test_flist.csv").write_text(f"class,video,frames\nlunge,{TESTV},20\n")
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return video_release(tmp_path_factory.mktemp("frames") / "Kinetics-TPS")


@pytest.fixture(scope="module")
def dataset(release):
    return tpslab.load_dataset(release, progress=False)


def test_check_videos_reports_counts_and_mismatches(dataset):
    report = check_videos(dataset, progress=False).set_index("video")
    assert report.loc[PLAIN, "status"] == "ok" and report.loc[PLAIN, "decoded_frames"] == 30
    assert report.loc[PLAIN, "max_annotated_frame"] == 11
    assert report.loc[CUT, "decoded_frames"] == 25 and report.loc[CUT, "hidden_frames"] > 0
    assert report.loc[CUT, "annotated_past_end"] and not report.loc[CUT, "flist_mismatch"]
    assert report.loc[CUT, "status"] == "mismatch"
    assert report.loc[LONGER, "flist_mismatch"] and report.loc[LONGER, "status"] == "mismatch"
    assert report.loc[BROKEN, "status"] == "error" and "truncated" in report.loc[BROKEN, "error"]
    assert pd.isna(report.loc[BROKEN, "decoded_frames"])
    assert report.loc[TESTV, "status"] == "ok" and pd.isna(report.loc[TESTV, "max_annotated_frame"])
    text = summarize_check(report.reset_index())
    assert f"{CUT}: annotated up to img_00026 but shows 25 frames" in text
    assert f"{LONGER}: shows 30 frames, flist says 40" in text
    assert f"error     {BROKEN}" in text
    assert text.splitlines()[-1].startswith("5 videos: 2 ok, 1 differ from the flist count, 1 annotated")


def test_check_videos_decoding_and_workers_agree(dataset):
    fast = check_videos(dataset, progress=False)
    full = check_videos(dataset, decode=True, workers=2, progress=False)
    pd.testing.assert_frame_equal(fast, full)


def _jpg_indices(folder, made_at=None):
    files = sorted(folder.glob("img_*.jpg"))
    return [vg.read_index(np.asarray(Image.open(f)), made_at) for f in files], files


def test_extract_frames_writes_release_numbering_and_resumes(dataset, tmp_path):
    out = tmp_path / "rawframes"
    report = extract_frames(dataset, out, progress=False).set_index("video")
    assert report.loc[PLAIN, "status"] == "extracted" and report.loc[PLAIN, "frames_written"] == 30
    got, files = _jpg_indices(out / "train" / "lunge" / CUT)
    assert files[0].name == "img_00001.jpg" and len(files) == 25
    assert got == list(range(7, 32))  # img_00001.jpg is the first frame a player shows
    assert report.loc[LONGER, "flist_mismatch"] and report.loc[LONGER, "frames_written"] == 30
    assert report.loc[BROKEN, "status"] == "error" and "truncated" in report.loc[BROKEN, "note"]
    assert not (out / "train" / "push_up" / BROKEN).exists()
    assert (out / "test" / "lunge" / TESTV / "img_00020.jpg").is_file()
    assert not list(out.rglob(".*partial*"))
    text = summarize_extraction(report.reset_index())
    assert f"count         {LONGER}: wrote 30 frames, flist says 40" in text
    assert "4 extracted" in text.splitlines()[-1]

    # spoil three folders the way other tools leave them: short, empty, 0-based
    plain = out / "train" / "lunge" / PLAIN
    (plain / "img_00030.jpg").unlink()
    for f in (out / "test" / "lunge" / TESTV).iterdir():
        f.unlink()
    cut = out / "train" / "lunge" / CUT
    for i in range(1, 26):
        (cut / f"img_{i:05d}.jpg").rename(cut / f"img_{i - 1:05d}.jpg")
    again = extract_frames(dataset, out, progress=False).set_index("video")
    assert again.loc[LONGER, "status"] == "complete"
    assert again.loc[PLAIN, "status"] == "re-extracted" and "short (29 of 30" in again.loc[PLAIN, "note"]
    assert again.loc[TESTV, "status"] == "re-extracted" and "empty" in again.loc[TESTV, "note"]
    assert again.loc[CUT, "status"] == "re-extracted" and "0-based" in again.loc[CUT, "note"]
    assert _jpg_indices(cut)[0] == list(range(7, 32))
    assert _jpg_indices(plain)[0] == list(range(30))
    assert "re-extracted  plain: previous folder was short" in summarize_extraction(again.reset_index())


def test_extract_frames_short_side_and_workers(dataset, tmp_path):
    report = extract_frames(dataset, tmp_path / "small", short_side=48, workers=2, progress=False)
    assert (report["status"] == "error").sum() == 1
    folder = tmp_path / "small" / "train" / "lunge" / CUT
    first = Image.open(folder / "img_00001.jpg")
    assert first.size == (64, 48)
    assert _jpg_indices(folder, made_at=(128, 96))[0] == list(range(7, 32))


def test_cli_check_and_extract(release, tmp_path, capsys):
    assert main(["check-videos", str(release), "--quiet"]) == 1  # mismatches and a broken file
    out = capsys.readouterr().out
    assert "5 videos: 2 ok" in out and BROKEN in out
    assert main(["extract-frames", str(release), str(tmp_path / "x"), "--workers", "1", "--quiet"]) == 1
    assert "4 extracted" in capsys.readouterr().out

    clean = make_release(tmp_path / "clean", {("lunge", PLAIN): _frames(1, 6)})
    vg.write_video(clean / "train_videos" / "lunge" / f"{PLAIN}.mp4", 30)
    (clean / "list" / "video_train_flist.csv").write_text(f"class,video,frames\nlunge,{PLAIN},30\n")
    assert main(["check-videos", str(clean), "--quiet", "--decode"]) == 0
    assert "1 videos: 1 ok" in capsys.readouterr().out
    for expected in ("1 extracted", "1 already complete"):
        assert main(["extract-frames", str(clean), str(tmp_path / "y"), "--short-side", "48", "--quiet"]) == 0
        assert expected in capsys.readouterr().out
