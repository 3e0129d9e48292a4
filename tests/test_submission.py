"""Ground-truth export, prediction files from tables, validation, zips."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from tpslab.dataset import TPSDataset
from tpslab.metrics import tps_score
from tpslab.submission import (GT_PART, GT_VID, PRED_PART, PRED_VID, SubmissionError, build_predictions,
                               export_ground_truth, frame_key, frame_number, is_scored, read_ground_truth,
                               read_submission, validate_submission, write_json_pair, write_prediction_files,
                               write_submission_zip)
from tpslab.vocab import Vocab

BOXCOLS = ["x1", "y1", "x2", "y2"]


def _dataset(parts_rows, humans_rows, frames_rows, videos_rows):
    """A TPSDataset built from hand-made tables with the contract's columns."""
    videos = pd.DataFrame(videos_rows, columns=["video", "label", "split"])
    videos["path"] = "/nowhere.mp4"
    frames = pd.DataFrame(frames_rows, columns=["video", "frame", "num_humans"])
    humans = pd.DataFrame(humans_rows, columns=["video", "frame", "human", *BOXCOLS, "num_parts"])
    parts = pd.DataFrame(parts_rows, columns=["video", "frame", "human", *[f"human_{c}" for c in BOXCOLS], "part",
                                              *[f"part_{c}" for c in BOXCOLS], "state"])
    for t in (videos, parts):
        for col in ("video", "part", "state", "label"):
            if col in t.columns:
                t[col] = t[col].astype("category")
    return TPSDataset("/nowhere", Vocab.default(), videos, frames, humans, parts)


HB = [10.0, 20.0, 110.0, 220.0]


@pytest.fixture
def hand():
    frames = [("a", 1, 2), ("a", 2, 1), ("a", 6, 0), ("a", 11, 1), ("b", 1, 1), ("t", 1, 1)]
    humans = [("a", 1, 0, *HB, 2), ("a", 1, 1, 0.0, 0.0, 5.5, 5.0, 0), ("a", 2, 0, *HB, 1), ("a", 11, 0, *HB, 1),
              ("b", 1, 0, *HB, 1), ("t", 1, 0, *HB, 1)]
    parts = [("a", 1, 0, *HB, "head", 1.0, 2.0, 3.0, 4.0, "none"),
             ("a", 1, 0, *HB, "left_hand", 5.0, 6.0, 7.5, 8.0, "hold"),
             ("a", 2, 0, *HB, "head", 1.0, 2.0, 3.0, 4.0, "nod"),
             ("a", 11, 0, *HB, "hip", 1.0, 1.0, 9.0, 9.0, "bend"),
             ("b", 1, 0, *HB, "head", 1.0, 1.0, 2.0, 2.0, "none"),
             ("t", 1, 0, *HB, "head", 1.0, 1.0, 2.0, 2.0, "none")]
    videos = [("a", "lunge", "train"), ("b", "push_up", "train"), ("t", "lunge", "test")]
    return _dataset(parts, humans, frames, videos)


def test_export_keeps_scored_frames_partless_humans_and_empty_frames(hand, tmp_path):
    gt_vid, gt_part = export_ground_truth(hand, out=tmp_path)
    assert gt_vid == {"a": "lunge", "b": "push_up"}  # default: the train split
    box = [10, 20, 110, 220]
    assert gt_part["a"] == {
        "img_00001.json": {"humans": [
            {"box": box, "parts": {"head": {"box": [1, 2, 3, 4], "verb": "none"},
                                   "left_hand": {"box": [5, 6, 7.5, 8], "verb": "hold"}}},
            {"box": [0, 0, 5.5, 5], "parts": {}}]},
        "img_00006.json": {"humans": []},
        "img_00011.json": {"humans": [{"box": box, "parts": {"hip": {"box": [1, 1, 9, 9], "verb": "bend"}}}]},
    }
    assert list(gt_part["a"]) == ["img_00001.json", "img_00006.json", "img_00011.json"]  # frame 2 is not scored
    assert read_ground_truth(tmp_path) == (gt_vid, gt_part)
    assert json.loads((tmp_path / GT_VID).read_text()) == gt_vid


def test_export_of_chosen_videos_and_its_errors(hand, tmp_path):
    gt_vid, gt_part = export_ground_truth(hand, videos=["b"])
    assert gt_vid == {"b": "push_up"} and list(gt_part) == ["b"]
    with pytest.raises(SubmissionError, match="unknown"):
        export_ground_truth(hand, videos=["zzz"])
    with pytest.raises(SubmissionError, match="test split"):
        export_ground_truth(hand, videos=["t"])
    doubled = hand.subset(["a", "b", "t"])
    doubled.parts = pd.concat([hand.parts, hand.parts.iloc[[0]]], ignore_index=True)
    with pytest.raises(SubmissionError, match="repeated part") as e:
        export_ground_truth(doubled)
    assert "a/img_00001.json/humans[0].parts.head" in str(e.value)


def test_export_of_the_tiny_dataset_scores_a_perfect_prediction(tiny, tmp_path):
    _, val = tiny.dataset.split_train_val(val_fraction=0.5, seed=0)
    gt_vid, gt_part = export_ground_truth(tiny.dataset, out=tmp_path / "gt", videos=val)
    assert set(gt_vid) == set(val)
    assert all(is_scored(frame_number(k)) for frames in gt_part.values() for k in frames)
    # The dataset's own parts table is in the prediction long format: it predicts the ground truth.
    sub = tiny.dataset.subset(val)
    scored = sub.frames[(sub.frames["frame"] - 1) % 5 == 0]
    pred_vid, pred_part = build_predictions(sub.parts, {v: gt_vid[v] for v in val}, frames=scored)
    r = tps_score(tmp_path / "gt" / GT_VID, tmp_path / "gt" / GT_PART, pred_vid, pred_part)
    assert r.area == 0.9999 and (r.per_video["psc"] == 1.0).all()
    n_scored = sum(1 for frames in gt_part.values() for fr in frames.values() if fr["humans"])
    assert n_scored > 10


def _table(rows):
    cols = ["video", "frame", "human", "human_x1", "human_y1", "human_x2", "human_y2", "part", "part_x1",
            "part_y1", "part_x2", "part_y2", "state"]
    return pd.DataFrame(rows, columns=cols + (["proposal"] if len(rows[0]) > len(cols) else []))


def test_build_predictions_in_list_mode_orders_proposals():
    t = _table([("a", 1, 7, 0, 0, 9, 9, "head", 0, 0, 4, 4, "nod", 2),
                ("a", 1, 7, 0, 0, 9, 9, "head", 1, 1, 4, 4, "none", 1),
                ("a", 1, 3, 5, 5, 20, 20, None, np.nan, np.nan, np.nan, np.nan, None, 0),
                ("a", 6, 0, 0, 0, 9, 9, "hip", 0, 0, 4.5, 4, "bend", 0)])
    pred_vid, pred_part = build_predictions(t, {"a": "lunge", "b": "push_up"}, frames=[("a", 11)])
    assert pred_vid == {"a": "lunge", "b": "push_up"}
    assert pred_part["b"] == {}
    assert pred_part["a"] == {
        "img_00001.json": {"humans": [
            {"box": [5, 5, 20, 20], "parts": {}},  # human 3 before human 7
            {"box": [0, 0, 9, 9], "parts": {"head": {"box": [[1, 1, 4, 4], [0, 0, 4, 4]], "verb": ["none", "nod"]}}}]},
        "img_00006.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {"hip": {"box": [[0, 0, 4.5, 4]],
                                                                                "verb": ["bend"]}}}]},
        "img_00011.json": {"humans": []},
    }
    single_vid, single = build_predictions(t[t["proposal"] != 2], pd.Series({"a": "lunge"}), mode="single")
    assert single["a"]["img_00001.json"]["humans"][1]["parts"]["head"] == {"box": [1, 1, 4, 4], "verb": "none"}


def test_build_predictions_reports_every_problem():
    base = ("a", 1, 0, 0, 0, 9, 9, "head", 0, 0, 4, 4, "nod")
    bad = _table([base, ("a", 1, 0, 0, 0, 9, 8, "hip", 0, 0, 4, 4, "nod")] +
                 [("a", 6, 0, 0, 0, 9, 9, "head", 0, 0, 4, 4, "nod")] * 6 +
                 [("a", 11, h, 0, 0, 9, 9, "head", 0, 0, 4, 4, "nod") for h in range(11)] +
                 [("a", 16, 0, 0, 0, 9, 9, "head", 0, 0, float("inf"), 4, "nod")])
    with pytest.raises(SubmissionError) as e:
        build_predictions(bad, {"a": "lunge"})
    text = str(e.value)
    assert "differs" in text and "6 proposals" in text and "11 humans" in text and "finite" in text
    with pytest.raises(SubmissionError, match="mode 'single'"):
        build_predictions(_table([base, base]), {"a": "lunge"}, mode="single")
    with pytest.raises(SubmissionError, match="lacks columns"):
        build_predictions(_table([base]).drop(columns="state"), {"a": "lunge"})
    with pytest.raises(SubmissionError, match="no predicted label"):
        build_predictions(_table([base]), {"b": "lunge"})
    with pytest.raises(SubmissionError, match="no predicted label"):
        build_predictions(_table([base]), pd.DataFrame({"video": ["a"], "label": [None]}))


def _good():
    pred_vid = {"a": "lunge", "b": "push_up"}
    pred_part = {"a": {"img_00001.json": {"humans": [
        {"box": [0, 0, 9, 9], "parts": {"head": {"box": [[0, 0, 4, 4]], "verb": ["none"]}}}]}}, "b": {}}
    return pred_vid, pred_part


def test_validation_of_a_good_submission():
    report = validate_submission(*_good(), gt_vid={"a": "lunge", "b": "lunge"},
                                 gt_part={"a": {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {}}]}}})
    assert report.ok and report.problems == []
    assert report.stats == {"videos": 2, "frames": 1, "humans": 1, "parts": 1, "proposals": 1}
    assert "submission OK" in str(report)


def test_validation_lists_errors_and_warnings():
    pred_vid, pred_part = _good()
    pred_vid["a"] = "lunges"
    humans = pred_part["a"]["img_00001.json"]["humans"]
    humans[0]["parts"]["tail"] = {"box": [[0, 0, 1, 1]], "verb": ["wag"]}
    humans[0]["parts"]["hip"] = {"box": [[0, 0, 1, 1]] * 6, "verb": ["none"] * 6}
    humans[0]["parts"]["left_hand"] = {"box": [[0, 0, 1]], "verb": ["hold", "grab"]}
    humans.extend({"box": [0, 0, 1, 1], "parts": {}} for _ in range(10))
    pred_part["a"]["img_00003.json"] = {"humans": []}
    pred_part["a"]["frame1"] = {"people": []}
    gt_part = {"c": {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {}}]}},
               "a": {"img_00006.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {}}]}}}
    report = validate_submission(pred_vid, pred_part, gt_vid={"a": "lunge", "c": "lunge"}, gt_part=gt_part)
    assert not report.ok
    errors = {(p.field, p.message) for p in report.errors}
    assert ("a/img_00001.json", "more than 10 humans") in errors
    assert ("a/img_00001.json/humans[0].parts.hip", "more than 5 proposals") in errors
    assert ("a/img_00001.json/humans[0].parts.left_hand", "box and verb lists differ in length") in errors
    assert ("a/img_00001.json/humans[0].parts.left_hand.box", "a box is not 4 finite numbers") in errors
    assert ("a/frame1", "expected {'humans': [...]}") in errors
    assert ("c", "ground-truth video missing") in errors  # from pred_vid_result
    assert ("c", "ground-truth video with annotated humans missing") in errors  # from pred_part_result
    warnings = {(p.field, p.message) for p in report.warnings}
    assert ("a", "class 'lunges' not in the action vocabulary; did you mean 'lunge'?") in warnings
    assert ("a/img_00001.json/humans[0].parts.tail", "part 'tail' not in the body-part vocabulary") in warnings
    assert ("a/img_00001.json/humans[0].parts.tail.verb",
            "state 'wag' not in the part-state vocabulary; did you mean 'wave' or 'sway' or 'swing'?") in warnings
    assert ("a/img_00003.json", "frame is not a scored frame (1, 6, 11, ...): ignored by the scorer") in warnings
    assert ("a/img_00006.json", "ground-truth frame missing from the prediction (counts 0)") in warnings
    assert ("b", "video not in the ground truth (ignored)") in warnings
    text = str(report)
    assert "NOT OK" in text and "more than 10 humans (1x)" in text
    with pytest.raises(SubmissionError):
        report.raise_if_errors()


def test_validation_in_single_mode():
    pred_vid = {"a": "lunge"}
    good = {"a": {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {"head": {"box": [0, 0, 4, 4],
                                                                                      "verb": "none"}}}]}}}
    assert validate_submission(pred_vid, good, mode="single").ok
    assert not validate_submission(pred_vid, good, mode="list").ok
    assert not validate_submission(*_good(), mode="single").ok


def test_zip_round_trip_with_files_at_the_root(tmp_path):
    pred_vid, pred_part = _good()
    path = write_submission_zip(tmp_path / "sub.zip", pred_vid, pred_part)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == [PRED_PART, PRED_VID]
    assert read_submission(path) == (pred_vid, pred_part)
    folder = tmp_path / "dir"
    write_prediction_files(folder, pred_vid, pred_part)
    assert read_submission(folder) == (pred_vid, pred_part)


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_check_submission_warns_about_files_in_a_folder_of_the_zip(tmp_path, capsys):
    from tpslab.cli import main
    from tpslab.submission import open_submission

    vid, part = (json.dumps(x) for x in _good())
    nested = _zip(tmp_path / "nested.zip", {f"sub/{PRED_VID}": vid, f"sub/{PRED_PART}": part})
    at_root = _zip(tmp_path / "root.zip", {PRED_VID: vid, PRED_PART: part})
    assert main(["check-submission", str(at_root)]) == 0
    assert "folder" not in capsys.readouterr().out
    assert main(["check-submission", str(nested)]) == 0  # read, and scored, as tpslab reads it: a warning
    out = capsys.readouterr().out
    assert "warning: the two files sit in the folder sub/ inside the zip: the challenge expects them at the " \
           "zip's root" in out
    # errors inside a file name the member as it is in the zip
    bad = json.loads(part)
    next(iter(next(iter(bad.values())).values()))["humans"][0]["box"] = [0, 0, "9", 9]
    broken = _zip(tmp_path / "broken.zip", {f"sub/{PRED_VID}": vid, f"sub/{PRED_PART}": json.dumps(bad)})
    _, cols = open_submission(broken)
    assert cols.file == f"{broken}:sub/{PRED_PART}"
    listed = _zip(tmp_path / "list.zip", {f"sub/{PRED_VID}": "[]", f"sub/{PRED_PART}": part})
    with pytest.raises(SubmissionError, match=f"{re.escape(str(listed))}:sub/{PRED_VID}: expected a JSON object"):
        read_submission(listed)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "msgspec"])
def test_check_submission_warns_about_a_video_or_frame_written_twice(tmp_path, capsys, monkeypatch, compiled):
    """JSON readers (json.load, the public scorer, tpslab) keep the last of two equal keys: a frame written
    twice lost its first version, a video its first class, and check-submission said OK. (Found with the
    compiled reader or without it.)"""
    from tpslab import challenge
    from tpslab.cli import main
    from tpslab.submission.files import file_warnings

    if not compiled:
        monkeypatch.setattr(challenge, "compiled_reader", lambda: None)

    vid, part = (json.dumps(x) for x in _good())
    twice_vid = vid.replace('"b": "push_up"', '"a": "push_up", "b": "push_up"')
    frame = part[part.index('"img_00001.json"'):part.index(', "b"') - 1]
    twice_frame = part.replace('"b": {}', f'"b": {{{frame}, {frame}}}')
    assert json.loads(twice_frame)["b"]  # still valid JSON
    sub = _zip(tmp_path / "sub.zip", {PRED_VID: twice_vid, PRED_PART: twice_frame})
    assert [(p.path, p.field) for p in file_warnings(sub)] == [
        (f"{sub}:{PRED_VID}", "a"), (f"{sub}:{PRED_PART}", "b/img_00001.json")]
    assert main(["check-submission", str(sub)]) == 0  # scored as every reader reads it: warnings
    out = capsys.readouterr().out
    assert ("warning: appears more than once: JSON readers, the challenge's scorer included, keep the last and "
            "drop the others (2x)") in out and f"    {sub}:{PRED_PART}: b/img_00001.json" in out
    clean = _zip(tmp_path / "clean.zip", {PRED_VID: vid, PRED_PART: part})
    assert file_warnings(clean) == []
    # "humans" twice in a frame; and a frame that is not an object does not hide a video held twice
    humans_twice = part.replace('{"humans": [', '{"humans": [], "humans": [', 1)
    null_frame = part.replace('"b": {}', '"b": {"img_00001.json": null}, "a": {}')
    sub = _zip(tmp_path / "more.zip", {PRED_VID: vid, PRED_PART: humans_twice})
    assert [p.field for p in file_warnings(sub)] == ["a/img_00001.json/humans"]
    sub = _zip(tmp_path / "null.zip", {PRED_VID: vid, PRED_PART: null_frame})
    assert [p.field for p in file_warnings(sub)] == ["a"]


def test_check_submission_warns_about_a_part_or_a_box_written_twice_inside_a_human(tmp_path, capsys):
    """A part held twice by a human, or a box twice: every JSON reader keeps the last (found where the
    compiled reader reads the file)."""
    from tpslab import challenge
    from tpslab.cli import main
    from tpslab.submission.files import file_warnings

    if challenge.compiled_reader() is None:
        pytest.skip("tpslab._partfile is not built here")
    vid = json.dumps({"a": "push_up", "b": "lunge"})
    head = '"head": {"box": [[1, 2, 5, 6]], "verb": ["bend"]}'
    part = ('{"a": {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {}}, {"box": [0, 0, 9, 9], '
            '"parts": {%s, %s}, "box": [1, 1, 9, 9]}]}}, "b": {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], '
            '"parts": {"hip": {"box": [[1, 2, 5, 6]], "box": [], "verb": ["bend"]}}}]}}}' % (head, head))
    assert json.loads(part)["a"]["img_00001.json"]["humans"][1]["parts"]["head"]  # valid JSON
    sub = _zip(tmp_path / "sub.zip", {PRED_VID: vid, PRED_PART: part})
    assert [p.field for p in file_warnings(sub)] == [
        "a/img_00001.json/humans[1].parts.head", "a/img_00001.json/humans[1].box",
        "b/img_00001.json/humans[0].parts.hip.box"]
    assert main(["check-submission", str(sub)]) in (0, 1)
    assert f"    {sub}:{PRED_PART}: b/img_00001.json/humans[0].parts.hip.box" in capsys.readouterr().out


def test_names_from_a_submission_cannot_forge_or_colour_lines_of_the_report(tmp_path, capsys):
    """A video name holding a newline printed a line of its own (a fake 'submission OK'); ANSI escapes
    coloured the terminal; a NUL reached stdout."""
    from tpslab.cli import main

    vid, part = _good()
    forged = {**vid, "x\nsubmission OK: 0 error(s)": "lunge", "\x1b[31mRED\x1b[0m": "lunge", "nul\x00": "lunge",
              "caf\u00e9 \u202eevil": "lunge"}
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / PRED_VID).write_text(json.dumps(forged))
    (folder / PRED_PART).write_text(json.dumps(part))
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / GT_VID).write_text(json.dumps({"a": "lunge", "b": "lunge"}))
    (gt / GT_PART).write_text(json.dumps({"a": {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {}}]}}}))
    assert main(["check-submission", str(folder), "--gt", str(gt), "--max", "10"]) in (0, 1)
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x00\x1b\u202e") and "\nsubmission OK: 0 error(s)" not in out
    assert "x\\nsubmission OK: 0 error(s)" in out and "\\x1b[31mRED" in out and "nul\\x00" in out
    assert "caf\u00e9 \\u202eevil" in out  # letters of other scripts stay as they are
    (folder / PRED_VID).write_text('{"a\\u001b[2J": 5}')  # an error message holding the name
    assert main(["evaluate", str(folder), str(folder)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and err.count("\n") == 1


def test_zip_reading_is_safe(tmp_path):
    vid, part = (json.dumps(x) for x in _good())
    nested = _zip(tmp_path / "nested.zip", {f"sub/{PRED_VID}": vid, f"sub/{PRED_PART}": part,
                                             "__MACOSX/sub/._x": "junk", "README.txt": "hi"})
    assert read_submission(nested) == _good()
    deep = _zip(tmp_path / "deep.zip", {f"a/b/{PRED_VID}": vid, f"a/b/{PRED_PART}": part})
    with pytest.raises(SubmissionError, match="nested 2 folders"):
        read_submission(deep)
    split = _zip(tmp_path / "split.zip", {f"a/{PRED_VID}": vid, f"b/{PRED_PART}": part})
    with pytest.raises(SubmissionError, match="one folder"):
        read_submission(split)
    for name in (f"../{PRED_VID}", f"/{PRED_VID}", f"C:/{PRED_VID}", f"sub/../../{PRED_VID}"):
        evil = _zip(tmp_path / "evil.zip", {name: vid, PRED_PART: part})
        with pytest.raises(SubmissionError, match="unsafe"):
            read_submission(evil)
    big = _zip(tmp_path / "big.zip", {PRED_VID: vid, PRED_PART: part + " " * 5000})
    with pytest.raises(SubmissionError, match="more than 1000 bytes"):
        read_submission(big, max_bytes=1000)
    missing = _zip(tmp_path / "missing.zip", {PRED_VID: vid})
    with pytest.raises(SubmissionError, match=PRED_PART):
        read_submission(missing)
    broken = _zip(tmp_path / "broken.zip", {PRED_VID: "{not json", PRED_PART: part})
    with pytest.raises(SubmissionError, match="not valid JSON"):
        read_submission(broken)
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(SubmissionError, match="neither"):
        read_submission(tmp_path / "plain.txt")
    # names that differ only in case are one file where unzipping ignores case (macOS, Windows): which one
    # was read depended on the tool (it said OK, and scored one of them)
    cased = _zip(tmp_path / "cased.zip", {PRED_VID: vid, PRED_PART: part, PRED_VID.upper(): '{"a": "push_up"}'})
    with pytest.raises(SubmissionError, match=f"holds {PRED_VID.upper()} beside {PRED_VID} and {PRED_PART}: on "
                       "macOS and Windows names that differ only in case are one file"):
        read_submission(cased)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it is asked to write
        twice = _zip(tmp_path / "twice.zip", {PRED_VID: vid, PRED_PART: part})
        with zipfile.ZipFile(twice, "a") as z:
            z.writestr(PRED_VID, '{"a": "push_up"}')
    with pytest.raises(SubmissionError, match=f"holds {PRED_VID} 2 times in its root; keep one"):
        read_submission(twice)


def test_frame_keys():
    assert frame_key(6) == "img_00006.json" and frame_number("img_00006.json") == 6
    assert [f for f in range(1, 17) if is_scored(f)] == [1, 6, 11, 16]
    with pytest.raises(ValueError):
        frame_number("img_6.json")


def test_zip_that_lies_about_its_size_is_rejected(tmp_path):
    import io
    import struct

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(PRED_VID, "{}")
        z.writestr(PRED_PART, '{"a": "' + "x" * 100000 + '"}')
    data = bytearray(buf.getvalue())
    # Declare 10 bytes for every member, in the local headers and the central directory.
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        i = data.find(signature)
        while i >= 0:
            struct.pack_into("<I", data, i + offset, 10)
            i = data.find(signature, i + 4)
    path = tmp_path / "lie.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(SubmissionError, match="cannot read"):
        read_submission(path, max_bytes=1000)


def test_export_gt_and_prediction_files_never_replace_files_tpslab_did_not_write(tiny, tmp_path, capsys):
    from tpslab.cli import main

    root, video = str(tiny.dataset.root), tiny.train[0]
    listed = tmp_path / "videos.txt"
    listed.write_text(video + "\n")
    out = tmp_path / "gt"
    out.mkdir()
    (out / "gt_part_result.json").write_text('{"my": "own ground truth"}')
    args = ["export-gt", root, "--videos", str(listed), "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "gt_part_result.json: exists and was not written by tpslab" in err and len(err.strip().splitlines()) == 1
    assert (out / "gt_part_result.json").read_text() == '{"my": "own ground truth"}'
    assert not (out / "gt_vid_result.json").exists()
    (out / "gt_part_result.json").unlink()
    assert main(args) == 0 and main(args) == 0  # its own files: replaced
    gt_vid, gt_part = read_ground_truth(out)
    (out / "gt_vid_result.json").write_text('{"edited": "by hand"}')  # changed since: refused
    assert main(args) == 2 and "was changed since tpslab wrote it" in capsys.readouterr().err
    assert (out / "gt_vid_result.json").read_text() == '{"edited": "by hand"}'
    # the same guard for prediction folders; a file holding exactly what would be written is no loss
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "pred_vid_result.json").write_text("mine")
    with pytest.raises(FileExistsError, match="pred_vid_result.json: exists and was not written by tpslab"):
        write_prediction_files(pred, gt_vid, gt_part)
    assert (pred / "pred_vid_result.json").read_text() == "mine"
    write_prediction_files(tmp_path / "copy", gt_vid, gt_part)
    (pred / "pred_vid_result.json").write_bytes((tmp_path / "copy" / "pred_vid_result.json").read_bytes())
    write_prediction_files(pred, gt_vid, gt_part)
    assert read_submission(pred) == read_submission(tmp_path / "copy")


def test_a_submission_zip_replaces_only_a_zip_tpslab_wrote(tmp_path):
    from tpslab.pipeline import predict_run

    pred_vid, pred_part = {"v": "class_a"}, {"v": {}}
    mine = tmp_path / "mine.zip"
    mine.write_bytes(b"not written by tpslab")
    with pytest.raises(FileExistsError, match="mine.zip: exists and is not a submission zip written by tpslab"):
        write_submission_zip(mine, pred_vid, pred_part)
    assert mine.read_bytes() == b"not written by tpslab"
    ours = write_submission_zip(tmp_path / "ours.zip", pred_vid, pred_part)
    assert write_submission_zip(ours, {"v": "class_b"}, pred_part) == ours  # its own zip: replaced
    assert read_submission(ours)[0] == {"v": "class_b"}
    # predict --overwrite: the detections file it reads is never the one it writes (checked before any work)
    with pytest.raises(ValueError, match="is the detections file this run reads"):
        predict_run(tmp_path / "no-release", tmp_path / "no-run", ours, ours, overwrite=True, progress=False)
    assert read_submission(ours)[0] == {"v": "class_b"}


def test_a_zip_that_only_carries_tpslabs_comment_or_was_changed_since_is_not_replaced(tmp_path):
    """The zip comment alone decided: a tpslab zip the user added notes to, and any zip whose comment says
    "written by tpslab", were replaced (the notes and the user's files lost)."""
    import zipfile

    pred_vid, pred_part = {"v": "class_a"}, {"v": {}}
    added = write_submission_zip(tmp_path / "added.zip", pred_vid, pred_part)
    with zipfile.ZipFile(added, "a") as z:
        z.writestr("notes.txt", "my notes")
    theirs = tmp_path / "theirs.zip"
    with zipfile.ZipFile(theirs, "w") as z:
        z.writestr("thesis.txt", "user data")
        z.comment = b"written by tpslab"
    appended = write_submission_zip(tmp_path / "appended.zip", pred_vid, pred_part)
    appended.write_bytes(b"user data before the zip" + appended.read_bytes())  # still a readable zip
    for path in (added, theirs, appended):
        before = path.read_bytes()
        with pytest.raises(FileExistsError, match="exists and is not a submission zip written by tpslab"):
            write_submission_zip(path, {"v": "class_b"}, pred_part)
        assert path.read_bytes() == before
    ours = write_submission_zip(tmp_path / "ours.zip", pred_vid, pred_part)
    copy = tmp_path / "copy.zip"
    copy.write_bytes(ours.read_bytes())  # a byte copy of tpslab's zip is still tpslab's
    assert read_submission(write_submission_zip(copy, {"v": "class_b"}, pred_part))[0] == {"v": "class_b"}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_writers_refuse_a_number_json_cannot_hold(tmp_path, bad):
    """orjson writes NaN and infinity as null: a box of null reached the file without a word."""
    part = {"v": {"img_00001": {"humans": [{"box": [0, 0, 9, 9], "parts": {"head": {"box": [[1, 1, bad, 5]],
                                                                                    "verb": ["nod"]}}}]}}}
    where = r"v/img_00001/humans\[0\]\.parts\.head\.box\[0\]\[2\]"  # as the validator names places
    message = f"^{PRED_PART}: {where} is {bad}: JSON has no NaN or infinity \\(it would be written as null\\)$"
    with pytest.raises(SubmissionError, match=message):
        write_submission_zip(tmp_path / "sub.zip", {"v": "lunge"}, part)
    with pytest.raises(SubmissionError, match=message):
        write_prediction_files(tmp_path / "pred", {"v": "lunge"}, part)
    with pytest.raises(SubmissionError, match=f"^{GT_VID}: v is {bad}: JSON has no NaN"):
        write_json_pair(tmp_path / "gt", GT_VID, {"v": bad}, GT_PART, {})
    assert not (tmp_path / "sub.zip").exists() and not (tmp_path / "pred").exists() and not (tmp_path / "gt").exists()
    fine = {"v": {"img_00001": {"humans": [{"box": [0, 0, 9, 9], "parts": {"null": {"box": [[1, 1, 2, 5]],
                                                                                    "verb": [",null"]}}}]}}}
    write_prediction_files(tmp_path / "ok", {"v,null": "lunge"}, fine)  # names that look like a null are fine
    assert read_submission(tmp_path / "ok") == ({"v,null": "lunge"}, fine)


def test_links_that_lead_nowhere_are_named_so(tmp_path):
    """A loop of links given as PRED was 'no submission folder or zip here'; a dangling link 'is missing'."""
    from tpslab.submission import read_ground_truth

    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    with pytest.raises(FileNotFoundError, match="is a symbolic link in a loop of links"):
        read_submission(tmp_path / "loop")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere.zip")
    with pytest.raises(FileNotFoundError, match=r"is a symbolic link to .*nowhere\.zip, which does not exist"):
        read_submission(tmp_path / "gone")
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / GT_VID).symlink_to(tmp_path / "vid.json")
    with pytest.raises(SubmissionError, match=r"gt_vid_result\.json is a symbolic link to .*vid\.json, which does not "
                       "exist"):
        read_ground_truth(gt)


def test_a_zip_given_as_the_ground_truth_folder_is_named_a_file(tmp_path):
    from tpslab.submission import read_ground_truth

    vid, part = (json.dumps(x) for x in _good())
    sub = _zip(tmp_path / "sub.zip", {PRED_VID: vid, PRED_PART: part})
    with pytest.raises(SubmissionError, match=r"sub\.zip is a file, not a folder \(expected a folder with "
                       "gt_vid_result.json and gt_part_result.json"):  # was "sub.zip/gt_vid_result.json is missing"
        read_ground_truth(sub)


def test_evaluate_refuses_ground_truth_in_the_list_form(tiny, tmp_path, capsys):
    """A ground truth whose parts hold lists (a list-mode submission given as GT) scored 0 without a word."""
    import json

    from tpslab.cli import main

    gt_vid, gt_part = export_ground_truth(tiny.dataset, videos=tiny.train[:2])
    listed = {v: {k: {"humans": [dict(h, parts={n: {"box": [p["box"]], "verb": [p["verb"]]}
                                                 for n, p in h["parts"].items()}) for h in fr["humans"]]}
                  for k, fr in frames.items()} for v, frames in gt_part.items()}
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "gt_vid_result.json").write_text(json.dumps(gt_vid))
    (gt / "gt_part_result.json").write_text(json.dumps(listed))
    write_prediction_files(tmp_path / "pred", gt_vid, gt_part)
    assert main(["evaluate", str(gt), str(tmp_path / "pred"), "--mode", "single"]) == 2
    err = capsys.readouterr().err
    assert "gt_part_result.json" in err and "lists of boxes and verbs" in err and len(err.strip().splitlines()) == 1
    (gt / "gt_part_result.json").write_text(json.dumps(gt_part))
    assert main(["evaluate", str(gt), str(tmp_path / "pred"), "--mode", "single", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean_psc"] == 1.0
    # a video of the part file without a class is left out by the score: said, not silent
    (gt / "gt_vid_result.json").write_text(json.dumps({tiny.train[0]: gt_vid[tiny.train[0]]}))
    assert main(["evaluate", str(gt), str(tmp_path / "pred"), "--mode", "single", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["mean_psc"] == 1.0
    assert f"1 video(s) of {gt}/gt_part_result.json have no class in gt_vid_result.json" in err
    assert tiny.train[1] in err
    # an error the score reads past (a class that is not a string: wrong, as for the public script)
    (gt / "gt_vid_result.json").write_text(json.dumps(gt_vid))
    write_prediction_files(tmp_path / "int-class", dict(gt_vid, **{tiny.train[0]: 3}), gt_part)
    assert main(["evaluate", str(gt), str(tmp_path / "int-class"), "--mode", "single", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["accuracy"] == 0.5
    assert "scored as the public script reads it, but the submission has 1 error(s): `tpslab check-submission" in err


@pytest.mark.parametrize("mode", ["single", "list"])
def test_boxes_with_corners_out_of_order_are_warned_about(tmp_path, mode):
    SAID = (": such a box covers nothing and never matches (boxes are [x1, y1, x2, y2]; [x, y, w, h] written "
            "instead?)")

    def part(box):
        return {"box": [box], "verb": ["hold"]} if mode == "list" else {"box": box, "verb": "hold"}

    pred_part = {"v": {"img_00001.json": {"humans": [
        {"box": [10, 10, 50, 90], "parts": {"head": part([20, 12, 30, 24]), "hip": part([20, 50, 10, 20])}},
        {"box": [148, 135, 76, 37], "parts": {"head": part([150, 140, 160, 150])}},
    ]}}}
    write_prediction_files(tmp_path / "pred", {"v": "lunge"}, pred_part)
    from tpslab.submission import open_submission

    for read in (read_submission, open_submission):  # dicts, and columns decoded straight from the files
        report = validate_submission(*read(tmp_path / "pred"), mode=mode)
        assert report.ok  # warnings only: the score reads such boxes (they match nothing)
        corners = {(p.field, p.message) for p in report.warnings if "x2 < x1 or y2 < y1" in p.message}
        assert corners == {
            ("v/img_00001.json/humans[1].box", "1 human box(es) have x2 < x1 or y2 < y1, this one [148.0, 135.0, "
             "76.0, 37.0]" + SAID),
            ("v/img_00001.json/humans[0].parts.hip.box", "1 part box(es) have x2 < x1 or y2 < y1, this one [20.0, "
             "50.0, 10.0, 20.0]" + SAID),
        }, corners


def test_a_folder_in_place_of_a_file_is_said_so(tmp_path):
    from tpslab.submission import read_ground_truth

    for name in ("pred_part_result.json", "gt_part_result.json"):
        (tmp_path / name).mkdir()
        (tmp_path / name.replace("part", "vid")).write_text("{}")
    with pytest.raises(SubmissionError, match="pred_part_result.json is a folder, not a file"):
        read_submission(tmp_path)
    with pytest.raises(SubmissionError, match="gt_part_result.json is a folder, not a file"):
        read_ground_truth(tmp_path)
    (tmp_path / "gt_part_result.json").rmdir()
    with pytest.raises(SubmissionError, match="gt_part_result.json is missing"):
        read_ground_truth(tmp_path)


def test_cli_export_gt_and_evaluate(tiny, tmp_path, capsys):
    from tpslab.cli import main

    root = str(tiny.dataset.root)
    assert main(["export-gt", root, "--split", "val", "--val-fraction", "0.5", "--out", str(tmp_path / "gt"),
                 "--quiet"]) == 0
    assert "scored frames" in capsys.readouterr().out
    gt_vid, gt_part = read_ground_truth(tmp_path / "gt")
    _, val = tiny.dataset.split_train_val(val_fraction=0.5, seed=0)
    assert sorted(gt_vid) == sorted(val)
    listed = tmp_path / "videos.txt"
    listed.write_text("# two videos\n" + "\n".join(val[:2]) + "\n\n")
    assert main(["export-gt", root, "--videos", str(listed), "--out", str(tmp_path / "gt2"), "--quiet"]) == 0
    assert sorted(read_ground_truth(tmp_path / "gt2")[0]) == sorted(val[:2])

    sub = tiny.dataset.subset(val)
    scored = sub.frames[(sub.frames["frame"] - 1) % 5 == 0]
    pred_vid, pred_part = build_predictions(sub.parts, gt_vid, frames=scored)
    write_submission_zip(tmp_path / "sub.zip", pred_vid, pred_part)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "sub.zip"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["area"] == 0.9999 and out["accuracy"] == 1.0 and out["mean_psc"] == 1.0
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "sub.zip"), "--grid"]) == 0
    text = capsys.readouterr().out
    assert "area      0.999900" in text and "acc@0.9" in text

    del pred_vid[val[0]]
    write_prediction_files(tmp_path / "bad", pred_vid, pred_part)
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "bad")]) == 2
    assert val[0] in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# One judgement: the validator and the scorer agree


def _agreement_case(mode="list"):
    """GT of two videos and a perfect prediction, plus parts the scorer never reads (an unscored frame, an
    unmatched human, an extra video, a part the GT lacks)."""
    import copy

    b0, b1 = [0, 0, 99, 199], [300, 0, 399, 199]

    def human(box, verbs):
        return {"box": list(box), "parts": {p: {"box": [box[0] + 10 * i, 10, box[0] + 10 * i + 20, 40], "verb": v}
                                            for i, (p, v) in enumerate(verbs.items())}}

    gt_vid = {"a": "lunge", "b": "push_up"}
    gt_part = {"a": {"img_00001.json": {"humans": [human(b0, {"head": "none", "left_hand": "hold"}),
                                                   human(b1, {"hip": "bend"})]},
                     "img_00006.json": {"humans": [human(b0, {"left_foot": "step_on"})]},
                     "img_00011.json": {"humans": []}},
               "b": {"img_00001.json": {"humans": [{"box": list(b1), "parts": {}}]},
                     "img_00006.json": {"humans": [human(b1, {"right_arm": "unbend", "head": "nod"})]}}}
    pred_part = copy.deepcopy(gt_part)
    pred_part["a"]["img_00001.json"]["humans"].reverse()  # listed in another order than the GT
    pred_part["a"]["img_00001.json"]["humans"].append(human([600, 0, 699, 199], {"head": "none"}))  # unmatched
    pred_part["a"]["img_00002.json"] = {"humans": [human(b0, {"head": "none"})]}  # not a scored frame
    pred_part["b"]["img_00006.json"]["humans"][0]["parts"]["tail"] = {"box": [0, 0, 5, 5], "verb": "wag"}
    pred_part["z"] = {"img_00001.json": {"humans": [human(b0, {"head": "none"})]}}  # not in the GT
    if mode == "list":
        for frames in pred_part.values():
            for fr in frames.values():
                for h in fr["humans"]:
                    for p in h["parts"].values():
                        p["box"], p["verb"] = [p["box"]], [p["verb"]]
        tail = pred_part["b"]["img_00006.json"]["humans"][0]["parts"]["tail"]
        tail["box"], tail["verb"] = [[0, 0, 1, 1], *tail["box"]], ["others", *tail["verb"]]
    pred_vid = {"a": "lunge", "b": "push_up", "z": "capoeira"}
    return gt_vid, gt_part, pred_vid, pred_part


def _judge(gt_vid, gt_part, pred_vid, pred_part, mode, pairing="matched"):
    """(validator says OK, scorer scores); any exception but ScoringError propagates."""
    from tpslab.metrics import ScoringError

    ok = validate_submission(pred_vid, pred_part, gt_vid, gt_part, mode=mode).ok
    try:
        tps_score(gt_vid, gt_part, pred_vid, pred_part, mode=mode, pairing=pairing)
    except ScoringError:
        return ok, False
    return ok, True


@pytest.mark.parametrize("mode", ["list", "single"])
def test_the_agreement_case_is_perfect(mode):
    gt_vid, gt_part, pred_vid, pred_part = _agreement_case(mode)
    report = validate_submission(pred_vid, pred_part, gt_vid, gt_part, mode=mode)
    assert report.ok, str(report)
    assert tps_score(gt_vid, gt_part, pred_vid, pred_part, mode=mode).area == 0.9999


def test_a_matched_human_without_parts_is_an_error_for_both():
    # The public 2021 script indexes pred_human_info['parts'] of every matched human: a KeyError there.
    gt_vid, gt_part, pred_vid, pred_part = _agreement_case()
    del pred_part["a"]["img_00006.json"]["humans"][0]["parts"]
    report = validate_submission(pred_vid, pred_part, gt_vid, gt_part)
    assert ("a/img_00006.json/humans[0].parts", "missing 'parts' (use {} for a human without parts)") in \
        {(p.field, p.message) for p in report.errors}
    assert _judge(gt_vid, gt_part, pred_vid, pred_part, "list") == (False, False)
    # An unmatched human without parts: the scorer never reads it, the validator still says so.
    gt_vid, gt_part, pred_vid, pred_part = _agreement_case()
    del pred_part["a"]["img_00001.json"]["humans"][2]["parts"]
    assert _judge(gt_vid, gt_part, pred_vid, pred_part, "list") == (False, True)


@pytest.mark.parametrize("where", ["human", "part"])
def test_json_true_is_not_a_coordinate(where):
    from tpslab.metrics import ScoringError

    gt_vid, gt_part, pred_vid, pred_part = _agreement_case()
    person = pred_part["a"]["img_00006.json"]["humans"][0]
    if where == "human":
        person["box"][0] = False
    else:
        person["parts"]["left_foot"]["box"][0][2] = True
    assert not validate_submission(pred_vid, pred_part, gt_vid, gt_part).ok
    with pytest.raises(ScoringError, match="malformed box"):
        tps_score(gt_vid, gt_part, pred_vid, pred_part)


def test_a_json_list_where_an_object_belongs(tmp_path):
    from tpslab.metrics import ScoringError

    gt_vid, gt_part, pred_vid, pred_part = _agreement_case()
    for bad_vid, bad_part in (([], pred_part), (pred_vid, []), (pred_vid, None), ("[]", pred_part)):
        if bad_vid == "[]":
            bad_vid = tmp_path / "list.json"
            bad_vid.write_text("[]")
        report = validate_submission(bad_vid, bad_part, gt_vid, gt_part)
        assert not report.ok and "expected a JSON object" in str(report)
        with pytest.raises(ScoringError, match="expected a JSON object"):
            tps_score(gt_vid, gt_part, bad_vid, bad_part)
    folder = tmp_path / "sub"
    write_prediction_files(folder, pred_vid, pred_part)
    (folder / PRED_PART).write_text('[{"a": 1}]')
    with pytest.raises(SubmissionError, match=f"{PRED_PART}.*expected a JSON object .*, got a list"):
        read_submission(folder)


def test_parts_listed_with_names_that_are_not_strings():
    gt_vid, gt_part, pred_vid, pred_part = _agreement_case()
    person = pred_part["a"]["img_00006.json"]["humans"][0]
    person["parts"] = [dict(p, name=[n]) for n, p in person["parts"].items()]  # an unhashable name
    assert _judge(gt_vid, gt_part, pred_vid, pred_part, "list") == (False, False)


@pytest.mark.parametrize("mode", ["list", "single"])
def test_a_submission_in_the_other_mode_says_which_mode_it_looks_like(mode):
    other = "single" if mode == "list" else "list"
    gt_vid, gt_part, pred_vid, pred_part = _agreement_case(other)
    report = validate_submission(pred_vid, pred_part, gt_vid, gt_part, mode=mode)
    assert not report.ok and report.looks_like == other
    assert f"looks like a mode '{other}' submission" in str(report).splitlines()[1]
    assert validate_submission(pred_vid, pred_part, gt_vid, gt_part, mode=other).looks_like == other


def test_unknown_names_are_collected_with_suggestions():
    gt_vid, gt_part, pred_vid, pred_part = _agreement_case()
    pred_vid["a"] = "lunges"
    person = pred_part["a"]["img_00006.json"]["humans"][0]
    person["parts"]["left_foot"]["verb"] = ["stepon"]
    gt_part["b"]["img_00006.json"]["humans"][0]["parts"]["head"]["verb"] = "blink"  # a GT name is known
    pred_part["b"]["img_00006.json"]["humans"][0]["parts"]["head"]["verb"] = ["blink"]
    report = validate_submission(pred_vid, pred_part, gt_vid, gt_part)
    assert report.ok
    assert {k: dict(v) for k, v in report.unknown_names.items() if v} == {
        "class": {"lunges": 1}, "part": {"tail": 1}, "state": {"stepon": 1, "wag": 1}}
    text = report.describe_unknown_names()
    assert "class 'lunges' (1x; did you mean 'lunge'?)" in text and "state 'stepon' (1x; did you mean 'step_on'" in text
    assert "blink" not in text


def _mutations(rng, base):
    """One random change of ``base`` ([pred_vid, pred_part]), in place: what malformed files hold."""
    import copy

    odd = [True, False, None, "x", "", 0, -1, 1.5, float("nan"), float("inf"), 10 ** 400, [], {}, [1, 2, 3, 4],
           [[1, 2, 3, 4]], [True, 2, 3, 4], {"box": [1, 2, 3, 4]}, "none", ["none"], [[]], "step_on"]

    def positions(obj, path=()):
        yield path
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from positions(v, path + (k,))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                yield from positions(v, path + (i,))

    path = rng.choice([p for p in positions(base) if p])
    parent = base
    for k in path[:-1]:
        parent = parent[k]
    key, value = path[-1], parent[path[-1]]
    op = rng.randrange(8)
    if op == 0 and parent is not base:
        del parent[key]
        return f"delete {path}"
    if op == 2:
        parent[key] = [value]
        return f"wrap {path}"
    if op == 3 and isinstance(value, list) and value:
        parent[key] = rng.choice([value[0], value * 6, value * 11, value[:-1], value[::-1]])
        return f"reshape list {path}"
    if op == 4 and isinstance(value, dict) and value:  # the raw form of parts: a list with names
        parent[key] = [dict(v, name=k) if isinstance(v, dict) and rng.random() < 0.8 else v for k, v in value.items()]
        return f"dict to list {path}"
    if op == 5 and isinstance(value, str):
        parent[key] = rng.choice([value + "s", value[:-1], value.upper()])
        return f"typo {path}"
    if op == 6 and isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[key] = rng.choice([str(value), bool(value), value * 1e308, -value, [value]])
        return f"number {path}"
    parent[key] = copy.deepcopy(rng.choice(odd))
    return f"replace {path} with {parent[key]!r}"


@pytest.mark.parametrize("mode", ["list", "single"])
def test_validator_and_scorer_agree_on_random_mutations(mode):
    """Property: every submission the validator accepts scores without error, and every submission the
    scorer rejects (ScoringError, nothing else) is rejected by the validator. The converse cannot hold:
    like the public script, the scorer reads only what the score needs (matched humans, parts the GT
    has, boxes of proposals whose verb is right), while the validator checks everything.

    250 random cases per mode (every kind of outcome is well over its bound by then); the slow test below
    runs 1000."""
    _agree_on_random_mutations(mode, 250)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["list", "single"])
def test_validator_and_scorer_agree_on_1000_random_mutations(mode):
    """The same property on 1000 random cases per mode (the first 250 are the test's above)."""
    _agree_on_random_mutations(mode, 1000)


def _agree_on_random_mutations(mode, cases):
    import copy
    import random
    from collections import Counter

    gt_vid, gt_part, pred_vid, pred_part = _agreement_case(mode)
    outcomes = Counter()
    rng = random.Random(2021)
    for case in range(cases):
        base = [copy.deepcopy(pred_vid), copy.deepcopy(pred_part)]
        changes = [_mutations(rng, base) for _ in range(rng.choice([1, 1, 2, 3]))]
        pairing = rng.choice(["matched", "pre-fix-2021"])
        ok, scored = _judge(gt_vid, gt_part, base[0], base[1], mode, pairing)
        assert scored or not ok, f"case {case}: the validator accepts what the scorer rejects: {changes}"
        outcomes[ok, scored] += 1
    # Every kind of outcome is exercised: both reject, both accept, and only the validator rejects.
    assert outcomes[False, False] > 100 and outcomes[True, True] > 15 and outcomes[False, True] > 50, outcomes


def test_columns_read_straight_from_the_files_judge_as_the_dicts(tmp_path):
    """open_submission/open_ground_truth read the part files into columns (decoded when in the strict form,
    walked otherwise); the validator and the scorer give the same answers on them as on the dicts."""
    import copy
    import random

    from tpslab.challenge import PartColumns
    from tpslab.submission import open_ground_truth, open_submission

    gt_vid, gt_part, pred_vid, pred_part = _agreement_case()
    write_json_pair(tmp_path / "gt", GT_VID, gt_vid, GT_PART, gt_part)
    rng = random.Random(7)
    for case in range(40):
        base = [copy.deepcopy(pred_vid), copy.deepcopy(pred_part)]
        for _ in range(case % 3):
            _mutations(rng, base)
        try:  # as another tool may write them: orjson, NaN and infinity as null (tpslab's writer refuses them)
            import orjson

            with zipfile.ZipFile(tmp_path / "sub.zip", "w") as z:
                z.writestr(PRED_VID, orjson.dumps(base[0]))
                z.writestr(PRED_PART, orjson.dumps(base[1]))
        except TypeError:  # a mutation JSON cannot hold (10 ** 400)
            continue
        dicts = read_submission(tmp_path / "sub.zip")
        vid, cols = open_submission(tmp_path / "sub.zip")
        gvid, gcols = open_ground_truth(tmp_path / "gt")
        assert isinstance(cols, PartColumns) and isinstance(gcols, PartColumns) and gcols.form == "single"
        assert (cols.form == "list") == (case % 3 == 0 or cols.form == "list")
        expected = validate_submission(*dicts, gt_vid, gt_part)
        got = validate_submission(vid, cols, gvid, gcols)
        assert (got.problems, got.stats, got.looks_like) == (expected.problems, expected.stats, expected.looks_like)
        try:
            area = tps_score(gt_vid, gt_part, *dicts).area_raw
        except SubmissionError:
            raise
        except Exception as e:  # the same error from the columns, naming the files they came from
            with pytest.raises(type(e)) as again:
                tps_score(gvid, gcols, vid, cols)
            # the dicts read from the zip name it too (the ground truth here is dicts made in memory)
            assert f"{tmp_path / 'sub.zip'}:{PRED_PART}" in str(e) or GT_PART in str(e), e
            assert str(again.value) == str(e).replace(GT_PART, str(tmp_path / "gt" / GT_PART))
            continue
        assert tps_score(gvid, gcols, vid, cols).area_raw == area


# ----------------------------------------------------------------------------------------------------
# Reading zips: encrypted members, bombs


def _patch_zip(path, patches):
    """Rewrite fields of every local header (PK\\3\\4) and central directory entry (PK\\1\\2) of a zip:
    ``patches`` maps (signature, offset, struct format) to a function of the old value."""
    import struct

    data = bytearray(path.read_bytes())
    for (signature, offset, fmt), change in patches.items():
        i = data.find(signature)
        while i >= 0:
            (old,) = struct.unpack_from(fmt, data, i + offset)
            struct.pack_into(fmt, data, i + offset, change(old))
            i = data.find(signature, i + 4)
    path.write_bytes(bytes(data))
    return path


def test_an_encrypted_zip_is_a_clear_error(tmp_path):
    path = write_submission_zip(tmp_path / "sub.zip", *_good())
    # General purpose flag bit 0 means "encrypted" (zip -P sets it); zipfile would then ask for a password.
    _patch_zip(path, {(b"PK\x01\x02", 8, "<H"): lambda v: v | 1, (b"PK\x03\x04", 6, "<H"): lambda v: v | 1})
    both = f"{PRED_VID} and {PRED_PART}"
    with pytest.raises(SubmissionError, match=rf"sub.zip: {both} are encrypted \(password-protected\)") as e:
        read_submission(path)
    assert "\n" not in str(e.value)


def test_the_default_size_bound_comes_from_the_test_set_limits(tmp_path):
    from tpslab.submission import MAX_SUBMISSION_BYTES

    proposal, part, human, frame, video = 112, 48, 128, 32, 64
    assert MAX_SUBMISSION_BYTES == 932 * (video + 30 * (frame + 10 * (human + 10 * (part + 5 * proposal))))
    assert 1 << 30 < MAX_SUBMISSION_BYTES < 2 << 30  # generous (1.6 GiB) but finite; it was 4 GiB
    # A zip declaring more than the bound is refused before anything is inflated.
    path = write_submission_zip(tmp_path / "sub.zip", *_good())
    _patch_zip(path, {(b"PK\x01\x02", 24, "<I"): lambda v: 0xFFFFFFF0, (b"PK\x03\x04", 22, "<I"): lambda v: 0xFFFFFFF0})
    with pytest.raises(SubmissionError, match=f"more than {MAX_SUBMISSION_BYTES} bytes"):
        read_submission(path, max_ratio=None)  # the size bound alone (the ratio would refuse it too)
    with pytest.raises(SubmissionError, match="zip bomb"):
        read_submission(path)


def _bomb(path, inflated_mib):
    """A zip whose pred_part_result.json is ``{}`` and ``inflated_mib`` MiB of spaces (valid JSON)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(PRED_VID, "{}")
        with z.open(PRED_PART, "w", force_zip64=True) as f:
            f.write(b"{}")
            block = b" " * (1 << 20)
            for _ in range(inflated_mib):
                f.write(block)
    return path


def test_a_zip_bomb_is_refused_with_bounded_memory(tmp_path):
    import tracemalloc

    bomb = _bomb(tmp_path / "bomb.zip", 64)
    assert bomb.stat().st_size < 256 << 10  # 64 MiB from a zip of ~64 KB
    tracemalloc.start()
    try:
        with pytest.raises(SubmissionError, match="more than 8388608 bytes"):
            read_submission(bomb, max_bytes=8 << 20)
        # The same bomb when its zip lies about the size: inflating stops at what the zip declares.
        _patch_zip(bomb, {(b"PK\x01\x02", 24, "<I"): lambda v: 1 << 20 if v > 100 else v})
        with pytest.raises(SubmissionError, match="cannot read pred_part_result.json"):
            read_submission(bomb, max_bytes=8 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    small = _bomb(tmp_path / "small.zip", 2)
    assert read_submission(small, max_bytes=3 << 20) == ({}, {})  # under the bound: whitespace is valid JSON
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        read_submission(small, max_bytes=0)


def test_a_zip_that_inflates_far_more_than_json_does_is_a_bomb_even_under_the_size_bound(tmp_path):
    import tracemalloc

    from tpslab.submission import MAX_SUBMISSION_BYTES, RATIO_FREE_BYTES

    bomb = _bomb(tmp_path / "bomb.zip", 96)  # ~1000 times: the 591 KB zip inflating to 600 MB, scaled
    assert (96 << 20) < MAX_SUBMISSION_BYTES  # the size bound alone lets it through
    with pytest.raises(SubmissionError, match="refused as a zip bomb; if it is real, unzip it"):
        read_submission(bomb)
    # When the zip understates the sizes, inflating stops at the ratio's bound: memory stays bounded.
    _patch_zip(bomb, {(b"PK\x01\x02", 24, "<I"): lambda v: 1 << 20 if v > 100 else v})
    tracemalloc.start()
    try:
        with pytest.raises(SubmissionError, match="zip bomb|cannot read"):
            read_submission(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < RATIO_FREE_BYTES + (8 << 20), peak
    assert read_submission(_bomb(tmp_path / "b2.zip", 96), max_ratio=None) == ({}, {})  # turned off: read
    assert read_submission(_bomb(tmp_path / "b3.zip", 8)) == ({}, {})  # small files compress as they like


def test_reading_stops_as_soon_as_the_bound_is_crossed():
    from tpslab.submission.files import _read_bounded

    class Endless:
        served = 0

        def read(self, n):
            self.served += n
            return b"x" * n

    stream = Endless()
    data = _read_bounded(stream, 5 << 20, chunk=1 << 20)
    assert len(data) == (5 << 20) + 1 and stream.served == len(data)  # one byte past the bound, no more
    assert _read_bounded(__import__("io").BytesIO(b"abc"), 3) == b"abc"


def _same_columns(a, b) -> None:
    import dataclasses

    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "msgspec"])
def test_open_evaluation_reads_what_the_two_readers_read(tmp_path, monkeypatch, cpus, compiled):
    """Both part files read: with msgspec, decoded at once (the ground truth's in a forked worker; in this
    process with one usable CPU); with the compiled reader, one after the other. The same columns as
    open_ground_truth and open_submission, and the ground truth's errors first, as when the files are
    read one after the other."""
    from tpslab import challenge, memory
    from tpslab.submission import files, open_evaluation, open_ground_truth, open_submission

    monkeypatch.setattr(memory, "usable_cpus", lambda: cpus)
    if not compiled:
        for module in (challenge, files):
            monkeypatch.setattr(module, "compiled_reader", lambda: None)
    elif challenge.compiled_reader() is None:
        pytest.skip("tpslab._partfile is not built here")
    gt_vid, gt_part, pred_vid, pred_part = _agreement_case()
    write_json_pair(tmp_path / "gt", GT_VID, gt_vid, GT_PART, gt_part)
    write_submission_zip(tmp_path / "sub.zip", pred_vid, pred_part)
    (gvid, gcols), (vid, cols) = open_evaluation(tmp_path / "gt", tmp_path / "sub.zip")
    expected_gt, expected_pred = open_ground_truth(tmp_path / "gt"), open_submission(tmp_path / "sub.zip")
    assert gcols.form == "single" and cols.form == "list"
    assert gvid == expected_gt[0] and vid == expected_pred[0]
    _same_columns(gcols, expected_gt[1])
    _same_columns(cols, expected_pred[1])
    # Not in the strict form: walked here, as the readers do (an error only where they give one).
    gt_part[next(iter(gt_part))] = []
    write_json_pair(tmp_path / "odd", GT_VID, gt_vid, GT_PART, gt_part)
    assert open_evaluation(tmp_path / "odd", tmp_path / "sub.zip")[0][1].video_frames.tolist() == \
        open_ground_truth(tmp_path / "odd")[1].video_frames.tolist()
    # Both broken: the ground truth's error, as when read one after the other.
    (tmp_path / "gt" / GT_PART).write_bytes(b'{"v": ')
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / PRED_VID).write_bytes(b"[]")
    (tmp_path / "bad" / PRED_PART).write_bytes(b"{}")
    with pytest.raises(SubmissionError, match=f"^{tmp_path / 'gt' / GT_PART} is not valid JSON"):
        open_evaluation(tmp_path / "gt", tmp_path / "bad")
    with pytest.raises(SubmissionError, match="pred_vid_result.json: expected a JSON object"):
        open_evaluation(tmp_path / "odd", tmp_path / "bad")


def test_the_submission_zip_is_byte_for_byte_reproducible(tmp_path, monkeypatch):
    """The same predictions make the same zip at any time (no timestamps of the moment in it), so that a
    submission can be identified by its hash."""
    import time

    pred_vid, pred_part = _good()
    first = write_submission_zip(tmp_path / "a.zip", pred_vid, pred_part).read_bytes()
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)  # 2033
    second = write_submission_zip(tmp_path / "b.zip", pred_vid, pred_part).read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "b.zip") as z:
        assert [i.filename for i in z.infolist()] == [PRED_VID, PRED_PART]
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    assert read_submission(tmp_path / "b.zip") == (pred_vid, pred_part)


def test_every_problem_of_the_report_names_the_file_as_it_was_read(tmp_path, capsys):
    """The validator's problems named the bare file (`pred_part_result.json: ...`) while the duplicate-key
    warnings of the same report named `sub.zip:pred_part_result.json`: each names the file as it was read,
    in a folder, a zip and a zip whose files sit in a folder; dicts keep the bare names."""
    from tpslab.cli import main

    vid = '{"a": "push_up", "a": "lunge", "zz": 5}'
    part = json.dumps({"a": {"img_00001.json": {"humans": [{"box": [0, 0, 9, "x"], "parts": {}}]}}})
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / PRED_VID).write_text(vid)
    (folder / PRED_PART).write_text(part)
    places = {folder: (f"{folder}/{PRED_VID}", f"{folder}/{PRED_PART}"),
              _zip(tmp_path / "sub.zip", {PRED_VID: vid, PRED_PART: part}):
                  (f"{tmp_path}/sub.zip:{PRED_VID}", f"{tmp_path}/sub.zip:{PRED_PART}"),
              _zip(tmp_path / "nested.zip", {f"in/{PRED_VID}": vid, f"in/{PRED_PART}": part}):
                  (f"{tmp_path}/nested.zip:in/{PRED_VID}", f"{tmp_path}/nested.zip:in/{PRED_PART}")}
    for sub, (vid_file, part_file) in places.items():
        assert main(["check-submission", str(sub)]) == 1
        out = capsys.readouterr().out
        assert f"    {part_file}: a/img_00001.json/humans[0].box" in out  # the validator's error
        assert f"    {vid_file}: zz" in out  # the validator's error in the other file
        assert f"    {vid_file}: a" in out  # the duplicate key's warning
        assert f"    {PRED_PART}:" not in out and f"    {PRED_VID}:" not in out
    report = validate_submission(json.loads(vid), json.loads(part))
    assert {p.path for p in report.problems} == {PRED_VID, PRED_PART}
