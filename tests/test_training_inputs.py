"""Hostile inputs to training and loading the recogniser: a learning rate that makes training diverge,
--resume without a checkpoint, unusable devices and backbones, unreadable or non-finite checkpoints and
models. Each is refused with one line naming the parameter or the file (exit 2 from the commands), and a
diverging run writes no model."""

import json
import math
import re
import shutil

import pytest
import torch

from tiny_models import detections
from tpslab.cli import main
from tpslab.crops import video_paths
from tpslab.models._common import torch_device
from tpslab.models.recognizer import PartStateRecognizer, resolve_backbone
from tpslab.models.training import (CHECKPOINT, RunFolderError, TrainingDivergedError, prepare_run, read_checkpoint,
                                    write_metrics)


def train_args(root, run, *extra):
    return ["train-recognizer", str(root), "--out", str(run), "--epochs", "1", "--max-crops", "64",
            "--batch-size", "16", "--seed", "1", "--quiet", *extra]


def one_line_error(capsys, command) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tpslab {command}: error:") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def small(tiny):
    """Three training videos: their part rows and paths."""
    parts = tiny.dataset.parts
    rows = parts[parts["video"].astype(str).isin(tiny.train[:3])].reset_index(drop=True)
    return rows, video_paths(tiny.dataset), tiny.dataset.vocab


def tiny_model(lr, **options):
    return PartStateRecognizer(**{"epochs": 1, "max_crops": 64, "batch_size": 16, "lr": lr, "threads": 1,
                                  "progress": False, **options})


@pytest.fixture(scope="module")
def finished_run(tiny, tmp_path_factory):
    """A run folder of train-recognizer (1 epoch, 64 crops): tests copy it before changing it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(train_args(tiny.dataset.root, run, "--val-fraction", "0")) == 0
    return run


# ----------------------------------------------------------------------------- learning rates and divergence


@pytest.mark.parametrize("lr", [float("inf"), float("-inf")])
def test_an_infinite_learning_rate_is_refused(small, tmp_path, lr):
    rows, paths, vocab = small
    model = tiny_model(lr)
    with pytest.raises(ValueError, match=r"^lr must be a finite number >= 0, got -?inf$"):
        model.fit(model.dataset(rows, paths, vocab), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_infinite_learning_rate_is_one_line_in_the_command(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(tiny.dataset.root, run, "--lr", "inf")) == 2
    assert "--lr: must be a finite number >= 0, got 'inf'" in one_line_error(capsys, "train-recognizer")
    assert not run.exists()


def test_a_diverging_run_stops_at_the_first_non_finite_loss_and_writes_no_model(small, tmp_path):
    rows, paths, vocab = small
    model = tiny_model(1e10)  # finite, but the loss is 3e29 at step 2 and nan at step 3
    with pytest.raises(ValueError, match=r"training diverged at epoch 1, step 3 of 4: the loss is nan"):
        model.fit(model.dataset(rows, paths, vocab), run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / CHECKPOINT).exists()


def test_a_step_that_overflows_the_optimizer_is_a_divergence_not_a_traceback(small, tmp_path, tiny, capsys):
    rows, paths, vocab = small
    # Finite, but AdamW's first step size (OneCycle's start lr / 25, over 1 - 0.9) is 4e38, beyond float32.
    model = tiny_model(1e39)
    with pytest.raises(TrainingDivergedError, match=r"^training diverged at epoch 1, step 1 of 4: the optimizer's "
                       r"step does not fit in float32 .*; try a lower learning rate than lr=1e\+39$"):
        model.fit(model.dataset(rows, paths, vocab), run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / CHECKPOINT).exists()
    assert main(train_args(tiny.dataset.root, tmp_path / "cli", "--lr", "1e39")) == 2
    assert "training diverged at epoch 1, step 1" in one_line_error(capsys, "train-recognizer")


def test_metrics_file_is_strict_json_when_a_figure_cannot_be_measured(tmp_path):
    history = [{"epoch": 1, "train_loss": 0.5, "val_mean_class_acc": float("nan"), "val_top1": float("inf")}]
    path = write_metrics(tmp_path, history)
    rows = [json.loads(line, parse_constant=pytest.fail) for line in path.read_text().splitlines()]
    assert rows == [{"epoch": 1, "train_loss": 0.5, "val_mean_class_acc": None, "val_top1": None}]
    assert math.isnan(history[0]["val_mean_class_acc"])  # the run's own record is left as it was


def test_weights_that_overflow_without_a_non_finite_loss_stop_the_run(small, tmp_path):
    rows, paths, vocab = small
    # BatchNorm: the last of two steps has a finite loss (6.7e32) but leaves weights of inf.
    model = tiny_model(1e10, norm="batch", max_crops=32)
    with pytest.raises(ValueError, match=r"training diverged at epoch 1: weights .* are not finite"):
        model.fit(model.dataset(rows, paths, vocab), run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / CHECKPOINT).exists()


def test_a_diverging_run_is_one_line_in_the_command(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(tiny.dataset.root, run, "--lr", "1e10")) == 2
    err = one_line_error(capsys, "train-recognizer")
    assert "training diverged at epoch 1, step" in err and "not finite" in err
    assert not (run / "model.pt").exists()


def test_a_model_with_non_finite_weights_is_refused_on_load(tiny_recognizer, tmp_path):
    data = torch.load(tiny_recognizer.save(tmp_path / "m.pt"), weights_only=True)
    key = next(k for k, v in data["state_dict"].items() if v.is_floating_point())
    data["state_dict"][key][0] = float("nan")
    torch.save(data, tmp_path / "nan.pt")
    with pytest.raises(ValueError, 
                       match="^" + re.escape(f"{tmp_path / 'nan.pt'}: the weights {key} are not finite")):
        PartStateRecognizer.load(tmp_path / "nan.pt")


# ----------------------------------------------------------------------------- resume


def test_resume_without_a_checkpoint_is_refused(tiny, tmp_path, capsys):
    with pytest.raises(RunFolderError, match="^" + re.escape(f"no checkpoint to resume in {tmp_path / 'new'}")):
        prepare_run(tmp_path / "new", resume=True)
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "metrics.jsonl").write_text("")
    with pytest.raises(RunFolderError, match="no checkpoint to resume in"):
        prepare_run(tmp_path / "started", resume=True)
    run = tmp_path / "run"
    assert main(train_args(tiny.dataset.root, run, "--resume")) == 2
    assert f"no checkpoint to resume in {run}" in one_line_error(capsys, "train-recognizer")
    assert not run.exists()


# ----------------------------------------------------------------------------- devices and backbones


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_one_line(tiny, tmp_path, capsys):
    with pytest.raises(ValueError, match="CUDA is not available"):
        torch_device("cuda")
    assert main(train_args(tiny.dataset.root, tmp_path / "run", "--device", "cuda")) == 2
    assert "device 'cuda' asked for, but CUDA is not available" in one_line_error(capsys, "train-recognizer")


def test_an_unknown_device_is_one_line(tiny, tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        torch_device("tpu")
    assert main(train_args(tiny.dataset.root, tmp_path / "run", "--device", "tpu")) == 2
    assert "unknown device 'tpu'" in one_line_error(capsys, "train-recognizer")
    assert not (tmp_path / "run").exists()


def test_a_failing_backbone_factory_is_one_line(tiny, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"the backbone factory 'os:system' failed: TypeError"):
        resolve_backbone("os:system")
    with pytest.raises(ValueError, match=r"the backbone factory 'os:sep' failed: TypeError"):  # not callable
        resolve_backbone("os:sep")
    assert main(train_args(tiny.dataset.root, tmp_path / "run", "--backbone", "os:system")) == 2
    assert "the backbone factory 'os:system' failed" in one_line_error(capsys, "train-recognizer")


# ----------------------------------------------------------------------------- unreadable files

DAMAGED = {"empty": b"", "garbage": b"not a torch file\n" * 10, "truncated zip": b"PK\x03\x04" + b"\0" * 40}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_an_unreadable_checkpoint_is_refused(tmp_path, damage):
    path = tmp_path / CHECKPOINT
    path.write_bytes(DAMAGED[damage])
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: cannot read it as a torch file")):
        read_checkpoint(path)


def test_resuming_from_an_empty_checkpoint_is_one_line(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / CHECKPOINT).write_bytes(b"")
    assert main(train_args(tiny.dataset.root, run, "--resume")) == 2
    assert f"{run / CHECKPOINT}: cannot read it as a torch file" in one_line_error(capsys, "train-recognizer")


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_an_unreadable_model_is_refused_on_load(tmp_path, damage):
    path = tmp_path / "model.pt"
    path.write_bytes(DAMAGED[damage])
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: cannot read it as a torch file")):
        PartStateRecognizer.load(path)


@pytest.mark.parametrize("damage", ["empty", "nan"])
def test_predict_refuses_an_unreadable_or_non_finite_model(tiny, finished_run, tmp_path, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if damage == "nan":
        data = torch.load(run / "model.pt", weights_only=True)
        for v in data["state_dict"].values():
            if v.is_floating_point():
                v.fill_(float("nan"))
        torch.save(data, run / "model.pt")
    else:
        (run / "model.pt").write_bytes(b"")
    out = tmp_path / "sub.zip"
    assert main(["predict", str(tiny.dataset.root), str(run), "--boxes", str(detections(tiny, tmp_path / "d.json")),
                 "--out", str(out), "--quiet"]) == 2
    err = one_line_error(capsys, "predict")
    assert f"{run / 'model.pt'}:" in err and ("not finite" if damage == "nan" else "cannot read") in err
    assert not out.exists()


def _scored_detections(tiny, path) -> dict:
    """The test videos' detections (tiny_models.detections) on the frames the challenge scores only."""
    import json

    from tpslab.challenge import frame_number, is_scored

    held = json.loads(detections(tiny, path).read_text())
    return {v: {k: f for k, f in frames.items() if is_scored(frame_number(k))} for v, frames in held.items()}


def _moved_off_the_scored_frames(frames: dict) -> dict:
    """A video's detections with each frame renamed to a neighbour the challenge does not score."""
    from tpslab.challenge import frame_key, frame_number

    return {frame_key(frame_number(k) + (1 if frame_number(k) == 1 else -1)): v for k, v in frames.items()}


def _renamed_first_frame(held, video, key):
    first = sorted(held[video])[0]
    held[video][key] = held[video].pop(first)
    return f"{video}/{key}"


def _with_a_tail(held, video, _):
    first = sorted(held[video])[0]
    human = held[video][first]["humans"][0]
    human["parts"]["tail"] = next(iter(human["parts"].values()))
    return f"{video}/{first}/humans[0].parts: 'tail' is not a body part of the challenge"


def _crowded(held, video, _):
    first = sorted(held[video])[0]
    held[video][first]["humans"] *= 11
    return f"{video}/{first}: {11 * (len(held[video][first]['humans']) // 11)} humans, at most 10"


def _huge_part_box(held, video, _):
    first = sorted(held[video])[0]
    name, part = next(iter(held[video][first]["humans"][0]["parts"].items()))
    part["box"] = [[0, 0, 1e300, 1e300]]
    return f"{video}/{first}/humans[0].parts.{name}.box: [0.0, 0.0, 1e+300, 1e+300]: beyond float32"


@pytest.mark.parametrize("damage, key", [(_renamed_first_frame, "img_0.json"), (_renamed_first_frame, "img_00000.json"),
                                         (_renamed_first_frame, "hello"), (_with_a_tail, None), (_crowded, None),
                                         (_huge_part_box, None)])
def test_predict_names_the_detections_file_and_the_frame_of_a_bad_frame(tiny, finished_run, tmp_path, capsys, damage,
                                                                         key):
    """These errors named neither (frame 0 surfaced as a crop error, 11 humans as a table problem)."""
    import json

    boxes = tmp_path / "d.json"
    held = _scored_detections(tiny, boxes)
    expected = damage(held, tiny.test[0], key)
    boxes.write_text(json.dumps(held))
    out = tmp_path / "sub.zip"
    assert main(["predict", str(tiny.dataset.root), str(finished_run), "--boxes", str(boxes), "--out", str(out),
                 "--quiet"]) == 2
    err = one_line_error(capsys, "predict")  # one line: no NumPy warning above it either
    assert f"{boxes}: {expected}" in err and not out.exists()


def test_predict_says_a_listed_name_that_is_not_a_video_is_not_a_video(tiny, finished_run, tmp_path, capsys):
    """It blamed the detections file: '1 video(s) have no detections in d.json'."""
    boxes = detections(tiny, tmp_path / "d.json")
    listed = tmp_path / "videos.txt"
    listed.write_text(f"{tiny.test[0]}\nNOPE_VIDEO\n")
    out = tmp_path / "sub.zip"
    assert main(["predict", str(tiny.dataset.root), str(finished_run), "--boxes", str(boxes), "--out", str(out),
                 "--videos", str(listed), "--quiet"]) == 2
    err = one_line_error(capsys, "predict")
    assert f"{listed}: 1 name(s) are not videos of {tiny.dataset.root}: NOPE_VIDEO" in err and not out.exists()


def test_predict_says_which_keys_of_the_detections_appear_twice(tiny, finished_run, tmp_path, capsys):
    """JSON keeps the last copy of a key: the other copy's boxes were dropped without a word."""
    import json

    held = _scored_detections(tiny, tmp_path / "d.json")
    video = tiny.test[0]
    first = sorted(held[video])[0]
    text = json.dumps(held)
    frame_text = json.dumps({first: held[video][first]})[1:-1]
    twice = text.replace(frame_text, frame_text + ", " + frame_text, 1)  # the frame's key twice, in the video
    assert twice != text
    boxes = tmp_path / "twice.json"
    boxes.write_text(twice)
    out = tmp_path / "sub.zip"
    assert main(["predict", str(tiny.dataset.root), str(finished_run), "--boxes", str(boxes), "--out", str(out),
                 "--quiet"]) == 0
    assert (f"tpslab predict: note: {boxes}: {video}/{first} appears more than once: JSON readers keep the last "
            "and drop the others") in capsys.readouterr().err


def test_predict_refuses_a_video_whose_detections_all_miss_the_scored_frames(tiny, finished_run, tmp_path, capsys):
    """Detections numbered one off (from 0, say) were predicted, then left out of the submission with the
    frames the challenge does not score: exit 0, the video written without frames, the summary counting them."""
    import json

    boxes = tmp_path / "d.json"
    held = _scored_detections(tiny, boxes)
    moved = tiny.test[0]
    held[moved] = _moved_off_the_scored_frames(held[moved])
    boxes.write_text(json.dumps(held))
    out = tmp_path / "sub.zip"
    assert main(["predict", str(tiny.dataset.root), str(finished_run), "--boxes", str(boxes), "--out", str(out),
                 "--quiet"]) == 2
    err = one_line_error(capsys, "predict")
    assert f"{boxes}: 1 video(s) have detections only on frames the challenge does not score, e.g. {moved}/" in err
    assert "img_00001.json, img_00006.json, ..." in err and not out.exists()


def test_predict_says_how_many_frames_of_detections_are_not_scored_and_counts_what_it_wrote(
        tiny, finished_run, tmp_path, capsys):
    import json

    from tpslab.submission import read_submission

    boxes = tmp_path / "d.json"
    held = _scored_detections(tiny, boxes)
    video = tiny.test[0]
    extra = _moved_off_the_scored_frames(held[video])
    held[video].update(extra)
    boxes.write_text(json.dumps(held))
    out = tmp_path / "sub.zip"
    assert main(["predict", str(tiny.dataset.root), str(finished_run), "--boxes", str(boxes), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert (f"tpslab predict: note: {len(extra)} frame(s) of {boxes} are not frames the challenge scores: "
            "predicted, and left out of the submission") in captured.err
    written = read_submission(out)[1]
    assert sorted(written[video]) == sorted(set(held[video]) - set(extra))
    parts = sum(len(h["parts"]) for frames in written.values() for f in frames.values() for h in f["humans"])
    assert f"({parts} part boxes in the zip)" in captured.out


def test_predict_refuses_detections_of_a_video_without_frames(tiny, finished_run, tmp_path, capsys):
    """Such a video was left out of the submission without a word."""
    import json

    boxes = detections(tiny, tmp_path / "d.json")
    held = json.loads(boxes.read_text())
    emptied = tiny.test[0]
    held[emptied] = {}
    boxes.write_text(json.dumps(held))
    out = tmp_path / "sub.zip"
    assert main(["predict", str(tiny.dataset.root), str(finished_run), "--boxes", str(boxes), "--out", str(out),
                 "--quiet"]) == 2
    err = one_line_error(capsys, "predict")
    assert f"1 video(s) of {boxes} hold no frames, e.g. ['{emptied}']" in err and not out.exists()
