import os

import av
import numpy as np
import pytest

from tpslab.cli import main
from tpslab.validate import validate
from release import human, make_release, part, write_frame

A, B = "aaaaaaaaaaa_000001_000011", "bbbbbbbbbbb_000002_000012"


def tiny_mp4(path, n=3, w=64, h=48):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), i * 40, np.uint8), format="rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode())


@pytest.fixture
def clean(tmp_path):
    root = make_release(tmp_path / "r", {
        ("lunge", A): {1: {"humans": [human([0, 0, 63, 47], [part("head", [1, 1, 5, 5], "none")])]},
                       2: {"humans": []}},
        ("push_up", B): {1: {"humans": [human([2, 2, 9, 9], [part("hip", [2, 2, 3, 3], "bend", "ball", [0, 0, 4, 4])])]}},
    })
    for label, video in (("lunge", A), ("push_up", B)):
        tiny_mp4(root / "train_videos" / label / f"{video}.mp4")
    return root


def test_clean_release_has_no_problems(clean, capsys):
    report = validate(clean, progress=False)
    assert report.problems == [] and bool(report)
    assert main(["validate", str(clean), "--quiet"]) == 0
    assert "no problems" in capsys.readouterr().out


def test_every_kind_of_problem_is_reported_with_its_file(clean, capsys):
    write_frame(clean, "lunge", A, 9, {"humans": [human([0, 0, 5, 5], [part("head", [0, 0, 1, 1], "nod"),
                                                                        part("head", [0, 0, 1, 1], "nod")])]})
    write_frame(clean, "lunge", A, 0, {"humans": []})
    write_frame(clean, "lunge", A, 3, {"humans": [human([0, 0, 70, 47], [part("hip", [0, 0, 1, 1], "wobble")])]})
    write_frame(clean, "lunge", A, 4, "{bad json")
    write_frame(clean, "push_up", "ccccccccccc_000003_000013", 1, {"humans": []})  # no video, not in flist
    (clean / "train_videos" / "lunge" / "ddddddddddd_000004_000014.mp4").write_bytes(b"")  # no annotations
    report = validate(clean, progress=False)
    text = str(report)
    expect = [
        ("img_00009.json", "duplicate part 'head'"),
        ("img_00009.json", "beyond the video's 4 frames (flist)"),
        ("img_00000.json", "0-based frame name"),
        ("img_00003.json", "unknown part state 'wobble'"),
        ("img_00004.json", "malformed JSON"),
        ("ccccccccccc_000003_000013", "have no video file"),
        ("ccccccccccc_000003_000013", "has no frame count in the flist"),
        ("ddddddddddd_000004_000014.mp4", "has no annotation folder"),
    ]
    for fname, msg in expect:
        assert any((fname in p.path or fname in p.message) and msg in p.message for p in report.errors), (fname, msg, text)
    outside = [p for p in report.warnings if "outside the 64x48 image" in p.message]
    assert len(outside) == 1 and outside[0].path.endswith("img_00003.json")
    assert not report
    assert main(["validate", str(clean), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "img_00004.json" in out and "errors" in out.splitlines()[-1]


@pytest.mark.parametrize("content", [b"", b"not a video at all"])
def test_an_annotated_video_that_cannot_be_read_is_an_error(clean, content, capsys):
    video = clean / "train_videos" / "lunge" / f"{A}.mp4"
    video.write_bytes(content)  # "no problems" before: and its boxes were silently not checked
    report = validate(clean, progress=False)
    assert [p.path for p in report.errors] == [str(video)]
    assert "cannot read the video" in report.errors[0].message and "tpslab check-videos" in report.errors[0].message
    assert main(["validate", str(clean), "--quiet"]) == 1


def test_a_missing_list_file_is_a_warning(clean):
    (clean / "list" / "body_part.txt").unlink()  # "no problems" before
    report = validate(clean, progress=False)
    assert [(p.path, p.message) for p in report.warnings] == [
        (str(clean / "list" / "body_part.txt"), "missing: the built-in names are used")]
    assert bool(report)


def test_warnings_only_pass_unless_strict(clean):
    write_frame(clean, "lunge", A, 2, {"humans": [human([-3, 0, 10, 10], [])]})
    report = validate(clean, progress=False)
    assert report.errors == [] and len(report.warnings) == 1 and bool(report)
    assert main(["validate", str(clean), "--quiet"]) == 0
    assert main(["validate", str(clean), "--quiet", "--strict"]) == 1


def test_a_person_annotated_twice_in_a_frame_is_a_warning(clean):
    twice = human([0, 0, 20, 30], [part("head", [1, 1, 5, 5], "none")])
    other = human([30, 0, 50, 30], [part("head", [31, 1, 35, 5], "none")])
    frame = str(write_frame(clean, "lunge", A, 2, {"humans": [twice, other, twice, dict(twice, parts=[])]}))
    report = validate(clean, progress=False)  # "no problems" before
    assert [(p.path, p.field, p.message) for p in report.warnings] == [
        (frame, "humans[2]", "the same box [0, 0, 20, 30] as humans[0]: one person annotated twice?"),
        (frame, "humans[3]", "the same box [0, 0, 20, 30] as humans[0]: one person annotated twice?")]
    assert bool(report)


def test_index_command(clean, capsys):
    assert main(["index", str(clean), "--quiet"]) == 0
    assert "index built" in capsys.readouterr().out
    assert main(["index", str(clean), "--quiet"]) == 0
    assert "read from cache" in capsys.readouterr().out


def test_cli_reports_a_missing_root_without_traceback(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope"), "--quiet"]) == 2
    assert "is not a folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------
# Only the release is the release: stray folders, damaged lists and flists, links (issue 9, section 2)


def _append(path, data: bytes):
    with open(path, "ab") as f:
        f.write(data)


def _dup_frame_names(r):
    d = r / "train_annotations" / "lunge" / A / A
    (d / "img_1.json").write_bytes((d / "img_00001.json").read_bytes())


HOSTILE = {  # name: (how to damage the clean release, file named by the problem, words of the problem)
    "two files for one frame": (_dup_frame_names, "lunge/" + A + "/" + A, "are both frame 1; neither is read"),
    "video under two classes": (lambda r: __import__("shutil").copytree(r / "train_annotations" / "lunge" / A,
                                                                       r / "train_annotations" / "push_up" / A),
                                "push_up/" + A, "annotation folders under 2 classes"),
    "flist lists a video twice": (lambda r: _append(r / "list" / "video_train_flist.csv", f"lunge,{A},7\n".encode()),
                                  "video_train_flist.csv", "listed 2 times (lines 2, 4) with different rows"),
    "symlink loop": (lambda r: os.symlink("loopy", r / "train_annotations" / "lunge" / "loopy"), "lunge/loopy",
                     "symbolic link loop"),
    "frame number too large": (lambda r: write_frame(r, "lunge", A, 99999999999, {"humans": []}),
                               "img_99999999999.json", "beyond what the tables hold"),
    "empty list file": (lambda r: (r / "list" / "part_stat.txt").write_text(""), "part_stat.txt",
                        "no names in the file; the built-in names are used"),
    "repeated list name": (lambda r: (r / "list" / "body_part.txt").write_text(
        "head\nhead\n" + "\n".join(__import__("tpslab").vocab.PARTS[1:]) + "\n"), "body_part.txt",
                           "line 2: name 'head' repeats line 1"),
    "flist short row": (lambda r: _append(r / "list" / "video_train_flist.csv", b"lunge,eeeeeeeeeee_000005_000015\n"),
                        "video_train_flist.csv", "expected 3 columns, got 2"),
    "flist non-integer count": (lambda r: _append(r / "list" / "video_train_flist.csv",
                                                  b"lunge,eeeeeeeeeee_000005_000015,abc\n"),
                                "video_train_flist.csv", "frame count 'abc' is not an integer"),
    "flist not UTF-8": (lambda r: _append(r / "list" / "video_train_flist.csv", b"lunge,e\xff\xfe,3\n"),
                        "video_train_flist.csv", "bytes that are not UTF-8"),
    "dangling annotation link": (lambda r: os.symlink("/nonexistent/img.json",
                                                      r / "train_annotations" / "lunge" / A / A / "img_00005.json"),
                                 "img_00005.json", "cannot read the file"),
    "empty folder that is no video": (lambda r: (r / "train_annotations" / "lunge" / "EMPTY_STRAY").mkdir(),
                                      "lunge/EMPTY_STRAY", "an empty folder, and no video of that name"),
    "dangling video link": (lambda r: os.symlink("/nonexistent/x.mp4",
                                                 r / "train_videos" / "lunge" / "eeeeeeeeeee_000005_000015.mp4"),
                            "eeeeeeeeeee_000005_000015.mp4", "broken symbolic link"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_damaged_release_is_listed_by_validate_and_skipped_by_a_lenient_load(clean, case):
    import tpslab
    from tpslab.errors import AnnotationError

    damage, where, words = HOSTILE[case]
    damage(clean)
    report = validate(clean, probe_videos=False, progress=False)
    assert any(where in p.path and words in f"{p.field}: {p.message}" for p in report.errors), str(report)
    assert not report
    ds = tpslab.load_dataset(clean, strict=False, progress=False, cache=False)
    assert any(where in p.path and words in f"{p.field}: {p.message}" for p in ds.problems)
    assert sorted(ds.vocab.actions.names) == ["lunge", "push_up"]
    assert not ds.frames.duplicated(["video", "frame"]).any()  # never a doubled row
    assert set(ds.videos["video"]) >= {B} and "EMPTY_STRAY" not in set(ds.videos["video"])
    with pytest.raises(AnnotationError):  # a strict load refuses, naming a file
        tpslab.load_dataset(clean, progress=False, cache=False)


@pytest.mark.parametrize("stray", [".ipynb_checkpoints", "__MACOSX", ".tpslab"])
def test_hidden_and_system_folders_are_not_classes(clean, stray):
    import tpslab

    before = tpslab.load_dataset(clean, progress=False, cache=False)
    for top in ("train_videos", "train_annotations", "test_videos"):
        (clean / top / stray / "lunge").mkdir(parents=True, exist_ok=True)
    (clean / "train_annotations" / "lunge" / stray / stray).mkdir(parents=True)  # as a video folder, too
    ds = tpslab.load_dataset(clean, progress=False, cache=False)
    assert ds.vocab.actions.names == before.vocab.actions.names == ("lunge", "push_up")
    assert ds.videos["video"].tolist() == before.videos["video"].tolist()
    report = validate(clean, probe_videos=False, progress=False)
    assert bool(report) and report.errors == []
    ignored = [p for p in report.warnings if stray in p.path and "ignored" in p.message]
    assert len(ignored) == 4  # three tops and one video folder


def test_a_folder_that_is_not_a_release_is_refused(tmp_path, capsys):
    import tpslab
    from tpslab.errors import NotAReleaseError

    for folder in (tmp_path / "empty", tmp_path / "photos", tmp_path / "lists_only"):
        folder.mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    (tmp_path / "photos" / "holiday").mkdir()
    (tmp_path / "lists_only" / "list").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "photos", tmp_path / "lists_only"):
        with pytest.raises(NotAReleaseError, match="not a Kinetics-TPS release"):
            tpslab.load_dataset(folder, progress=False)
        with pytest.raises(NotAReleaseError):
            validate(folder, progress=False)
        for command in ("validate", "index"):
            assert main([command, str(folder), "--quiet"]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "not a Kinetics-TPS release" in err[0] and str(folder) in err[0]
        assert not (folder / ".tpslab").exists()  # nothing written into it
