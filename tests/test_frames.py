"""tpslab.frames (check-videos, extract-frames) on a hand-made release with index-coded videos."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tpslab
import videogen as vg
from release import human, make_release, part
from tpslab.cli import main
from tpslab.frames import MANIFEST, check_videos, extract_frames, summarize_check, summarize_extraction
from tpslab.memory import owner_tag

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


def test_check_videos_names_where_a_missing_video_belongs(tmp_path):
    root = video_release(tmp_path / "Kinetics-TPS")
    (root / "train_videos" / "lunge" / f"{PLAIN}.mp4").unlink()
    text = summarize_check(check_videos(tpslab.load_dataset(root, progress=False), progress=False))
    assert f"error     {PLAIN}: no video file (class lunge, train split)" in text and "nan" not in text


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
    assert f"count         {LONGER}: the video shows 30 frames, flist says 40" in text
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
    # img_00000.jpg is a name tpslab never wrote: the folder is refused and left as it is
    assert again.loc[CUT, "status"] == "refused" and "did not write (img_00000.jpg)" in again.loc[CUT, "note"]
    assert sorted(f.name for f in cut.glob("img_*"))[:2] == ["img_00000.jpg", "img_00001.jpg"]
    assert len(list(cut.glob("img_*"))) == 25
    assert _jpg_indices(plain)[0] == list(range(30))
    text = summarize_extraction(again.reset_index())
    assert "re-extracted  plain: previous folder was short" in text
    assert f"refused       {CUT}: {cut} holds frame files tpslab did not write" in text


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


# ----------------------------------------------------------------------------- extraction never lies, never deletes


@pytest.fixture
def one_video(tmp_path):
    """A release with one 30-frame train video, made per test (tests change its files)."""
    root = make_release(tmp_path / "one", {("lunge", PLAIN): _frames(1, 6)})
    vg.write_video(root / "train_videos" / "lunge" / f"{PLAIN}.mp4", 30)
    (root / "list" / "video_train_flist.csv").write_text(f"class,video,frames\nlunge,{PLAIN},30\n")
    return tpslab.load_dataset(root, progress=False)


def _one(dataset, out, **kw):
    return extract_frames(dataset, out, progress=False, **kw).set_index("video").loc[PLAIN]


def _snapshot(folder):
    return {f.name: f.read_bytes() for f in folder.iterdir()}


def test_resume_with_other_settings_is_never_reported_complete(one_video, tmp_path):
    out = tmp_path / "out"
    folder = out / "train" / "lunge" / PLAIN
    assert _one(one_video, out, short_side=48)["status"] == "extracted"
    assert Image.open(folder / "img_00001.jpg").size == (64, 48)
    before = _snapshot(folder)
    for other in ({}, {"short_side": 48, "quality": 80}):  # full size; another JPEG quality
        row = _one(one_video, out, **other)
        assert row["status"] == "refused", row["note"]
        assert "was made with short side 48, quality 95" in row["note"] and "replace" in row["note"]
        assert _snapshot(folder) == before  # refused folders are left untouched
    assert _one(one_video, out, short_side=48)["status"] == "complete"
    row = _one(one_video, out, replace=True)
    assert row["status"] == "re-extracted" and "was made with short side 48" in row["note"]
    assert Image.open(folder / "img_00001.jpg").size == (128, 96)
    assert _jpg_indices(folder)[0] == list(range(30))
    assert _one(one_video, out)["status"] == "complete"
    record = json.loads((folder / MANIFEST).read_text())
    assert record["settings"] == {"short_side": None, "quality": 95} and record["complete"]
    assert sorted(record["frames"]) == [f"img_{i:05d}.jpg" for i in range(1, 31)]


def test_a_changed_video_or_an_interrupted_replacement_is_redone(one_video, tmp_path):
    out = tmp_path / "out"
    folder = out / "train" / "lunge" / PLAIN
    _one(one_video, out)
    video = one_video.videos["path"].iloc[0]
    os.utime(video, ns=(os.stat(video).st_atime_ns, os.stat(video).st_mtime_ns + 10**9))
    row = _one(one_video, out)
    assert row["status"] == "re-extracted" and "earlier version of the video" in row["note"]
    record = json.loads((folder / MANIFEST).read_text())
    record["complete"] = False
    (folder / MANIFEST).write_text(json.dumps(record))
    row = _one(one_video, out)
    assert row["status"] == "re-extracted" and "interrupted" in row["note"]
    # frames of another size than the video now reads at (an older tpslab read a phone video unturned)
    record = json.loads((folder / MANIFEST).read_text())
    record["size"] = record["size"][::-1]
    (folder / MANIFEST).write_text(json.dumps(record))
    row = _one(one_video, out)
    assert row["status"] == "re-extracted" and "frames of 96x128, where the video reads at 128x96" in row["note"]
    assert json.loads((folder / MANIFEST).read_text())["size"] == [128, 96]


def test_extraction_never_deletes_a_file_it_did_not_write(one_video, tmp_path):
    out = tmp_path / "out"
    folder = out / "train" / "lunge" / PLAIN
    _one(one_video, out)
    (folder / "notes.txt").write_text("my notes")
    (folder / "crops").mkdir()
    (folder / "crops" / "a.png").write_bytes(b"x")
    (folder / "img_00030.jpg").unlink()
    row = _one(one_video, out)
    assert row["status"] == "re-extracted" and "short (29 of 30" in row["note"]
    assert "kept 2 files tpslab did not write (crops, notes.txt)" in row["note"]
    assert (folder / "notes.txt").read_text() == "my notes" and (folder / "crops" / "a.png").is_file()
    assert _jpg_indices(folder)[0] == list(range(30))
    assert _one(one_video, out)["status"] == "complete"

    # frames another tool wrote (no record): refused, not one file touched
    other = tmp_path / "other"
    theirs = other / "train" / "lunge" / PLAIN
    vg.write_rawframes(theirs, 12)
    (theirs / "notes.txt").write_text("mine")
    before = _snapshot(theirs)
    row = _one(one_video, other)
    assert row["status"] == "refused" and "12 frame file(s) tpslab has no record of writing" in row["note"]
    assert _snapshot(theirs) == before
    # a frame file beside tpslab's that tpslab did not write
    (folder / "img_00031.jpg").write_bytes(b"not mine")
    row = _one(one_video, out, replace=True)
    assert row["status"] == "refused" and "did not write (img_00031.jpg)" in row["note"]
    assert (folder / "img_00031.jpg").read_bytes() == b"not mine"


def test_a_damaged_frame_in_a_complete_folder_is_found_and_redone(one_video, tmp_path):
    out = tmp_path / "out"
    folder = out / "train" / "lunge" / PLAIN
    _one(one_video, out)
    frame = folder / "img_00010.jpg"
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) // 2])  # truncated
    row = _one(one_video, out)
    assert row["status"] == "re-extracted" and "1 damaged frame(s) (img_00010.jpg" in row["note"]
    assert frame.read_bytes() == data
    frame.write_bytes(bytes(len(data)))  # the right size, zeros (a crash on some file systems)
    row = _one(one_video, out)
    assert row["status"] == "re-extracted" and "img_00010.jpg" in row["note"]
    assert _jpg_indices(folder)[0] == list(range(30))
    (folder / MANIFEST).write_text("{ damaged")
    row = _one(one_video, out)
    assert row["status"] == "refused" and "record .tpslab-frames.json is damaged" in row["note"]


def test_a_frame_edited_since_extraction_is_kept_unless_replace(one_video, tmp_path):
    """A complete JPEG of another size where tpslab wrote a frame is someone's edit (a blurred face, a
    re-encode), not crash damage: it was replaced without a word."""
    from PIL import Image

    out = tmp_path / "out"
    folder = out / "train" / "lunge" / PLAIN
    _one(one_video, out)
    frame = folder / "img_00010.jpg"
    original = frame.read_bytes()
    with Image.open(frame) as im:
        im.convert("L").convert("RGB").save(frame, quality=60)  # the user's edit: a valid JPEG of another size
    edited = frame.read_bytes()
    assert edited != original and len(edited) != len(original)
    row = _one(one_video, out)
    assert row["status"] == "refused" and frame.read_bytes() == edited
    assert ("1 frame(s) changed since tpslab wrote them (img_00010.jpg: complete images of another size, e.g. "
            "edited); left untouched: re-extract them with replace=True (--replace), or move them away") in row["note"]
    row = _one(one_video, out, replace=True)
    assert row["status"] == "re-extracted" and frame.read_bytes() == original


def test_partial_folders_of_killed_runs_are_removed(one_video, tmp_path):
    out = tmp_path / "out"
    klass = out / "train" / "lunge"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    host = owner_tag().rpartition("-")[0]
    # left by killed runs: this version's name (host and pid), and older versions' (pid only)
    stale = [klass / f".{PLAIN}.partial-{host}-{dead_pid}", klass / f".{PLAIN}.partial-{dead_pid}"]
    running = klass / f".{PLAIN}.partial-{host}-{os.getppid()}"  # a live process's (a concurrent run)
    elsewhere = klass / f".{PLAIN}.partial-otherhost-{dead_pid}"  # cannot be checked from here: kept a day
    foreign = klass / f".{PLAIN}.partial-{host}-1{dead_pid}9"  # dead, but holds a file tpslab never writes
    for d in (*stale, running, elsewhere, foreign):
        d.mkdir(parents=True)
        (d / "img_00001.jpg").write_bytes(b"\xff\xd8")
    (foreign / "notes.txt").write_text("not tpslab's")
    assert _one(one_video, out)["status"] == "extracted"
    assert not any(d.exists() for d in stale)
    assert running.exists() and elsewhere.exists() and (foreign / "notes.txt").exists()
    day_old = os.stat(elsewhere).st_mtime - 2 * 86400
    os.utime(elsewhere, (day_old, day_old))
    assert _one(one_video, out)["status"] == "complete"
    assert not elsewhere.exists() and running.exists()


def test_bad_settings_and_an_unwritable_output_fail_once_early(one_video, tmp_path, capsys, monkeypatch):
    for bad in ({"short_side": 0}, {"short_side": -5}, {"quality": 0}, {"quality": 101}):
        with pytest.raises(ValueError, match="short side|quality"):
            extract_frames(one_video, tmp_path / "x", progress=False, **bad)
    root = str(one_video.root)
    (tmp_path / "file").write_text("")
    for argv, expected in [
        (["--short-side", "0"], "short side must be a positive number of pixels, got 0"),
        (["--short-side", "-3"], "got -3"),
        (["--quality", "0"], "quality must be from 1 to 100"),
        (["--out", str(tmp_path / "file")], "it is a file, not a folder"),
        (["--out", str(tmp_path / "file" / "sub")], f"cannot write frames into {tmp_path / 'file' / 'sub'}"),
    ]:
        args = ["extract-frames", root, *argv, "--quiet"]
        if "--out" not in argv:
            args[2:2] = [str(tmp_path / "y")]
        assert main(args) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
        assert captured.err.startswith("tpslab extract-frames: error: ") and expected in captured.err


def test_cli_video_subset_default_root_and_out_forms(release, tmp_path, capsys, monkeypatch):
    subset = tmp_path / "videos.txt"
    subset.write_text(f"# the two lunge videos\n{PLAIN}\n\n{CUT}   # cut by stream copy\n{PLAIN}\n")
    assert main(["extract-frames", str(release), str(tmp_path / "a"), "--videos", str(subset), "--quiet"]) == 0
    assert "2 videos: 2 extracted" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "a").glob("*/*/*")) == [CUT, PLAIN]

    monkeypatch.setenv("TPSLAB_DATA", str(release))  # ROOT defaults as for the other commands
    assert main(["extract-frames", "--out", str(tmp_path / "b"), "--videos", str(subset), "--quiet"]) == 0
    assert "2 videos: 2 extracted" in capsys.readouterr().out
    assert main(["extract-frames", str(release), "--out", str(tmp_path / "b"), "--videos", str(subset),
                 "--quiet"]) == 0
    assert "2 already complete" in capsys.readouterr().out

    bad = tmp_path / "bad.txt"
    for content, expected in [(f"{PLAIN}\nnope\nNope2\n", f"{bad}: 2 name(s) are not videos of"),
                              ("# nothing\n\n", f"{bad}: lists no videos"),
                              (b"\xff\xfe\x00plain\n", f"{bad}: not UTF-8")]:
        bad.write_bytes(content if isinstance(content, bytes) else content.encode())
        assert main(["extract-frames", "--out", str(tmp_path / "c"), "--videos", str(bad), "--quiet"]) == 2
        captured = capsys.readouterr()
        assert len(captured.err.strip().splitlines()) == 1 and expected in captured.err, captured.err
    assert not list((tmp_path / "c").iterdir())
    for argv, expected in [([str(release)], "no output folder: pass --out OUT"),
                           ([str(release), str(tmp_path / "d"), "--out", str(tmp_path / "e")], "output folder once")]:
        assert main(["extract-frames", *argv, "--quiet"]) == 2
        assert expected in capsys.readouterr().err


def test_cli_video_list_with_a_bom_and_a_bad_root_leave_nothing_behind(release, tmp_path, capsys):
    subset = tmp_path / "notepad.txt"
    subset.write_bytes(b"\xef\xbb\xbf" + f"{PLAIN}\r\n".encode())  # as Notepad saves it
    assert main(["extract-frames", str(release), str(tmp_path / "a"), "--videos", str(subset), "--quiet"]) == 0
    assert "1 videos: 1 extracted" in capsys.readouterr().out
    (tmp_path / "not_a_release").mkdir()
    assert main(["extract-frames", str(tmp_path / "not_a_release"), str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a Kinetics-TPS release" in err[0]
    assert not (tmp_path / "out").exists()  # OUT is made only once ROOT is known to be a release
