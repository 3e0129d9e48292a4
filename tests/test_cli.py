"""The command line: every bad argument or path is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_models import use_micro_as_tiny
from tpslab.cli import main
from tpslab.submission import (GT_PART, GT_VID, PRED_VID, build_predictions, export_ground_truth,
                               write_prediction_files, write_submission_zip)


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``tpslab ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc, err, command) -> str:
    """The error line, after checking it is the only line, names the command and comes with a non-zero exit."""
    assert rc != 0, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tpslab {command}: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def files(tiny, tmp_path_factory):
    """A ground truth of half the tiny dataset's videos and a perfect submission of it, in both modes."""
    d = tmp_path_factory.mktemp("cli-files")
    _, val = tiny.dataset.split_train_val(val_fraction=0.5, seed=0)
    gt_vid, gt_part = export_ground_truth(tiny.dataset, out=d / "gt", videos=val)
    sub = tiny.dataset.subset(val)
    scored = sub.frames[(sub.frames["frame"] - 1) % 5 == 0]
    for mode in ("list", "single"):
        pred_vid, pred_part = build_predictions(sub.parts, gt_vid, frames=scored, mode=mode)
        write_submission_zip(d / f"{mode}.zip", pred_vid, pred_part)
    (d / "plain.txt").write_text("not a folder\n")
    return {"dir": d, "root": tiny.dataset.root, "gt": d / "gt", "list": d / "list.zip", "single": d / "single.zip",
            "file": d / "plain.txt", "val": val, "gt_vid": gt_vid,
            "pred": build_predictions(sub.parts, gt_vid, frames=scored, mode="list")}


# ----------------------------------------------------------------------------------------------------
# The sweep: bad arguments and paths of every command


def _bad_inputs(f, tmp):
    latin = tmp / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    empty = tmp / "empty.txt"
    empty.write_text("# no videos here\n\n")
    unknown = tmp / "unknown.txt"
    unknown.write_text("no_such_video\n")
    root, gt, sub, plain = f["root"], f["gt"], f["list"], f["file"]
    out = tmp / "out"
    return {
        "export-gt": [
            [root, "--split", "val", "--val-fraction", "0", "--out", out],
            [root, "--split", "val", "--val-fraction", "1", "--out", out],
            [root, "--split", "val", "--val-fraction", "nan", "--out", out],
            [root, "--split", "val", "--val-fraction", "x", "--out", out],
            [root, "--split", "val", "--seed", "-1", "--out", out],
            [root, "--split", "val", "--out", plain],
            [root, "--split", "val", "--out", plain / "below"],
            [root, "--videos", latin, "--out", out],
            [root, "--videos", empty, "--out", out],
            [root, "--videos", unknown, "--out", out],
            [root, "--videos", tmp / "missing.txt", "--out", out],
            [root, "--videos", tmp, "--out", out],
            [tmp / "no-such-root", "--split", "val", "--out", out],
            [plain, "--split", "val", "--out", out],
            [root, "--out", out],  # neither --videos nor --split
        ],
        "mini": [[plain, "--preset", "tiny"], [tmp / "m", "--preset", "huge"], [tmp / "m", "--seed", "-1"],
                 [tmp / "m", "--seed", "x"]],
        "index": [[tmp / "no-such-root"], [plain], [root, "--workers", "0"], [root, "--workers", "-2"],
                  [root, "--workers", "x"]],
        "validate": [[tmp / "no-such-root"], [plain], [root, "--max", "-1"]],
        "check-videos": [[tmp / "no-such-root"], [plain], [root, "--workers", "0"], [root, "--max", "-1"]],
        "evaluate": [
            [tmp / "no-gt", sub], [gt, tmp / "no-pred"], [gt, plain], [plain, sub], [gt, sub, "--human-iou", "2"],
            [gt, sub, "--part-iou", "nan"], [gt, sub, "--max-bytes", "0"], [gt, sub, "--max-bytes", "100"],
            [gt, sub, "--mode", "double"], [gt],
        ],
        "check-submission": [[tmp / "no-pred"], [plain], [sub, "--gt", tmp / "no-gt"], [sub, "--mode", "x"],
                             [sub, "--max-bytes", "-5"]],
        # (extract-frames prepares its OUT before it reads ROOT: it gets a folder of its own)
        "extract-frames": [[tmp / "no-such-root", "--out", tmp / "frames"],
                           [root, "--out", tmp / "frames", "--short-side", "0"], [root, "--out", plain],
                           [root, "--out", tmp / "frames", "--workers", "-1"],
                           [root, "--out", tmp / "frames", "--max", "-1"]],
        "export-coco": [[root, tmp / "no-frames", "--out", tmp / "coco.json"], [root, root, "--out", plain],
                        [root, root, "--out", tmp / "coco.json", "--split", "val", "--val-fraction", "0"],
                        [root, root, "--out", tmp / "coco.json", "--workers", "0"]],
        "export-lists": [[tmp / "no-such-root", "--out", tmp / "lists"], [root, "--out", plain],
                         [root, "--out", tmp / "lists", "--val-fraction", "1"],
                         [root, "--frames", tmp / "no-frames", "--out", tmp / "lists"]],
    }


def test_training_numbers_are_checked_before_any_work(files, tmp_path, capsys):
    for option, value, says in (("--lr", "-1", "a finite number >= 0"), ("--lr", "inf", "a finite number >= 0"),
                                ("--lr", "nan", "a finite number >= 0"), ("--val-fraction", "1", "from 0 up to 1"),
                                ("--val-fraction", "-0.1", "from 0 up to 1")):
        rc, out, err = cli(capsys, "train-recognizer", files["root"], "--out", tmp_path / "run", option, value)
        line = one_line_error(rc, err, "train-recognizer")
        assert option in line and says in line and out == "", (line, out)
    assert not (tmp_path / "run").exists()


def test_running_out_of_memory_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    import tpslab.cli

    def exhausted(args):
        raise MemoryError()

    monkeypatch.setattr(tpslab.cli, "_cmd_validate", exhausted)
    rc, out, err = cli(capsys, "validate", tmp_path)
    assert rc == 2 and out == ""
    assert err == ("tpslab validate: error: out of memory; with large inputs, pass fewer --workers where the command "
                   "has them\n")


def test_every_bad_argument_or_path_is_one_line_and_a_nonzero_exit(files, tmp_path, capsys):
    cases = _bad_inputs(files, tmp_path)
    quiet = {"mini", "index", "validate", "check-videos", "extract-frames", "export-gt", "export-coco",
             "export-lists"}  # no progress bars
    for command, arg_lists in cases.items():
        for args in arg_lists:
            rc, out, err = cli(capsys, command, *args, *(["--quiet"] if command in quiet else []))
            try:
                one_line_error(rc, err, command)
            except AssertionError as e:
                raise AssertionError(f"tpslab {command} {' '.join(map(str, args))}: {e}") from None
    for name in ("out", "coco.json", "lists"):
        assert not (tmp_path / name).exists(), name  # nothing written on the way to an error
    assert files["file"].read_text() == "not a folder\n"


def test_no_command_and_unknown_commands(capsys):
    rc, _, err = cli(capsys)
    assert rc == 2 and err.splitlines() == ["tpslab: error: the following arguments are required: COMMAND "
                                            "(see tpslab --help)"]
    rc, _, err = cli(capsys, "frobnicate")
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("tpslab: error: argument COMMAND: invalid choice")
    assert cli(capsys, "--version")[0] == 0


def test_the_messages_say_what_is_wrong(files, tmp_path, capsys):
    root, plain = files["root"], files["file"]
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    expect = [
        (["export-gt", root, "--split", "val", "--val-fraction", "0", "--out", tmp_path / "o"],
         "argument --val-fraction: must be a number strictly between 0 and 1, got '0'"),
        (["export-gt", root, "--split", "val", "--out", plain], f"{plain}: exists and is not a folder"),
        (["export-gt", root, "--videos", latin, "--out", tmp_path / "o"], f"{latin}: not UTF-8 text (byte 3)"),
        (["export-gt", root, "--videos", empty, "--out", tmp_path / "o"], f"{empty}: lists no videos"),
        (["export-gt", root, "--split", "val", "--seed", "-1", "--out", tmp_path / "o"],
         "argument --seed: must be a whole number >= 0, got '-1'"),
        (["index", root, "--workers", "0"], "argument --workers: must be a whole number >= 1, got '0'"),
        (["mini", plain, "--preset", "tiny"], f"{plain}: exists and is a file, not a folder"),
        (["evaluate", files["gt"], files["list"], "--max-bytes", "100"], "more than 100 bytes"),
    ]
    for args, message in expect:
        rc, _, err = cli(capsys, *args)
        line = one_line_error(rc, err, args[0])
        assert message in line, (args, line)


def test_an_unwritable_out_folder(files, tmp_path, capsys):
    if os.geteuid() == 0:
        if not os.path.isdir("/sys"):
            pytest.skip("root writes anywhere")
        folder = Path("/sys")
    else:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o500)
    rc, _, err = cli(capsys, "export-gt", files["root"], "--split", "val", "--out", folder, "--quiet")
    line = one_line_error(rc, err, "export-gt")
    assert f"{folder}: cannot create a file in this folder" in line


# ----------------------------------------------------------------------------------------------------
# export-gt


def test_export_gt_writes_files_with_the_users_umask(files, tmp_path, capsys):
    for umask in (0o022, 0o077):
        out = tmp_path / f"gt-{umask:o}"
        old = os.umask(umask)  # the process's umask, as a user's shell sets it
        try:
            rc, _, err = cli(capsys, "export-gt", files["root"], "--split", "val", "--out", out, "--quiet")
        finally:
            os.umask(old)
        assert rc == 0, err
        for name in (GT_VID, GT_PART):
            assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask


def test_export_gt_of_an_empty_selection_is_an_error(files, tmp_path, capsys):
    listed = tmp_path / "comments.txt"
    listed.write_text("# nothing yet\n")
    rc, _, err = cli(capsys, "export-gt", files["root"], "--videos", listed, "--out", tmp_path / "gt", "--quiet")
    assert "lists no videos" in one_line_error(rc, err, "export-gt")
    assert not (tmp_path / "gt").exists()


@pytest.mark.parametrize("command", ["export-gt", "export-coco"])
def test_a_name_of_the_video_list_that_is_not_a_video_is_traced_to_the_list(files, tmp_path, capsys, command):
    """The message named no file (export-gt: 'videos: NOPE_VIDEO: not in the dataset')."""
    listed = tmp_path / "videos.txt"
    listed.write_text(f"{files['val'][0]}\nNOPE_VIDEO\n")
    (tmp_path / "frames").mkdir()
    out = tmp_path / ("gt" if command == "export-gt" else "coco.json")
    extra = ["--quiet"] if command == "export-gt" else [tmp_path / "frames", "--quiet"]
    rc, _, err = cli(capsys, command, files["root"], *extra, "--videos", listed, "--out", out)
    assert f"{listed}: 1 name(s) are not videos of {files['root']}: NOPE_VIDEO" in one_line_error(rc, err, command)
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------
# mini


def test_a_file_where_a_folder_is_expected_is_called_a_file(files, tmp_path, capsys, monkeypatch):
    plain = files["file"]  # a text file
    for args in (["export-coco", files["root"], plain, "--out", tmp_path / "c.json"],
                 ["export-coco", files["root"], files["root"], "--out", plain / "c.json"],
                 ["export-lists", files["root"], "--frames", plain, "--out", tmp_path / "lists"]):
        rc, _, err = cli(capsys, *args)
        assert f"{plain}: exists and is not a folder" in one_line_error(rc, err, args[0]), err
        assert "no such" not in err
    monkeypatch.setenv("TPSLAB_CACHE", str(plain))
    rc, _, err = cli(capsys, "mini", "--preset", "tiny", "--quiet")
    assert f"{plain}: exists and is not a folder (from $TPSLAB_CACHE)" in one_line_error(rc, err, "mini"), err
    assert plain.read_text() == "not a folder\n"


def test_mini_into_an_existing_folder(tmp_path, capsys, monkeypatch):
    use_micro_as_tiny(monkeypatch)  # six videos stand in for the tiny preset's 24
    out = tmp_path / "mini"
    rc, first, _ = cli(capsys, "mini", out, "--preset", "tiny", "--seed", "3", "--quiet")
    assert rc == 0 and first.strip() == str(out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    rc, again, err = cli(capsys, "mini", out, "--preset", "tiny", "--seed", "3", "--quiet")  # the README's example
    assert rc == 0 and again == first and err == ""
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # reused, untouched
    rc, _, err = cli(capsys, "mini", out, "--preset", "tiny", "--seed", "4", "--quiet")
    assert "holds the mini dataset of preset 'tiny', seed 3" in one_line_error(rc, err, "mini")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    rc, _, err = cli(capsys, "mini", mine, "--preset", "tiny", "--quiet")
    assert "does not hold a mini dataset written by `tpslab mini`" in one_line_error(rc, err, "mini")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    next(out.rglob("*.mp4")).unlink()
    rc, _, err = cli(capsys, "mini", out, "--preset", "tiny", "--seed", "3", "--quiet")
    assert "incomplete" in one_line_error(rc, err, "mini")


# ----------------------------------------------------------------------------------------------------
# evaluate and check-submission


def test_evaluate_refuses_unknown_names_unless_asked(files, tmp_path, capsys):
    pred_vid, pred_part = json.loads(json.dumps(files["pred"]))
    video = files["val"][0]
    pred_vid[video] += "s"  # a class typo
    for fr in pred_part[files["val"][1]].values():
        for person in fr["humans"]:
            for part in person["parts"].values():
                part["verb"] = ["bendd" if v == "bend" else v for v in part["verb"]]
    typo = write_submission_zip(tmp_path / "typo.zip", pred_vid, pred_part)
    rc, out, err = cli(capsys, "evaluate", files["gt"], typo)
    line = one_line_error(rc, err, "evaluate")
    assert out == ""  # not scored
    label = files["gt_vid"][video]
    assert f"class '{label}s' (1x; did you mean '{label}'" in line and "state 'bendd' (" in line
    assert "did you mean 'bend'" in line and "--allow-unknown-names" in line
    rc, out, err = cli(capsys, "evaluate", files["gt"], typo, "--allow-unknown-names")
    assert rc == 0 and "area" in out and "unknown" in err


def test_evaluate_says_which_mode_a_submission_looks_like(files, capsys):
    rc, out, err = cli(capsys, "evaluate", files["gt"], files["single"])
    line = one_line_error(rc, err, "evaluate")
    assert "looks like a mode 'single' submission" in line and "--mode single" in line
    rc, out, err = cli(capsys, "evaluate", files["gt"], files["list"], "--mode", "single")
    assert "--mode list" in one_line_error(rc, err, "evaluate")
    rc, out, err = cli(capsys, "evaluate", files["gt"], files["single"], "--mode", "single", "--json")
    assert rc == 0 and json.loads(out)["area"] == 0.9999


def test_evaluate_of_damaged_submissions(files, tmp_path, capsys):
    pred_vid, pred_part = files["pred"]
    folder = tmp_path / "listed"
    write_prediction_files(folder, pred_vid, pred_part)
    (folder / PRED_VID).write_text(json.dumps(list(pred_vid)))
    rc, _, err = cli(capsys, "evaluate", files["gt"], folder)
    assert "pred_vid_result.json: expected a JSON object {...}, got a list" in one_line_error(rc, err, "evaluate")
    enc = tmp_path / "enc.zip"
    data = bytearray(files["list"].read_bytes())
    for signature, offset in ((b"PK\x01\x02", 8), (b"PK\x03\x04", 6)):
        i = data.find(signature)
        while i >= 0:
            data[i + offset] |= 1
            i = data.find(signature, i + 4)
    enc.write_bytes(bytes(data))
    rc, _, err = cli(capsys, "evaluate", files["gt"], enc)
    assert "encrypted (password-protected)" in one_line_error(rc, err, "evaluate")
    missing = dict(pred_vid)
    del missing[files["val"][0]], missing[files["val"][1]]
    write_prediction_files(tmp_path / "missing", missing, pred_part)
    rc, _, err = cli(capsys, "evaluate", files["gt"], tmp_path / "missing")
    line = one_line_error(rc, err, "evaluate")
    assert "2 ground-truth video(s) are missing from pred_vid_result" in line and files["val"][0] in line
    assert "(and 1 more" in line and "check-submission" in line
    gt_list = tmp_path / "gt-list"
    gt_list.mkdir()
    (gt_list / GT_VID).write_text("[]")
    (gt_list / GT_PART).write_text("{}")
    rc, _, err = cli(capsys, "evaluate", gt_list, files["list"])
    assert "expected a JSON object" in one_line_error(rc, err, "evaluate")


def test_evaluate_errors_in_the_part_files_name_the_folder_or_zip_once(files, tmp_path, capsys):
    pred_vid, pred_part = json.loads(json.dumps(files["pred"]))
    video = files["val"][0]
    first = next(iter(pred_part[video].values()))["humans"][0]
    first["box"][2] = "9"
    folder, zipped = tmp_path / "bad", tmp_path / "bad.zip"
    write_prediction_files(folder, pred_vid, pred_part)
    write_submission_zip(zipped, pred_vid, pred_part)
    for sub, name in ((folder, str(folder / "pred_part_result.json")), (zipped, f"{zipped}:pred_part_result.json")):
        rc, _, err = cli(capsys, "evaluate", files["gt"], sub)
        line = one_line_error(rc, err, "evaluate")
        assert f"1 malformed box(es) in {name}: {video}/img_00001.json/humans[0].box: expected 4 finite numbers" \
            in line and line.count("pred_part_result") == 1, line
    # a video of the ground truth missing from the part file; a frame of the ground truth that is no object
    del pred_part[video]
    write_prediction_files(tmp_path / "short", pred_vid, pred_part)
    rc, _, err = cli(capsys, "evaluate", files["gt"], tmp_path / "short")
    line = one_line_error(rc, err, "evaluate")
    assert f"{tmp_path / 'short' / 'pred_part_result.json'}: {video}: video missing" in line, line
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / GT_VID).write_bytes((files["gt"] / GT_VID).read_bytes())
    gt_part = json.loads((files["gt"] / GT_PART).read_text())
    next(iter(gt_part[video].values()))["humans"][0]["parts"] = 7
    (gt / GT_PART).write_text(json.dumps(gt_part))
    rc, _, err = cli(capsys, "evaluate", gt, files["list"])
    line = one_line_error(rc, err, "evaluate")
    assert f"malformed parts in {gt / GT_PART}: {video}/img_00001.json/humans[0].parts" in line, line
    assert line.count("gt_part_result") == 1, line


def test_check_submission_refuses_what_evaluate_refuses(files, tmp_path, capsys):
    pred_vid, pred_part = json.loads(json.dumps(files["pred"]))
    for fr in pred_part[files["val"][1]].values():
        for person in fr["humans"]:
            for part in person["parts"].values():
                part["verb"] = ["bendd" if v == "bend" else v for v in part["verb"]]
    typo = write_submission_zip(tmp_path / "typo.zip", pred_vid, pred_part)
    assert cli(capsys, "evaluate", files["gt"], typo)[0] == 2  # refused
    rc, out, _ = cli(capsys, "check-submission", typo, "--gt", files["gt"])
    assert rc == 1 and out.startswith("submission NOT OK: "), out
    assert "error: state 'bendd' not in the part-state vocabulary; did you mean 'bend' or" in out, out
    assert "--allow-unknown-names" in out.splitlines()[-1]
    rc, out, _ = cli(capsys, "check-submission", typo, "--gt", files["gt"], "--allow-unknown-names")
    assert rc == 0 and out.startswith("submission OK: 0 error(s)") and "warning: state 'bendd'" in out, out
    assert cli(capsys, "evaluate", files["gt"], typo, "--allow-unknown-names")[0] == 0


def test_check_submission(files, tmp_path, capsys):
    rc, out, err = cli(capsys, "check-submission", files["list"], "--gt", files["gt"])
    assert rc == 0 and out.startswith("submission OK: 0 error(s)") and err == ""
    rc, out, _ = cli(capsys, "check-submission", files["single"], "--mode", "single")
    assert rc == 0 and out.startswith("submission OK")
    rc, out, _ = cli(capsys, "check-submission", files["single"])
    assert rc == 1 and "looks like a mode 'single' submission" in out.splitlines()[1]
    pred_vid, pred_part = json.loads(json.dumps(files["pred"]))
    first = next(iter(next(iter(pred_part.values())).values()))["humans"][0]
    del first["parts"]
    first["box"][0] = True
    write_prediction_files(tmp_path / "bad", pred_vid, pred_part)
    rc, out, _ = cli(capsys, "check-submission", tmp_path / "bad", "--gt", files["gt"])
    assert rc == 1 and "NOT OK: 2 error(s)" in out and "missing 'parts'" in out and "box is not 4 finite" in out


# ----------------------------------------------------------------------------------------------------
# Tracebacks: only for bugs, or when asked


def test_a_bug_keeps_its_traceback(monkeypatch, capsys):
    import tpslab.cli

    def broken(args):
        raise TypeError("a bug")

    monkeypatch.setattr(tpslab.cli, "_cmd_validate", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["validate"])


def test_tpslab_traceback_shows_where_an_expected_error_came_from(tmp_path, capsys, monkeypatch):
    # (`python -m tpslab` runs main() and exits with its status: tests/test_packaging.py)
    args = ["index", tmp_path / "no-such-root"]
    rc, _, err = cli(capsys, *args)
    assert rc == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    line = err
    # With TPSLAB_TRACEBACK the traceback comes before the same line, and the exit status stays 2 (scripts read it)
    monkeypatch.setenv("TPSLAB_TRACEBACK", "1")
    rc, _, err = cli(capsys, *args)
    assert rc == 2 and err.startswith("Traceback (most recent call last):") and err.endswith(line), err
    assert "resolve_root" in err or "check_release_root" in err  # where it came from
    for off in ("0", ""):  # an explicit 0, or empty, is off
        monkeypatch.setenv("TPSLAB_TRACEBACK", off)
        rc, _, err = cli(capsys, *args)
        assert rc == 2 and err == line


def test_help_mentions_the_commands(capsys):
    with pytest.raises(SystemExit):
        from tpslab.cli import _build_parser

        _build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "check-submission" in out and "TPSLAB_TRACEBACK" in out


def test_building_the_parser_imports_nothing_heavy():
    """``tpslab --help`` stays instant: commands import the library when they run."""
    code = ("import sys; from tpslab.cli import _build_parser; _build_parser(); "
            "print(','.join(m for m in ('pandas', 'torch', 'av', 'tpslab.submission', 'tpslab.synthetic') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_commands_offer_the_challenges_modes_and_pairings():
    """The options spell out challenge.MODES and PAIRINGS (the parser does not import them: --help stays
    light), once each: evaluate and check-submission had two --mode options with different help."""
    from tpslab import challenge
    from tpslab.cli import _build_parser

    commands = _build_parser()._subparsers._group_actions[0].choices
    for name in ("evaluate", "check-submission"):
        option = {a.dest: a for a in commands[name]._actions}
        assert tuple(option["mode"].choices) == challenge.MODES and option["mode"].default == "list"
    assert option["mode"].help == {a.dest: a for a in commands["evaluate"]._actions}["mode"].help
    pairing = {a.dest: a for a in commands["evaluate"]._actions}["pairing"]
    assert tuple(pairing.choices) == challenge.PAIRINGS and pairing.default == challenge.PAIRINGS[0]
