
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
        ("ccccccccccc_000003_000013", "missing from the flist"),
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


def test_warnings_only_pass_unless_strict(clean):
    write_frame(clean, "lunge", A, 2, {"humans": [human([-3, 0, 10, 10], [])]})
    report = validate(clean, progress=False)
    assert report.errors == [] and len(report.warnings) == 1 and bool(report)
    assert main(["validate", str(clean), "--quiet"]) == 0
    assert main(["validate", str(clean), "--quiet", "--strict"]) == 1


def test_index_command(clean, capsys):
    assert main(["index", str(clean), "--quiet"]) == 0
    assert "index built" in capsys.readouterr().out
    assert main(["index", str(clean), "--quiet"]) == 0
    assert "read from cache" in capsys.readouterr().out


def test_cli_reports_a_missing_root_without_traceback(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope"), "--quiet"]) == 2
    assert "is not a folder" in capsys.readouterr().err
