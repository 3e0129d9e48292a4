"""Training the part-state recogniser on a stream of crops: epochs, checkpoints, resume, and DDP.

:func:`fit` trains a :class:`~tpslab.models.recognizer.PartStateRecognizer` on a
:class:`~tpslab.crops.PartCrops` (crops read on demand by DataLoader workers, or crops in memory):

- AdamW with a one-cycle schedule over all steps, gradient clipping (``clip_grad``), the recogniser's
  loss (class-weighted or focal), per-row augmentation (flip with part swap, shift);
- on CUDA, mixed precision (bfloat16 where supported, else float16 with a gradient scaler) and
  channels-last memory; on the CPU neither (float32, the default layout);
- optionally a validation set: per-epoch loss, state top-1 and mean-class accuracy, and early stopping
  (``patience`` epochs without a lower validation loss end the run; the best epoch's weights are kept);
- with ``run_dir``, after every epoch a checkpoint written atomically (``checkpoint.pt``: weights,
  optimiser, schedule, metrics, best weights) and the metrics so far (``metrics.jsonl``, one JSON object
  per epoch); at the end ``model.pt`` (:meth:`PartStateRecognizer.load` reads it). ``resume=True``
  continues from the checkpoint and ends with the same weights as a run that was never interrupted.

**Several processes** (``torchrun``; :func:`init_distributed` starts the process group: gloo on the
CPU, NCCL on GPUs). Every process builds the same sample order from ``(seed, epoch)``
(:class:`~tpslab.crops.CropSampler`) and takes its contiguous share of each global batch of
``batch_size`` rows (:class:`~tpslab.crops.ShardedBatches`); DistributedDataParallel averages the
gradients, and each process scales its loss so that the average is the gradient of the global batch's
loss (the class-weighted loss divides by the global batch's total weight, computed from the shared
order). So ``W`` processes with global batch ``B`` follow the run of one process with batch ``B``, to
float rounding, provided nothing else depends on how a batch is split:

- normalisation: the default CNN uses GroupNorm, which normalises each crop on its own (BatchNorm
  statistics would be those of each process's share; ``norm="batch"`` is available for one process,
  and on CUDA it is converted to SyncBatchNorm under DDP);
- dropout: the head's dropout mask is drawn for the whole global batch from ``(seed, epoch, step)`` and
  each process takes its rows (dropout inside a custom backbone draws from each process's own
  generator, seeded from ``(seed, rank)``, and is then not split-invariant);
- augmentation: drawn per row from ``(seed, epoch, row)``;
- metrics: sums and counts all-reduced across processes; validation rows are split across processes.

Only rank 0 writes files and draws progress bars. A process whose share of a (last, short) global
batch is empty takes part in the step with no rows, so every process makes the same steps.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tpslab.crops import (CropAugment, CropSampler, PartCrops, ShardedBatches, batch_loader, mirror_ids, row_uniforms,
                          shard_bounds)
from tpslab.fileio import atomic_path, atomic_write_bytes
from tpslab.models._common import first_nonfinite, torch_device, torch_load, torch_threads

CHECKPOINT = "checkpoint.pt"
#: Videos per sampling block when crops come from video files (see :class:`~tpslab.crops.CropSampler`).
VIDEO_BLOCK = 8
MODEL = "model.pt"
METRICS = "metrics.jsonl"
#: Every file a run folder may hold that tpslab writes (train-recognizer adds the pipeline's files).
RUN_FILES = (MODEL, CHECKPOINT, METRICS, "classifier.joblib", "pipeline.json")
_CHECKPOINT_KIND = "tpslab.RecognizerCheckpoint"
_CHECKPOINT_FORMAT = 1


class RunFolderError(ValueError):
    """A run folder that tpslab refuses to write into (files it did not write, or a run without ``resume``),
    or ``resume`` where there is no checkpoint."""


class TrainingDivergedError(ValueError):
    """Training stopped because its loss or weights are no longer finite (a learning rate too high);
    the epoch it happened in writes neither a checkpoint nor a model."""


# ----------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a ``torch.distributed`` run (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_context() -> Dist:
    """The process group this process belongs to (an initialised ``torch.distributed``), else rank 0 of 1."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return Dist()


def init_distributed(device="cpu") -> Dist:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment): NCCL for a
    CUDA ``device``, gloo otherwise. Without torchrun (or already joined) it only reports where this
    process stands."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        cuda = torch_device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return dist_context()


def process_device(device, d: Dist) -> torch.device:
    """``device`` for this process: a bare ``cuda`` becomes ``cuda:LOCAL_RANK`` under several processes."""
    dev = torch_device(device)
    if dev.type == "cuda" and dev.index is None and d.world > 1:
        dev = torch.device("cuda", d.local_rank)
    return dev


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _all_sum(values: list[float], d: Dist, device) -> list[float]:
    if d.world == 1:
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.cpu().tolist()


def _all_sum_array(a: np.ndarray, d: Dist, device) -> np.ndarray:
    if d.world == 1:
        return a
    import torch.distributed as dist

    t = torch.as_tensor(a, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.cpu().numpy()


# ----------------------------------------------------------------------------- the run folder


def _leftover(name: str) -> bool:
    """A temporary file ``atomic_path`` leaves when a write is killed (``.<file>.<random>.tmp``)."""
    return name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in RUN_FILES)


def missing_dirs(folder) -> list[Path]:
    """The folders of ``folder``'s path that do not exist yet, deepest first."""
    out, path = [], Path(folder).absolute()
    while not path.exists():
        out.append(path)
        path = path.parent
    return out


def remove_empty(dirs: list[Path]) -> None:
    """Remove the folders of ``dirs`` (deepest first) that are still empty: what a failed run made."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


def prepare_run(folder, resume: bool) -> Path:
    """Check that ``folder`` may hold a run, make it if missing and return it.

    A new run needs an empty (or missing) folder; one that holds a run raises unless ``resume``, and
    one that holds files tpslab did not write raises unless ``resume`` (they are then left alone);
    ``resume`` needs a checkpoint in ``folder``. Temporary files of writes that were killed are removed.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{folder} is a file, not a run folder")
    if resume and not (folder / CHECKPOINT).is_file():
        raise RunFolderError(f"no checkpoint to resume in {folder} (no {CHECKPOINT}); train without --resume "
                             "to start a run")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunFolderError(f"cannot make the run folder {folder}: {e.strerror or e}") from None
    names = sorted(os.listdir(folder))
    ours = [n for n in names if n in RUN_FILES]
    foreign = [n for n in names if n not in RUN_FILES and not _leftover(n)]
    if not resume:
        if foreign:
            few = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise RunFolderError(f"{folder} holds files tpslab did not write ({few}); choose a new or empty "
                                 "folder (or --resume to continue a run there, leaving them alone)")
        if ours:
            raise RunFolderError(f"{folder} already holds a run ({', '.join(ours)}); pass --resume to continue it, "
                                 "or choose a new folder")
    for n in names:
        if _leftover(n):
            (folder / n).unlink(missing_ok=True)
    return folder


def read_checkpoint(path) -> dict:
    """A checkpoint written by :func:`fit` (weights-only loading: no code runs)."""
    data = torch_load(path)
    if not isinstance(data, dict) or data.get("kind") != _CHECKPOINT_KIND:
        raise ValueError(f"{path}: not a tpslab recogniser checkpoint")
    if data.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {data.get('format')}, this tpslab reads {_CHECKPOINT_FORMAT}")
    return data


def read_metrics(run_dir) -> list[dict]:
    """The per-epoch metrics of a run (``metrics.jsonl``)."""
    path = Path(run_dir) / METRICS
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fingerprint(ds: PartCrops) -> str:
    h = hashlib.sha1()
    for a in (ds.video, ds.frame_id, ds.parts, ds.states):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(str((len(ds), ds.size, ds.context, ds.min_side)).encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- training


def _state_weights(model, counts: np.ndarray, states: np.ndarray) -> np.ndarray | None:
    if not model.loss.startswith("weighted"):
        return None
    # Inverse square-root frequency, mean 1 over the training rows: `none` no longer dominates.
    w = np.where(counts > 0, 1 / np.sqrt(np.maximum(counts, 1)), 0.0)
    return w / w[states].mean()


def _row_losses(model, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-row loss before weighting (cross-entropy, or focal for the focal losses)."""
    logp = torch.log_softmax(logits.float(), -1).gather(1, y[:, None])[:, 0]
    if model.loss.endswith("focal"):
        return -((1 - logp.exp()) ** model.gamma) * logp
    return -logp


def _normaliser(model, weight: np.ndarray | None, states: np.ndarray) -> float:
    """What the loss of a (global) batch with ``states`` divides by: the total class weight for the
    weighted cross-entropy (as ``cross_entropy(weight=...)`` does), else the number of rows."""
    if weight is not None and model.loss == "weighted":
        return float(weight[states].sum())
    return float(len(states))


def _dropout_mask(seed: int, epoch: int, step: int, rows: int, width: int, p: float) -> torch.Tensor:
    """The head's dropout mask (scaled) for the rows of one global batch, from ``(seed, epoch, step)``."""
    g = torch.Generator().manual_seed(int(row_uniforms(seed, epoch, [step], 1)[0, 0] * 2 ** 53))
    keep = torch.rand(rows, width, generator=g) >= p
    return keep.float() / (1 - p) if p < 1 else torch.zeros(rows, width)


def _autocast(dev: torch.device, amp: bool):
    if dev.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype), dtype
    return nullcontext(), None


def _forward(net, batch: dict, dev: torch.device, channels_last: bool, mask=None):
    x = batch["images"].to(dev, non_blocking=True)
    g = batch.get("geometry")
    return net(x, batch["parts"].to(dev), g.to(dev) if g is not None else None, dropout_mask=mask,
               channels_last=channels_last)


@torch.no_grad()
def evaluate(net, ds: PartCrops, *, weight: np.ndarray | None, model, batch_size: int, workers: int, d: Dist,
             dev: torch.device, channels_last: bool = False, amp: bool = False, progress: bool = False) -> dict:
    """Loss (the training loss), state top-1 and mean-class accuracy of ``net`` on the labelled rows of
    ``ds``, split across processes and summed over them."""
    from tqdm.auto import tqdm

    rows = ds.labelled
    lo, hi = shard_bounds(len(rows), d.world)[d.rank]
    mine = rows[lo:hi]
    batches = [mine[i:i + batch_size].tolist() for i in range(0, len(mine), batch_size)]
    n_states = len(ds.vocab.states)
    correct = np.zeros(n_states)
    total = np.zeros(n_states)
    loss_sum = 0.0
    w_t = None if weight is None else torch.as_tensor(weight, dtype=torch.float32, device=dev)
    net.eval()
    cast, _ = _autocast(dev, amp)
    bar = tqdm(total=len(batches), desc="validation", unit="batch", leave=False, disable=not (progress and d.main))
    for batch in (batch_loader(ds, batches, workers) if batches else []):
        y = batch["states"].to(dev)
        with cast:
            logits = _forward(net, batch, dev, channels_last)
        per_row = _row_losses(model, logits, y)
        if w_t is not None:
            per_row = per_row * w_t[y]
        loss_sum += float(per_row.sum())
        pred = logits.argmax(1).cpu().numpy()
        yy = y.cpu().numpy()
        np.add.at(total, yy, 1)
        np.add.at(correct, yy, pred == yy)
        bar.update(1)
    bar.close()
    denom_local = np.array([_normaliser(model, weight, ds.states[mine])])
    summed = _all_sum_array(np.concatenate([correct, total, [loss_sum], denom_local]), d, dev)
    correct, total = summed[:n_states], summed[n_states:2 * n_states]
    loss_sum, denom = summed[-2], summed[-1]
    seen = total > 0
    return {"val_loss": float(loss_sum / max(denom, 1e-12)), "val_top1": float(correct.sum() / max(total.sum(), 1)),
            "val_mean_class_acc": float((correct[seen] / total[seen]).mean()) if seen.any() else float("nan"),
            "val_crops": int(total.sum())}


def settings_of(model, train: PartCrops, val: PartCrops | None, options: dict) -> dict:
    """What defines a run (a resumed run must match it): the model's settings, the options and the data."""
    from dataclasses import asdict

    config = model._config()  # what this fit trains (a fitted model's own network is not reused)
    return {"config": asdict(config), "loss": model.loss, "gamma": model.gamma, "epochs": model.epochs,
            "batch_size": model.batch_size, "lr": model.lr, "weight_decay": model.weight_decay,
            "max_crops": model.max_crops, "flip": model.flip, "shift": model.shift, "seed": model.seed,
            "clip_grad": model.clip_grad, "backbone": config.backbone, **options,
            "train": _fingerprint(train), "val": None if val is None else _fingerprint(val)}


def _differences(saved: dict, now: dict) -> list[str]:
    return [f"{k}: {saved.get(k)!r} then, {now.get(k)!r} now" for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)]


def fit(model, train: PartCrops, val: PartCrops | None = None, *, workers: int = 0, balance: str | None = None,
        cap_per_state: int | None = None, group_frames: bool = True, video_block="auto", patience: int | None = None,
        run_dir=None, resume: bool = False, eval_batch_size: int = 512, log=None):
    """Train ``model`` (a :class:`~tpslab.models.recognizer.PartStateRecognizer`) on ``train``; see the module
    docstring. Returns the model, fitted (``net_``, ``history_`` (training loss per epoch), ``metrics_``).

    ``workers``: DataLoader worker processes; ``balance``/``cap_per_state``/``group_frames``/``video_block``:
    :class:`~tpslab.crops.CropSampler` options (``max_crops`` of the model is its ``num_samples``;
    ``video_block="auto"``: blocks of :data:`VIDEO_BLOCK` videos when the crops come from video files,
    none for rawframes or crops in memory);
    ``patience``: early stopping on ``val``; ``run_dir``/``resume``: checkpoints (see :func:`prepare_run`);
    ``log``: called with one line of text per epoch on rank 0 (e.g. ``print``). A run folder this call
    made is removed again if the run fails before writing anything into it.
    """
    if not (math.isfinite(model.lr) and model.lr >= 0):  # torch refuses nan and < 0, not inf (weights of nan)
        raise ValueError(f"lr must be a finite number >= 0, got {model.lr}")
    created = missing_dirs(run_dir) if run_dir is not None and dist_context().main else []
    try:
        if video_block == "auto":
            video_block = VIDEO_BLOCK if train.reads_video_files else None
        return _fit(model, train, val, workers=workers, balance=balance, cap_per_state=cap_per_state,
                    group_frames=group_frames, video_block=video_block, patience=patience, run_dir=run_dir,
                    resume=resume, eval_batch_size=eval_batch_size, log=log)
    except BaseException:
        remove_empty(created)
        raise


def _fit(model, train: PartCrops, val: PartCrops | None, *, workers: int, balance: str | None,
         cap_per_state: int | None, group_frames: bool, video_block: int | None, patience: int | None, run_dir,
         resume: bool, eval_batch_size: int, log):
    from tqdm.auto import tqdm

    d = dist_context()
    dev = process_device(model.device, d)
    vocab = train.vocab
    if val is not None and (val.vocab.parts != vocab.parts or val.vocab.states != vocab.states):
        raise ValueError("the validation crops use another part or state vocabulary than the training crops")
    if patience is not None and val is None:
        raise ValueError("early stopping (patience) needs a validation set")
    sampler = CropSampler(train, labelled=True, num_samples=model.max_crops, cap_per_state=cap_per_state,
                          balance=balance, group_frames=group_frames, video_block=video_block, seed=model.seed)
    batches = ShardedBatches(sampler, model.batch_size, rank=d.rank, world_size=d.world)
    steps_per_epoch = len(batches)
    rows = train.labelled
    states, parts = train.states[rows], train.parts[rows]
    n_parts, n_states = len(vocab.parts), len(vocab.states)
    counts = np.bincount(states, minlength=n_states).astype(np.float64)
    allowed = np.zeros((n_parts, n_states), bool)
    allowed[parts, states] = True
    mirror = mirror_ids(vocab)
    if model.flip:  # a flipped left_arm crop is shown as a right_arm
        allowed |= allowed[mirror]
    weight = _state_weights(model, counts, states)
    options = {"balance": balance, "cap_per_state": cap_per_state, "group_frames": group_frames,
               "video_block": video_block, "patience": patience}
    settings = settings_of(model, train, val, options)
    run = None
    ckpt = None
    if run_dir is not None:
        run = Path(run_dir)
        if d.main:
            prepare_run(run, resume)
        barrier(d)
        if resume and (run / CHECKPOINT).exists():
            ckpt = read_checkpoint(run / CHECKPOINT)
            diff = _differences(ckpt["settings"], settings)
            if diff:
                raise RunFolderError(f"{run / CHECKPOINT} was made with other settings or data; cannot resume: "
                                     + "; ".join(diff[:4]))
    train_aug = train.augmented(CropAugment(mirror, flip=model.flip, shift=model.shift), seed=model.seed)
    w_t = None if weight is None else torch.as_tensor(weight, dtype=torch.float32, device=dev)
    channels_last = dev.type == "cuda"
    amp = dev.type == "cuda" and model.amp
    history = list(ckpt["history"]) if ckpt else []
    main_rng = torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else [])
    with main_rng, torch_threads(model.threads):
        net = model._build_net(vocab, allowed, train if ckpt is None else None)
        torch.manual_seed(model.seed * 1000 + d.rank)  # anything else random in this process: seeded per rank
        net.to(dev)
        if channels_last:
            net.to(memory_format=torch.channels_last)
        norms = {n: type(m) for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        if d.world > 1 and dev.type == "cuda" and norms:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        opt = torch.optim.AdamW(net.parameters(), lr=model.lr, weight_decay=model.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, model.lr, total_steps=model.epochs * steps_per_epoch)
        _, amp_dtype = _autocast(dev, amp)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        best = None
        start = 0
        stopped = False
        if ckpt is not None:
            net.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
            best = ckpt["best"]
            start, stopped = int(ckpt["epoch"]), bool(ckpt["stopped"])
        ddp = net
        if d.world > 1:
            ddp = nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
        width = net.head[0].out_features
        p_drop = float(net.config.dropout)
        if ckpt is not None and d.main:  # the metrics of the checkpoint (the file may lag it by one epoch)
            write_metrics(run, history)
            if log:
                log(f"resuming after epoch {start} of {model.epochs} from {run / CHECKPOINT}")
        epoch = start
        while epoch < model.epochs and not stopped:
            t0 = time.perf_counter()
            batches.set_epoch(epoch)
            train_aug.set_epoch(epoch)
            global_batches = batches.global_batches()
            denominators = [_normaliser(model, weight, train.states[g]) for g in global_batches]
            ddp.train()
            loss_acc = correct = seen = 0.0
            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{model.epochs}", unit="batch", leave=False,
                       disable=not (model.progress and d.main))
            cast, _ = _autocast(dev, amp)
            for step, batch in enumerate(batch_loader(train_aug, batches, workers)):
                g = global_batches[step]
                lo, hi = shard_bounds(len(g), d.world)[d.rank]
                mask = _dropout_mask(model.seed, epoch, step, len(g), width, p_drop)[lo:hi].to(dev) if p_drop else None
                y = batch["states"].to(dev)
                with cast:
                    logits = _forward(ddp, batch, dev, channels_last, mask)
                per_row = _row_losses(model, logits, y)
                if w_t is not None:
                    per_row = per_row * w_t[y]
                loss = per_row.sum() / denominators[step]
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss * d.world).backward()  # DDP averages over processes: this sums them
                if model.clip_grad:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(net.parameters(), model.clip_grad)
                _optimizer_step(scaler, opt, epoch, step, steps_per_epoch, model.lr)
                scaler.update()
                sched.step()
                loss_value = float(loss.detach())
                if not scaler.is_enabled():  # float16's scaler skips overflowing steps: not a divergence
                    _check_loss(_all_sum([loss_value], d, dev)[0], epoch, step, steps_per_epoch, model.lr)
                loss_acc += loss_value * len(g)
                correct += float((logits.detach().argmax(1) == y).sum())
                seen += len(y)
                bar.update(1)
            bar.close()
            _check_weights(net, epoch, model.lr)
            loss_acc, correct, seen = _all_sum([loss_acc, correct, seen], d, dev)
            seconds = time.perf_counter() - t0
            seconds = max(_all_sum([seconds], d, dev)[0] / d.world, 1e-9)
            record = {"epoch": epoch + 1, "train_loss": loss_acc / max(seen, 1), "train_top1": correct / max(seen, 1),
                      "lr": float(sched.get_last_lr()[0]), "crops": int(seen), "seconds": round(seconds, 3),
                      "crops_per_s": round(seen / seconds, 1), "processes": d.world}
            if val is not None:
                record.update(evaluate(net, val, weight=weight, model=model, batch_size=eval_batch_size,
                                       workers=workers, d=d, dev=dev, channels_last=channels_last, amp=amp,
                                       progress=model.progress))
                if best is None or record["val_loss"] < best["val_loss"]:
                    best = {"epoch": epoch + 1, "val_loss": record["val_loss"],
                            "state": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
                elif patience is not None and epoch + 1 - best["epoch"] >= patience:
                    stopped = True
                record["best_epoch"] = best["epoch"]
            history.append(record)
            epoch += 1
            if run is not None and d.main:
                data = {"kind": _CHECKPOINT_KIND, "format": _CHECKPOINT_FORMAT, "epoch": epoch, "stopped": stopped,
                        "settings": settings, "history": history,
                        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                        "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "scaler": scaler.state_dict() if scaler.is_enabled() else {}, "best": best}
                with atomic_path(run / CHECKPOINT) as tmp:
                    torch.save(data, tmp)
                write_metrics(run, history)
            if log and d.main:
                log(describe_epoch(record, model.epochs) + (" (early stop)" if stopped else ""))
        if patience is not None and best is not None:
            net.load_state_dict(best["state"])
    if any(isinstance(m, nn.SyncBatchNorm) for m in net.modules()):
        net = _revert_sync_batchnorm(net, norms)
    net = net.to(memory_format=torch.contiguous_format).eval()
    model.net_, model.vocab_ = net, vocab
    model.history_ = [r["train_loss"] for r in history]
    model.metrics_ = history
    if run is not None:
        if d.main:
            model.save(run / MODEL)
        barrier(d)
    return model


def _optimizer_step(scaler, opt, epoch: int, step: int, steps: int, lr: float) -> None:
    """``scaler.step(opt)``; a step size beyond float32 (a huge but finite lr: torch refuses to convert it)
    stops the run as a divergence would, in one line, instead of a traceback from inside the optimizer."""
    try:
        scaler.step(opt)
    except RuntimeError as e:
        if "without overflow" not in str(e):
            raise
        raise TrainingDivergedError(f"training diverged at epoch {epoch + 1}, step {step + 1} of {steps}: the "
                                    f"optimizer's step does not fit in float32 ({e}); try a lower learning rate "
                                    f"than lr={lr}") from None


def _check_loss(loss: float, epoch: int, step: int, steps: int, lr: float) -> None:
    """Stop a run whose loss (summed over the processes, so all stop together) is not finite."""
    if not math.isfinite(loss):
        raise TrainingDivergedError(f"training diverged at epoch {epoch + 1}, step {step + 1} of {steps}: the loss "
                                    f"is {loss} (not finite); try a lower learning rate than lr={lr}")


def _check_weights(net: nn.Module, epoch: int, lr: float) -> None:
    """Stop a run whose weights stopped being finite (a step can overflow them while its loss was finite);
    every process holds the same weights, so all stop together."""
    name = first_nonfinite(net.state_dict())
    if name is not None:
        raise TrainingDivergedError(f"training diverged at epoch {epoch + 1}: weights {name} are not finite; "
                                    f"try a lower learning rate than lr={lr}")


def write_metrics(run, history: list[dict]) -> Path:
    """``metrics.jsonl`` of ``run``: one JSON object per epoch, written whole (atomically). A figure that
    could not be measured (nan: e.g. a mean-class accuracy without labelled validation crops) is written
    as null: JSON has no NaN, and strict readers (jq, JavaScript, orjson) refuse the word."""
    def strict(value):
        return None if isinstance(value, float) and not math.isfinite(value) else value

    text = "".join(json.dumps({k: strict(v) for k, v in r.items()}, sort_keys=True, allow_nan=False) + "\n"
                   for r in history)
    return atomic_write_bytes(Path(run) / METRICS, text.encode())


def describe_epoch(r: dict, epochs: int) -> str:
    """One line of an epoch's metrics."""
    line = (f"epoch {r['epoch']}/{epochs}: loss {r['train_loss']:.4f}, top-1 {r['train_top1']:.3f}, "
            f"{r['crops_per_s']:.0f} crops/s")
    if "val_loss" in r:
        line += (f"; validation loss {r['val_loss']:.4f}, top-1 {r['val_top1']:.3f}, "
                 f"mean-class {r['val_mean_class_acc']:.3f}")
    return line


def _revert_sync_batchnorm(module: nn.Module, norms: dict, name: str = "") -> nn.Module:
    """SyncBatchNorm layers back to the BatchNorm class each was (``norms``: name -> class), same state,
    so a saved model loads in one process."""
    out = module
    if isinstance(module, nn.SyncBatchNorm):
        out = norms.get(name, nn.BatchNorm2d)(module.num_features, module.eps, module.momentum, module.affine,
                                              module.track_running_stats)
        out.load_state_dict(module.state_dict())
    for child_name, child in module.named_children():
        out.add_module(child_name, _revert_sync_batchnorm(child, norms, f"{name}.{child_name}" if name else child_name))
    return out


