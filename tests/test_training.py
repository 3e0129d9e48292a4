"""Training the recogniser at scale (tpslab.models.training) and the train-recognizer / predict commands:
streaming and in-memory training agree, a killed run resumes to the same weights, two processes under
torchrun train and predict as one, run folders are never clobbered, backbones plug in."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_models import detections
from tpslab.cli import main
from tpslab.crops import video_paths
from tpslab.models.recognizer import Backbone, PartStateRecognizer
from tpslab.models.training import CHECKPOINT, RunFolderError, prepare_run, read_checkpoint, read_metrics

TIMING = {"seconds", "crops_per_s", "processes"}
TORCHRUN = Path(sys.executable).with_name("torchrun")


def train_args(root, run, *extra):
    return ["train-recognizer", str(root), "--out", str(run), "--epochs", "2", "--max-crops", "257",
            "--batch-size", "64", "--seed", "1", "--quiet", *extra]


def weights(run):
    return torch.load(Path(run) / "model.pt", weights_only=True)["state_dict"]


def same_metrics(a, b, tol=0.0):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert set(x) == set(y)
        for k in set(x) - TIMING:
            assert x[k] == pytest.approx(y[k], abs=tol, rel=tol), k


def child_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}


@pytest.fixture(scope="module")
def small(tiny):
    """Three training videos: their part rows and paths."""
    parts = tiny.dataset.parts
    rows = parts[parts["video"].astype(str).isin(tiny.train[:3])].reset_index(drop=True)
    return rows, video_paths(tiny.dataset), tiny.dataset.vocab


# ----------------------------------------------------------------------------- one process


def test_streamed_and_in_memory_training_end_with_the_same_weights(small):
    rows, paths, vocab = small
    options = dict(epochs=2, max_crops=200, batch_size=64, threads=1, progress=False)
    held = PartStateRecognizer(**options)
    # The same sample order: blocks of videos read forward (the default for video files; none in memory).
    held.fit(held.crops(rows, paths, progress=False), rows, vocab, video_block=2)
    streamed = PartStateRecognizer(**options)
    streamed.fit(streamed.dataset(rows, paths, vocab), video_block=2)
    a, b = held.net_.state_dict(), streamed.net_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert held.history_ == streamed.history_ and len(held.history_) == 2
    # DataLoader workers (forked after this process read the colour statistics) change nothing either.
    workers = PartStateRecognizer(**options)
    workers.fit(workers.dataset(rows, paths, vocab), video_block=2, workers=2)
    c = workers.net_.state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert {"train_loss", "train_top1", "crops_per_s", "crops", "lr"} <= set(streamed.metrics_[0])


def test_metrics_file_and_early_stopping(small, tmp_path):
    rows, paths, vocab = small
    train = rows[rows["video"] != rows["video"].iloc[-1]]
    val = rows[rows["video"] == rows["video"].iloc[-1]]
    # lr 0: the weights never move, so the validation loss never improves after epoch 1.
    model = PartStateRecognizer(epochs=5, lr=0.0, max_crops=128, batch_size=64, threads=1, progress=False)
    lines = []
    model.fit(model.dataset(train, paths, vocab), val=model.dataset(val, paths, vocab), patience=1,
              run_dir=tmp_path / "run", log=lines.append)
    metrics = read_metrics(tmp_path / "run")
    assert [m["epoch"] for m in metrics] == [1, 2] and metrics == model.metrics_
    assert metrics[1]["best_epoch"] == 1 and metrics[0]["val_loss"] == metrics[1]["val_loss"]
    assert {"train_loss", "train_top1", "val_loss", "val_top1", "val_mean_class_acc", "crops_per_s"} <= set(metrics[0])
    assert 0 <= metrics[0]["val_mean_class_acc"] <= 1 and metrics[0]["crops"] == 128
    assert len(lines) == 2 and lines[1].endswith("(early stop)")
    ckpt = read_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert ckpt["epoch"] == 2 and ckpt["stopped"]
    again = PartStateRecognizer.load(tmp_path / "run" / "model.pt", vocab)
    assert all(torch.equal(v, again.net_.state_dict()[k]) for k, v in ckpt["best"]["state"].items())
    with pytest.raises(ValueError, match="needs a validation set"):
        model.fit(model.dataset(train, paths, vocab), patience=1)


class TinyBackbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 5, stride=2)

    def forward(self, x):
        return torch.relu(self.conv(x))  # feature maps: the recogniser averages them


def test_a_custom_backbone_plugs_in(small, tmp_path):
    rows, paths, vocab = small
    torch.manual_seed(0)
    spec = Backbone(TinyBackbone(), size=24, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    before = {k: v.clone() for k, v in spec.module.state_dict().items()}
    model = PartStateRecognizer(backbone=spec, epochs=1, max_crops=128, batch_size=64, threads=1, progress=False)
    assert model.config.size == 24 and model.config.backbone.endswith("TinyBackbone")
    ds = model.dataset(rows, paths, vocab)
    assert ds.images([0]).shape == (1, 24, 24, 3)
    model.fit(ds)
    assert model.config.features == 6 and torch.allclose(model.net_.mean, torch.tensor([0.5] * 3))
    assert all(torch.equal(v, spec.module.state_dict()[k]) for k, v in before.items())  # the caller's module kept
    path = model.save(tmp_path / "m.pt")
    again = PartStateRecognizer.load(path, vocab, backbone=TinyBackbone())
    probe = model.dataset(rows.iloc[:50], paths, vocab)
    np.testing.assert_array_equal(again.predict_proba(probe), model.predict_proba(probe))
    with pytest.raises(ValueError, match="pass backbone="):
        PartStateRecognizer.load(path, vocab)


def test_old_batchnorm_models_still_load(small, tmp_path):
    rows, paths, vocab = small
    model = PartStateRecognizer(norm="batch", epochs=1, max_crops=64, batch_size=64, threads=1, progress=False)
    model.fit(model.dataset(rows, paths, vocab))
    data = torch.load(model.save(tmp_path / "m.pt"), weights_only=True)
    for key in ("norm", "backbone", "features"):  # as files written before these settings existed
        del data["config"][key]
    torch.save(data, tmp_path / "old.pt")
    old = PartStateRecognizer.load(tmp_path / "old.pt", vocab)
    assert old.config.norm == "batch"
    probe = model.dataset(rows.iloc[:30], paths, vocab)
    np.testing.assert_array_equal(old.predict_proba(probe), model.predict_proba(probe))


# ----------------------------------------------------------------------------- run folders and commands


def test_training_says_how_many_annotation_problems_it_skipped(tiny, tmp_path, capsys):
    root = tmp_path / "release"
    shutil.copytree(tiny.dataset.root, root)
    emptied = sorted((root / "train_annotations").rglob("img_*.json"))[0]
    emptied.write_text("")
    args = [a for a in train_args(root, tmp_path / "run", "--epochs", "1", "--max-crops", "64") if a != "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"1 annotation problems were skipped; run `tpslab validate {root}` to list them" in out


def test_run_folders_are_never_clobbered(tiny, tmp_path, capsys):
    root = tiny.dataset.root
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    assert main(train_args(root, tmp_path / "theirs", "--epochs", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tpslab train-recognizer: error:") and "notes.txt" in err and "\n" not in err
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "mine"
    assert main(train_args(root, tmp_path / "new" / "run", "--frames", str(tmp_path / "no-frames"))) == 2
    assert "no-frames" in capsys.readouterr().err and not (tmp_path / "new").exists()  # nothing left behind
    assert main(train_args(root, tmp_path / "theirs" / "notes.txt" / "run")) == 2
    assert "cannot make the run folder" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(train_args(root, run, "--epochs", "1")) == 0
    first = weights(run)
    assert main(train_args(root, run, "--epochs", "1")) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(train_args(root, run, "--epochs", "3", "--resume")) == 2  # another schedule: refused
    assert "other settings" in capsys.readouterr().err
    assert main(train_args(root, run, "--epochs", "1", "--resume")) == 0  # finished: nothing to redo
    assert all(torch.equal(first[k], v) for k, v in weights(run).items())
    (run / ".checkpoint.pt.abc.tmp").write_bytes(b"half")  # a write that was killed
    (run / "notes.txt").write_text("mine")
    prepare_run(run, resume=True)
    assert not (run / ".checkpoint.pt.abc.tmp").exists() and (run / "notes.txt").exists()
    with pytest.raises(RunFolderError, match="did not write"):
        prepare_run(run, resume=False)


def test_predict_errors_are_one_line(tiny, tmp_path, capsys):
    root = tiny.dataset.root
    out = tmp_path / "sub.zip"
    assert main(["predict", str(root), str(tmp_path / "nothing"), "--boxes", str(tmp_path / "d.json"),
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tpslab predict: error:") and "\n" not in err
    out.write_bytes(b"someone's")
    assert main(["predict", str(root), str(tmp_path), "--boxes", "x", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"someone's"


# ----------------------------------------------------------------------------- resume, two processes (fast)


class Killed(Exception):
    pass


def test_a_run_stopped_after_an_epoch_resumes_to_the_same_weights(small, tmp_path):
    rows, paths, vocab = small
    train, val = rows[rows["video"] != rows["video"].iloc[0]], rows[rows["video"] == rows["video"].iloc[0]]
    options = dict(epochs=3, max_crops=150, batch_size=64, threads=1, progress=False)

    def stop_after_epoch_1(line):  # called once the epoch's checkpoint is on disk: as if killed right then
        if line.startswith("epoch 1/"):
            raise Killed

    m = PartStateRecognizer(**options)
    with pytest.raises(Killed):
        m.fit(m.dataset(train, paths, vocab), val=m.dataset(val, paths, vocab), run_dir=tmp_path / "r",
              log=stop_after_epoch_1)
    assert read_checkpoint(tmp_path / "r" / CHECKPOINT)["epoch"] == 1 and not (tmp_path / "r" / "model.pt").exists()
    resumed = PartStateRecognizer(**options)
    resumed.fit(resumed.dataset(train, paths, vocab), val=resumed.dataset(val, paths, vocab), run_dir=tmp_path / "r",
                resume=True)
    whole = PartStateRecognizer(**options)
    whole.fit(whole.dataset(train, paths, vocab), val=whole.dataset(val, paths, vocab), run_dir=tmp_path / "w")
    a, b = weights(tmp_path / "r"), weights(tmp_path / "w")
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    same_metrics(read_metrics(tmp_path / "r"), read_metrics(tmp_path / "w"))
    assert resumed.history_ == whole.history_ and len(whole.history_) == 3


def in_two_processes(tmp_path, target):
    """Run ``target(rank)`` in two forked processes joined by a gloo process group (as torchrun would)."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("fork")
    # A fresh rendezvous file per group: a second group on the first one's file can fail to start.
    store = Path(tempfile.mkdtemp(dir=tmp_path)) / "store"
    procs = [ctx.Process(target=_join, args=(rank, str(store), target)) for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]


def _join(rank, store, target):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        target(rank)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two forked processes joined by gloo, each importing its share of torch
@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs gloo")
def test_two_processes_train_and_predict_as_one(small, tiny, tmp_path):
    from tpslab.models.compositional import CompositionalClassifier
    from tpslab.pipeline import EndToEnd, boxes_from_dataset

    rows, paths, vocab = small
    train, val = rows[rows["video"] != rows["video"].iloc[0]], rows[rows["video"] == rows["video"].iloc[0]]
    # 193 crops per epoch in global batches of 64: the last one has a single crop, so one process gets none.
    options = dict(epochs=2, max_crops=193, batch_size=64, threads=1, progress=False)

    def fit(run):
        m = PartStateRecognizer(**options)
        return m.fit(m.dataset(train, paths, vocab), val=m.dataset(val, paths, vocab), run_dir=run)

    one = fit(tmp_path / "one")
    in_two_processes(tmp_path, lambda rank: fit(tmp_path / "two"))
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-4
    same_metrics(read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two"), tol=1e-6)
    assert read_metrics(tmp_path / "two")[0]["processes"] == 2
    assert sorted(os.listdir(tmp_path / "two")) == ["checkpoint.pt", "metrics.jsonl", "model.pt"]  # rank 0 alone
    # Prediction: each process reads every other video; every process returns the single process's numbers.
    classifier = CompositionalClassifier().fit_parts(rows, {v: tiny.labels[v] for v in tiny.train}, vocab)
    pipeline = EndToEnd(one, classifier)
    boxes, frames = boxes_from_dataset(tiny.dataset, tiny.train[:5])
    single = pipeline.predict(boxes, paths, frames=frames, progress=False)

    def predict(rank):
        pred = pipeline.predict(boxes, paths, frames=frames, progress=False)
        np.save(tmp_path / f"probs{rank}.npy", pred.probs)
        (tmp_path / f"actions{rank}.json").write_text(json.dumps(pred.actions))

    in_two_processes(tmp_path, predict)
    for rank in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"probs{rank}.npy"), single.probs)
        assert json.loads((tmp_path / f"actions{rank}.json").read_text()) == single.actions


# ----------------------------------------------------------------------------- killed and resumed


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tiny, tmp_path):
    root = tiny.dataset.root
    args = train_args(root, tmp_path / "killed", "--epochs", "3", "--val-fraction", "0")
    child = subprocess.Popen([sys.executable, "-m", "tpslab", *args], env=child_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / CHECKPOINT
    deadline = time.monotonic() + 300
    try:
        while child.poll() is None and not ckpt.exists():  # wait for the first checkpoint (epoch 1 done)
            assert time.monotonic() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    done = read_checkpoint(ckpt)["epoch"]
    assert child.returncode == -signal.SIGKILL and 1 <= done < 3, (child.returncode, done)
    assert not (tmp_path / "killed" / "model.pt").exists()
    assert main([*args, "--resume"]) == 0
    assert main(train_args(root, tmp_path / "whole", "--epochs", "3", "--val-fraction", "0")) == 0
    resumed, whole = weights(tmp_path / "killed"), weights(tmp_path / "whole")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)  # bit for bit (CPU, one thread)
    same_metrics(read_metrics(tmp_path / "killed"), read_metrics(tmp_path / "whole"))


# ----------------------------------------------------------------------------- several processes


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists() or not torch.distributed.is_gloo_available(), reason="needs torchrun, gloo")
def test_two_processes_under_torchrun_train_and_predict_as_one(tiny, tmp_path):
    root = tiny.dataset.root
    # 257 crops in global batches of 64: the last one has a single crop, so one process gets none. (The
    # validation split and a second epoch across processes are checked by the forked test above.)
    args = ("--epochs", "1", "--val-fraction", "0")
    assert main(train_args(root, tmp_path / "one", *args)) == 0
    two = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "-m", "tpslab",
                          *train_args(root, tmp_path / "two", *args)], env=child_env(), capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-4
    same_metrics(read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two"), tol=1e-6)
    assert read_metrics(tmp_path / "two")[0]["processes"] == 2
    assert sorted(os.listdir(tmp_path / "two")) == sorted(os.listdir(tmp_path / "one"))  # rank 0 alone wrote
    # Prediction: each process reads half of the videos; the submission is the single process's.
    det = detections(tiny, tmp_path / "detections.json")
    (tmp_path / "videos.txt").write_text("\n".join(tiny.test[:5]))
    predict = ["predict", str(root), str(tmp_path / "one"), "--boxes", str(det),
               "--videos", str(tmp_path / "videos.txt"), "--quiet", "--out"]
    assert main([*predict, str(tmp_path / "one.zip")]) == 0
    two = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "-m", "tpslab", *predict, str(tmp_path / "two.zip")],
                         env=child_env(), capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    from tpslab.submission import read_submission

    single, shared = read_submission(tmp_path / "one.zip"), read_submission(tmp_path / "two.zip")
    assert single == shared and set(single[0]) == set(tiny.test[:5])
    shutil.rmtree(tmp_path / "two")
