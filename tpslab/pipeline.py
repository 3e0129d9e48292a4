"""End to end: video -> boxes -> part states -> action -> the two prediction files -> the official score.

- Boxes come from the ground truth (:func:`boxes_from_dataset`) or from an external detections file
  in the challenge's prediction format (:func:`boxes_from_predictions`; its verbs are ignored).
- :class:`EndToEnd` crops every part box, reads its state with a
  :class:`~tpslab.models.recognizer.PartStateRecognizer` (optionally smoothed along each person's
  track), and classifies each video's action with a
  :class:`~tpslab.models.compositional.CompositionalClassifier` on the (hard or soft) counts of those states.
- :func:`majority_predictions` is the challenge's majority baseline on the same boxes and actions.
- :class:`Predictions` turns either into ``pred_vid_result``/``pred_part_result`` (through
  :mod:`tpslab.submission`); :func:`score_predictions` scores them against a dataset's ground truth.
- :func:`part_ablation` retrains the compositional classifier with each part (or left/right pair)
  removed, or with only that part kept, and tabulates the accuracy.

Box tables have the columns of the dataset's ``parts`` table that a detector provides: ``video, frame,
human, human_x1..human_y2, part, part_x1..part_y2`` (``part`` NA for a human without parts).
torch is imported only when the recogniser runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from tpslab.challenge import MAX_HUMANS, SCORED_STRIDE, box_problem, file_label, frame_key, is_scored
from tpslab.models import labels_for
from tpslab.models._common import is_fitted
from tpslab.models.compositional import CompositionalClassifier, FeatureConfig, video_features
from tpslab.vocab import Vocab, part_groups

PIPELINE_FILE = "pipeline.json"
CLASSIFIER_FILE = "classifier.joblib"
BOX_COLUMNS = ["video", "frame", "human", "human_x1", "human_y1", "human_x2", "human_y2",
               "part", "part_x1", "part_y1", "part_x2", "part_y2"]


# ----------------------------------------------------------------------------- boxes


def boxes_from_dataset(dataset, videos: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ground-truth boxes of ``videos`` (default: all annotated videos): ``(boxes, frames)``.

    ``boxes`` holds the parts table's rows (same order, with its ``state`` column, handy to evaluate)
    plus one row with ``part`` NA per human annotated without parts; ``frames`` lists every annotated
    ``video, frame`` (frames without humans included: the score needs them in the prediction).
    """
    keep = None if videos is None else set(map(str, videos))

    def sel(table):
        return table if keep is None else table[table["video"].astype(str).isin(keep)]

    parts = sel(dataset.parts)
    humans = sel(dataset.humans)
    partless = humans[humans["num_parts"].to_numpy() == 0]
    boxes = parts.reset_index(drop=True)
    if len(partless):
        extra = pd.DataFrame({"video": partless["video"].astype(str).to_numpy(), "frame": partless["frame"].to_numpy(),
                              "human": partless["human"].to_numpy(),
                              **{f"human_{c}": partless[c].to_numpy() for c in ("x1", "y1", "x2", "y2")}})
        boxes = pd.concat([boxes.astype({"video": str, "part": object, "state": object}), extra], ignore_index=True)
    frames = sel(dataset.frames)[["video", "frame"]].astype({"video": str}).reset_index(drop=True)
    return boxes, frames


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _finite_box(value, where: str) -> list[float]:
    """``value`` as four floats; a ValueError naming ``where`` for a box the scorer would refuse, or one the
    recogniser cannot hold (its box features are float32)."""
    problem = box_problem(value)
    if problem:
        raise ValueError(f"{where}: {problem}")
    box = [float(v) for v in value]
    if max(map(abs, box)) > _FLOAT32_MAX:
        raise ValueError(f"{where}: {box}: beyond float32, which the recogniser reads boxes as")
    return box


def boxes_from_predictions(source, videos: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Boxes from a detections file in the prediction format: ``(boxes, frames)``.

    ``source``: a ``pred_part_result`` dict, a path to such a JSON file, or a submission folder or zip
    (read by :func:`tpslab.submission.read_submission`). Parts may be keyed by name or listed; a part
    with several proposals contributes its first box. Verbs are ignored. ``frames`` lists every frame
    of the file, with or without humans; the videos the file lists without any frame are in
    ``frames.attrs["videos_without_frames"]``. Raises ValueError naming the video, frame and field of a bad box.
    """
    from tpslab.challenge import load_json
    from tpslab.submission import frame_number, read_submission

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file() and path.suffix.lower() == ".json":
            source = load_json(path, "the detections")
        else:
            source = read_submission(path)[1]
    if not isinstance(source, Mapping):
        raise TypeError(f"expected a pred_part_result mapping or a path, got {type(source).__name__}")
    label = file_label(source, "detections")
    wanted = None if videos is None else set(map(str, videos))
    rows, frames, frameless = [], [], []
    for video, video_frames in source.items():
        if wanted is not None and str(video) not in wanted:
            continue
        if not isinstance(video_frames, Mapping):
            raise ValueError(f"{label}: {video}: expected a mapping of frame files, "
                             f"got {type(video_frames).__name__}")
        if not video_frames:
            frameless.append(str(video))
        for key, frame_dict in video_frames.items():
            try:
                frame = frame_number(key)
            except ValueError as e:
                raise ValueError(f"{label}: {video}/{key}: {e}") from None
            if frame < 1:
                raise ValueError(f"{label}: {video}/{key}: frames are numbered from 1 ({frame_key(1)})")
            frames.append((str(video), frame))
            humans = frame_dict.get("humans") if isinstance(frame_dict, Mapping) else None
            if not isinstance(humans, list):
                raise ValueError(f"{label}: {video}/{key}: expected a 'humans' list")
            if len(humans) > MAX_HUMANS:
                raise ValueError(f"{label}: {video}/{key}: {len(humans)} humans, at most {MAX_HUMANS} per frame in "
                                 "a submission")
            for h, human in enumerate(humans):
                where = f"{label}: {video}/{key}/humans[{h}]"
                hbox = _finite_box(human.get("box") if isinstance(human, Mapping) else None, f"{where}.box")
                parts = human.get("parts") or {}
                items = (parts.items() if isinstance(parts, Mapping) else
                         [(p.get("name") if isinstance(p, Mapping) else None, p) for p in parts])
                n_parts = 0
                for name, part in items:
                    if not isinstance(name, str) or not isinstance(part, Mapping):
                        raise ValueError(f"{where}.parts: expected named parts with a box, got {name!r}")
                    box = part.get("box")
                    if isinstance(box, list) and box and isinstance(box[0], (list, tuple)):
                        box = box[0]  # list mode: the first proposal
                    rows.append((str(video), frame, h, *hbox, name, *_finite_box(box, f"{where}.parts.{name}.box")))
                    n_parts += 1
                if not n_parts:
                    rows.append((str(video), frame, h, *hbox, None, *[np.nan] * 4))
    boxes = pd.DataFrame(rows, columns=BOX_COLUMNS)
    frame_table = pd.DataFrame(frames, columns=["video", "frame"])
    frame_table.attrs["videos_without_frames"] = frameless  # in the file, but nothing to predict from
    return boxes, frame_table


# ----------------------------------------------------------------------------- predictions


@dataclass
class Predictions:
    """Predicted part states and actions on a box table.

    ``boxes``: the input box rows (``BOX_COLUMNS``, same order) with the predicted ``state`` (NA on
    part-less rows); ``probs``: state probabilities of the rows with a part (None for the baseline);
    ``actions``: ``{video: action}``; ``frames``: frames to write even without a predicted human.
    """

    boxes: pd.DataFrame
    actions: dict[str, str]
    frames: pd.DataFrame | None = None
    probs: np.ndarray | None = None

    def files(self, *, scored_only: bool = True, mode: str = "list") -> tuple[dict, dict]:
        """``(pred_vid, pred_part)`` via :func:`tpslab.submission.build_predictions` (one proposal per part).

        ``scored_only`` keeps only the frames the official score reads (img_00001, img_00006, ...).
        """
        from tpslab.submission import build_predictions

        boxes, frames = self.boxes, self.frames
        if scored_only:
            boxes = boxes[is_scored(boxes["frame"].to_numpy())]
            if frames is not None:
                frames = frames[is_scored(frames["frame"].to_numpy())]
        return build_predictions(boxes, self.actions, frames=frames, mode=mode)

    def write(self, out, *, scored_only: bool = True, mode: str = "list") -> tuple[Path, Path]:
        """Write ``pred_vid_result.json`` and ``pred_part_result.json`` into folder ``out``."""
        from tpslab.submission import write_prediction_files

        Path(out).mkdir(parents=True, exist_ok=True)
        return write_prediction_files(out, *self.files(scored_only=scored_only, mode=mode))


def _with_states(boxes: pd.DataFrame, has_part: np.ndarray, states: np.ndarray) -> pd.DataFrame:
    missing = [c for c in BOX_COLUMNS if c not in boxes.columns]
    if missing:
        raise ValueError(f"the box table lacks columns {missing}")
    out = boxes[BOX_COLUMNS].copy()
    col = np.full(len(out), None, dtype=object)
    col[has_part] = states
    out["state"] = col
    return out


def majority_predictions(baseline, boxes: pd.DataFrame, actions: Mapping[str, str],
                         frames: pd.DataFrame | None = None) -> Predictions:
    """The majority baseline on ``boxes``: each part gets the (action, part) majority state."""
    has_part = boxes["part"].notna().to_numpy()
    states = baseline.predict(boxes[has_part], actions)
    return Predictions(_with_states(boxes, has_part, states), dict(actions), frames)


def score_predictions(predictions: Predictions, dataset, videos: Sequence[str] | None = None, **kwargs):
    """The official score (:func:`tpslab.metrics.tps_score`) of ``predictions`` on ``videos`` of ``dataset``.

    ``videos`` default: the videos of the predictions. Keyword arguments go to ``tps_score``.
    """
    from tpslab.metrics import tps_score
    from tpslab.submission import export_ground_truth

    videos = list(predictions.actions) if videos is None else list(videos)
    gt_vid, gt_part = export_ground_truth(dataset, videos=videos)
    pred_vid, pred_part = predictions.files()
    return tps_score(gt_vid, gt_part, pred_vid, pred_part, **kwargs)


class EndToEnd:
    """Boxes -> part states (pixels) -> action (compositional classifier); see the module docstring.

    ``recognizer``: a fitted :class:`~tpslab.models.recognizer.PartStateRecognizer`; ``classifier``: a
    fitted :class:`~tpslab.models.compositional.CompositionalClassifier` whose features need states
    only (no objects). ``window``/``video_level``: :func:`~tpslab.models.recognizer.smooth_probs`
    arguments (0 and 0: no smoothing). ``counts``: how predicted states enter the classifier's bags:
    ``"hard"`` (each part box counts one for its most probable state, as a ground-truth label does)
    or ``"soft"`` (its probabilities). Hard counts are the default because a classifier trained on
    ground-truth bags then sees the same kind of input; probabilities spread some mass over other
    states on every box, so soft bags drift away from the ground-truth ones (on the mini dataset,
    action accuracy 0.85 with hard counts against 0.79 with soft ones; see ``bench_models.py``).
    """

    def __init__(self, recognizer, classifier: CompositionalClassifier, *, window: int = 0, video_level: float = 0.0,
                 counts: str = "hard"):
        if counts not in ("hard", "soft"):
            raise ValueError(f"counts must be 'hard' or 'soft', got {counts!r}")
        if not (is_fitted(recognizer) and is_fitted(classifier)):
            raise ValueError("EndToEnd needs a fitted recogniser and a fitted classifier")
        if classifier.config.objects:
            raise ValueError("the classifier uses object bags, which the recogniser does not predict; "
                             "train it with FeatureConfig(objects=False)")
        r, c = recognizer.vocab_, classifier.vocab_
        if r.parts != c.parts or r.states != c.states:
            raise ValueError("the recogniser and the classifier were trained with different part or state "
                             f"vocabularies ({len(r.parts)}/{len(r.states)} vs {len(c.parts)}/{len(c.states)} names)")
        self.recognizer, self.classifier = recognizer, classifier
        self.window, self.video_level, self.counts = window, video_level, counts

    def predict(self, boxes: pd.DataFrame, paths: Mapping[str, str] | None = None, *,
                frames: pd.DataFrame | None = None, crops: np.ndarray | None = None, batch_size: int = 1024,
                workers: int = 0, backend: str = "auto", progress: bool = True) -> Predictions:
        """Predict states and actions for every video of ``boxes`` (and of ``frames``).

        ``paths``: ``{video: file or rawframes folder}`` to crop from (see
        :func:`~tpslab.crops.video_paths`, :func:`~tpslab.crops.rawframe_paths`). Crops are read on demand
        (:class:`~tpslab.crops.PartCrops`): one video per batch (pieces of at most ``batch_size`` part
        boxes), by ``workers`` DataLoader workers, so memory holds a few videos' crops, never the whole
        set's. Under ``torch.distributed`` (``torchrun``) each process reads every W-th video and the
        probabilities are gathered, so every process returns the same predictions as one process would:
        a batch is one video's boxes whatever the number of processes. ``crops``: the crops of the rows
        with a part, already made (then ``paths`` is not needed). Videos listed in ``frames`` without any
        box get an action too (from an empty bag of states).
        """
        from tpslab.models.recognizer import smooth_probs

        has_part = boxes["part"].notna().to_numpy()
        with_part = boxes[has_part].reset_index(drop=True)
        if crops is not None:
            probs = self.recognizer.predict_proba(crops, with_part)
        elif paths is None:
            raise ValueError("give the video paths (or the crops)")
        else:
            probs = self._stream(with_part, paths, batch_size, workers, backend, progress)
        if self.window or self.video_level:
            probs = smooth_probs(with_part, probs, window=self.window, video_level=self.video_level)
        videos = list(pd.unique(boxes["video"].astype(str)))
        if frames is not None:
            seen = set(videos)
            videos += [v for v in pd.unique(frames["video"].astype(str)) if v not in seen]
        counts = probs
        if self.counts == "hard":
            counts = np.zeros_like(probs)
            counts[np.arange(len(probs)), probs.argmax(1)] = 1
        actions = self.classifier.predict_parts(with_part, probs=counts, videos=videos)
        states = self.recognizer.states_of(probs)
        return Predictions(_with_states(boxes, has_part, states), actions, frames, probs)

    def _stream(self, with_part: pd.DataFrame, paths, batch_size: int, workers: int, backend: str,
                progress: bool) -> np.ndarray:
        """State probabilities of every row of ``with_part``, read video by video (this process's share
        under torch.distributed, then gathered)."""
        from tpslab.crops import VideoBatches
        from tpslab.models.training import dist_context

        d = dist_context()
        ds = self.recognizer.dataset(with_part, paths, self.recognizer.vocab_, backend=backend)
        batches = VideoBatches(ds, batch_size, rank=d.rank, world_size=d.world)
        rows, part = self.recognizer.predict_batches(ds, batches, workers=workers, progress=progress and d.main)
        if d.world > 1:
            import torch.distributed as dist

            shares = [None] * d.world
            dist.all_gather_object(shares, (rows, part))
            rows = np.concatenate([r for r, _ in shares])
            part = np.concatenate([p for _, p in shares])
        probs = np.zeros((len(with_part), len(self.recognizer.vocab_.states)), np.float32)
        if len(rows) != len(with_part) or len(np.unique(rows)) != len(with_part):
            raise RuntimeError(f"predicted {len(np.unique(rows))} of {len(with_part)} part boxes")
        probs[rows] = part
        return probs

    def save(self, folder, *, recognizer_file: str = "recognizer.pt") -> Path:
        """Write the two models and the smoothing settings into ``folder`` (the recogniser as
        ``recognizer_file``; ``pipeline.json`` records its name)."""
        from tpslab.fileio import atomic_write_bytes

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.recognizer.save(folder / recognizer_file)
        self.classifier.save(folder / CLASSIFIER_FILE)
        settings = {"window": self.window, "video_level": self.video_level, "counts": self.counts,
                    "recognizer": recognizer_file}
        atomic_write_bytes(folder / PIPELINE_FILE, json.dumps(settings).encode())
        return folder

    @classmethod
    def load(cls, folder, vocab: Vocab | None = None, device="cpu", threads: int | None = None,
             backbone=None) -> "EndToEnd":
        """Read a pipeline written by :meth:`save` (or a run folder of ``tpslab train-recognizer``);
        ``vocab``, when given, must match both models; ``backbone``: see
        :meth:`~tpslab.models.recognizer.PartStateRecognizer.load`."""
        from tpslab.models.recognizer import PartStateRecognizer

        folder = Path(folder)
        try:
            settings = json.loads((folder / PIPELINE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{folder} holds no {PIPELINE_FILE}: not a pipeline or a finished run of "
                                    "`tpslab train-recognizer`") from None
        except ValueError as e:
            raise ValueError(f"{folder / PIPELINE_FILE}: not valid JSON ({e})") from None
        lacking = [k for k in ("window", "video_level", "counts")
                   if not isinstance(settings, dict) or k not in settings]
        if lacking:
            raise ValueError(f"{folder / PIPELINE_FILE}: not a pipeline's settings (no {lacking[0]!r})")
        recognizer = PartStateRecognizer.load(folder / settings.get("recognizer", "recognizer.pt"), vocab,
                                              device=device, threads=threads, backbone=backbone)
        classifier = CompositionalClassifier.load(folder / CLASSIFIER_FILE, vocab)
        return cls(recognizer, classifier, window=settings["window"], video_level=settings["video_level"],
                   counts=settings["counts"])


# ----------------------------------------------------------------------------- runs (the commands)


def _load_in_turn(root, d, progress: bool, log=None):
    """The dataset at ``root``: rank 0 loads (and builds the index cache) first, then the others read it.
    Rank 0 says (``log``) how many annotation problems were skipped: their rows are not used."""
    from tpslab.dataset import load_dataset
    from tpslab.models.training import barrier

    ds = None
    if d.main:
        ds = load_dataset(root, strict=False, progress=progress)
        note = ds.skipped_note()
        if log and note:
            log(note)
    barrier(d)
    return ds if ds is not None else load_dataset(root, strict=False, progress=False)


def _frame_paths(ds, frames, videos):
    from tpslab.crops import rawframe_paths, video_paths

    return rawframe_paths(ds, frames, videos) if frames is not None else video_paths(ds)


def train_run(root, run, *, epochs: int = 4, batch_size: int = 128, device="cpu", workers: int = 0,
              resume: bool = False, val_fraction: float = 0.1, seed: int = 0, frames=None, lr: float = 3e-3,
              max_crops: int | None = None, balance: str | None = None, cap_per_state: int | None = None,
              patience: int | None = None, backbone=None, threads: int | None = None, progress: bool = True,
              log=print) -> dict:
    """``tpslab train-recognizer``: train the recogniser on the training videos of the release at ``root``
    (a seeded ``val_fraction`` of them held out for validation; 0: none) and write the run folder ``run``.

    The run folder holds ``model.pt`` (the recogniser, :meth:`PartStateRecognizer.load` reads it),
    ``checkpoint.pt`` and ``metrics.jsonl`` (one line per epoch), and the rest of the end-to-end
    pipeline, so ``tpslab predict`` needs nothing else: ``classifier.joblib``, a compositional classifier
    (logistic regression on ground-truth part-state bags) trained on the same training videos, and
    ``pipeline.json`` (no smoothing, hard counts). ``frames``: read crops from rawframes made by
    ``tpslab extract-frames`` (much faster than seeking in videos). Works under ``torchrun`` (see
    :mod:`tpslab.models.training`); only rank 0 writes. Returns a summary (rank 0's).
    """
    import time

    from tpslab.models.training import init_distributed, missing_dirs, remove_empty

    t0 = time.perf_counter()
    d = init_distributed(device)
    if not 0 <= val_fraction < 1:
        raise ValueError(f"the validation fraction must be in [0, 1), got {val_fraction}")
    created = missing_dirs(run) if d.main else []
    try:
        return _train_run(d, t0, root, run, epochs=epochs, batch_size=batch_size, device=device, workers=workers,
                          resume=resume, val_fraction=val_fraction, seed=seed, frames=frames, lr=lr,
                          max_crops=max_crops, balance=balance, cap_per_state=cap_per_state, patience=patience,
                          backbone=backbone, threads=threads, progress=progress, log=log)
    except BaseException:
        remove_empty(created)  # a run folder this call made, still empty: nothing left behind
        raise


def _train_run(d, t0, root, run, *, epochs, batch_size, device, workers, resume, val_fraction, seed, frames, lr,
               max_crops, balance, cap_per_state, patience, backbone, threads, progress, log) -> dict:
    import time

    from tpslab.models import video_labels
    from tpslab.models.recognizer import PartStateRecognizer
    from tpslab.models.training import prepare_run, process_device

    if d.main:
        prepare_run(run, resume)
    recognizer = PartStateRecognizer(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_crops=max_crops,
                                      device=process_device(device, d), backbone=backbone, threads=threads,
                                      progress=progress)
    ds = _load_in_turn(root, d, progress, log)
    if val_fraction > 0:
        train, val = ds.split_train_val(val_fraction, seed=seed)
    else:
        train, val = sorted(ds.videos.loc[ds.videos["split"] == "train", "video"].astype(str)), []
    if not train:
        raise ValueError(f"{ds.root} has no annotated training videos")
    parts = ds.parts[ds.parts["state"].notna().to_numpy()]
    video_col = parts["video"].astype(str)
    paths = _frame_paths(ds, frames, train + val)
    train_set = recognizer.dataset(parts[video_col.isin(set(train)).to_numpy()], paths, ds.vocab)
    val_set = recognizer.dataset(parts[video_col.isin(set(val)).to_numpy()], paths, ds.vocab) if val else None
    if d.main and log:
        log(f"training on {len(train_set)} part crops of {len(train)} videos"
            + (f", validating on {len(val_set)} of {len(val)}" if val else "") + f", {d.world} process(es), "
            f"device {recognizer.device}")
    recognizer.fit(train_set, val=val_set, workers=workers, balance=balance, cap_per_state=cap_per_state,
                   patience=patience, run_dir=run, resume=resume, log=log if d.main else None)
    summary = {"run": str(run), "epochs": len(recognizer.metrics_), "train_crops": len(train_set),
               "train_videos": len(train), "val_videos": len(val), "seconds": time.perf_counter() - t0,
               "last": recognizer.metrics_[-1] if recognizer.metrics_ else {}}
    if d.main:
        classifier = CompositionalClassifier("logreg", seed=seed).fit_parts(ds.parts, video_labels(ds, train),
                                                                            ds.vocab, videos=train)
        EndToEnd(recognizer, classifier).save(run, recognizer_file="model.pt")
    return summary


def predict_run(root, run, detections, out, *, videos: Sequence[str] | None = None, frames=None, device="cpu",
                workers: int = 0, batch_size: int = 1024, backbone=None, threads: int | None = None,
                overwrite: bool = False, progress: bool = True, log=print) -> dict:
    """``tpslab predict``: the end-to-end pipeline of run folder ``run`` on the boxes of a detections file
    (the prediction format, :func:`boxes_from_predictions`) for videos of the release at ``root``, written
    as the submission zip ``out`` (scored frames only: the others are predicted and left out, counted in
    the summary's ``frames_not_scored``; a video whose detections all miss the scored frames is refused).

    ``videos``: only those (each must be a video of the release, and in the detections); ``frames``: read
    crops from rawframes.
    Under ``torchrun`` each process reads its share of the videos and rank 0 writes the zip; the
    predictions are those of one process. ``out`` must not exist unless ``overwrite``, and then only a
    submission zip tpslab wrote is replaced (never the detections file). Returns a summary.
    """
    import time

    from tpslab.dataset import check_video_names
    from tpslab.models.training import barrier, init_distributed, process_device
    from tpslab.submission import write_submission_zip

    t0 = time.perf_counter()
    d = init_distributed(device)
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another name (or --overwrite)")
    if out.suffix.lower() != ".zip":
        raise ValueError(f"the submission is a .zip file, got {out}")
    if isinstance(detections, (str, os.PathLike)) and out.exists() and Path(detections).exists() \
            and out.samefile(detections):
        raise ValueError(f"{out} is the detections file this run reads; write the predictions to another name")
    ds = _load_in_turn(root, d, progress, log)
    pipeline = EndToEnd.load(run, vocab=ds.vocab, device=process_device(device, d), threads=threads,
                             backbone=backbone)
    pipeline.recognizer.progress = progress
    if videos is not None:
        check_video_names(ds, videos)
    boxes, frame_table = boxes_from_predictions(detections, videos)
    _check_part_names(boxes, ds.vocab.parts.names, detections)
    notes = _repeated_detections(detections) if d.main else []  # only the writing process reports
    named = list(pd.unique(pd.concat([boxes["video"], frame_table["video"]]).astype(str)))
    if videos is not None:
        absent = sorted(set(map(str, videos)) - set(named))
        if absent:
            raise ValueError(f"{len(absent)} video(s) have no detections in {detections}, e.g. {absent[:3]}")
    unknown = sorted(set(named) - set(ds.videos["video"].astype(str)))
    if unknown:
        raise ValueError(f"{len(unknown)} video(s) of {detections} are not videos of {ds.root}, e.g. {unknown[:3]}")
    frameless = frame_table.attrs.get("videos_without_frames", [])
    if frameless:  # predicting the rest would leave them out of the submission without a word
        raise ValueError(f"{len(frameless)} video(s) of {detections} hold no frames, e.g. {frameless[:3]}: give each "
                         "its scored frames (with an empty 'humans' list where nothing was detected) to have its "
                         "action predicted")
    if not named:
        raise ValueError(f"{detections} holds no frames to predict")
    scored = _scored_frames(frame_table, detections)
    paths = _frame_paths(ds, frames, named)
    if d.main and log:
        log(f"predicting {int(boxes['part'].notna().sum())} part boxes in {len(named)} videos, {d.world} process(es)")
    pred = pipeline.predict(boxes, paths, frames=frame_table, workers=workers, batch_size=batch_size,
                            progress=progress)
    if d.main:
        write_submission_zip(out, *pred.files())
    barrier(d)
    return {"out": str(out), "videos": len(pred.actions), "part_boxes": int(boxes["part"].notna().sum()),
            "part_boxes_written": int((boxes["part"].notna() & is_scored(boxes["frame"].to_numpy())).sum()),
            "frames_not_scored": int((~scored).sum()), "notes": notes, "seconds": time.perf_counter() - t0}


def _check_part_names(boxes: pd.DataFrame, names, detections) -> None:
    """A ValueError naming the first part of ``boxes`` whose name is not one of the release's ``names``."""
    odd = boxes["part"].notna() & ~boxes["part"].isin(list(names))
    if odd.any():
        row = boxes[odd].iloc[0]
        raise ValueError(f"{detections}: {row['video']}/{frame_key(int(row['frame']))}/humans[{int(row['human'])}]."
                         f"parts: {row['part']!r} is not a body part of the challenge ({', '.join(names)})")


def _repeated_detections(detections) -> list[str]:
    """A note for each key the detections file holds twice: JSON readers keep its last copy and drop the
    others without a word."""
    from tpslab.challenge import PRED_PART, read_json_bytes
    from tpslab.submission.files import file_warnings, repeated_part_keys

    if not isinstance(detections, (str, os.PathLike)):
        return []
    path = Path(detections)
    if path.is_file() and path.suffix.lower() == ".json":
        found = [(str(path), place) for place in repeated_part_keys(read_json_bytes(path, "the detections"))]
    else:
        found = [(p.path, p.field) for p in file_warnings(path) if p.field and p.path.endswith(PRED_PART)]
    return [f"{where}: {place} appears more than once: JSON readers keep the last and drop the others"
            for where, place in found]


def _scored_frames(frame_table: pd.DataFrame, detections) -> np.ndarray:
    """Which rows of ``frame_table`` are frames the challenge scores (the others are predicted, and left out
    of the submission). A video whose detections all miss them is refused: numbered from 0, say, it would
    be written without a frame."""
    scored = is_scored(frame_table["frame"].to_numpy())
    video = frame_table["video"].astype(str)
    reached = set(video[scored])
    missed = [v for v in pd.unique(video) if v not in reached]
    if missed:
        first = int(frame_table.loc[video == missed[0], "frame"].min())
        raise ValueError(f"{detections}: {len(missed)} video(s) have detections only on frames the challenge does "
                         f"not score, e.g. {missed[0]}/{frame_key(first)}: it scores {frame_key(1)}, "
                         f"{frame_key(1 + SCORED_STRIDE)}, ... (numbered from 1)")
    return scored


# ----------------------------------------------------------------------------- part ablation


def part_ablation(parts: pd.DataFrame, labels, vocab: Vocab, splits: Sequence[tuple[Sequence[str], Sequence[str]]], *,
                  groups: str = "pairs", mode: str = "drop", model="logreg", config: FeatureConfig = FeatureConfig(),
                  probs=None, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Action accuracy with each part group removed (``mode="drop"``) or alone (``mode="keep"``).

    ``splits``: ``(train_videos, val_videos)`` pairs; accuracies are averaged over them. ``groups``:
    ``"pairs"`` (left/right pairs together: arm, hand, leg, foot, and head, hip) or ``"parts"`` (each
    part). Each row retrains ``CompositionalClassifier(model, config=config)`` on the remaining parts'
    rows of ``parts`` (soft counts with ``probs``, aligned with ``parts``). Returns one row per group
    plus the reference (``all parts``) with columns ``group, parts, accuracy, change`` (accuracy minus
    the reference), sorted with the most harmful removal (or the most useful kept part) first.
    ``progress`` shows a bar over the retrainings.
    """
    from tqdm.auto import tqdm

    if groups not in ("pairs", "parts"):
        raise ValueError(f"groups must be 'pairs' or 'parts', got {groups!r}")
    if mode not in ("drop", "keep"):
        raise ValueError(f"mode must be 'drop' or 'keep', got {mode!r}")
    if not splits:
        raise ValueError("give at least one (train_videos, val_videos) split")
    if probs is not None and len(probs) != len(parts):
        raise ValueError(f"probs has {len(probs)} rows for {len(parts)} part rows")
    table = part_groups(vocab.parts.names) if groups == "pairs" else {p: [p] for p in vocab.parts.names}
    part_col = parts["part"].astype(str).to_numpy()

    def accuracy(rows: np.ndarray) -> float:
        sub = parts[rows]
        sub_probs = None if probs is None else np.asarray(probs)[rows]
        accs = []
        for train, val in splits:
            clf = CompositionalClassifier(model, config=config, seed=seed)
            clf.fit(video_features(sub, vocab, config, probs=sub_probs, videos=list(train)), labels, vocab)
            feats = clf.features(sub, probs=sub_probs, videos=list(val))
            accs.append(float(np.mean(clf.predict(feats) == labels_for(list(val), labels))))
        return float(np.mean(accs))

    bar = tqdm(total=len(table) + 1, desc=f"part ablation ({mode} {groups})", unit="fit", disable=not progress,
               leave=False)
    reference = accuracy(np.ones(len(parts), bool))
    bar.update(1)
    out = [("all parts", ", ".join(vocab.parts.names), reference)]
    for name, members in table.items():
        inside = np.isin(part_col, members)
        out.append((name, ", ".join(members), accuracy(~inside if mode == "drop" else inside)))
        bar.update(1)
    bar.close()
    result = pd.DataFrame(out, columns=["group", "parts", "accuracy"])
    result["change"] = result["accuracy"] - reference
    body = result.iloc[1:].sort_values("change", ascending=(mode == "drop"), kind="stable")
    return pd.concat([result.iloc[:1], body], ignore_index=True)
