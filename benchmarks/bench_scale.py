"""The recogniser at scale: memory, throughput and process counts of streaming training, in one run.

On mini trees with 1x, 4x and 16x the tiny preset's training videos (the tiny preset's programs,
``tpslab.synthetic.generate`` with more videos per class; generated once and cached under
``$TPSLAB_CACHE/bench-scale``, or ``--cache``):

- peak memory (RSS) of one training epoch, from loading the tables to the end of the epoch, for the
  streaming path (``PartCrops``: crops read on demand) against today's in-memory path (``crop_parts``:
  every crop in one array, then ``fit``), each path in a fresh process, trees in increasing size;
- epoch time and crops/s against data size (streaming);
- crops/s with 0 and 2 DataLoader workers: reading alone (``load``, in training's order: blocks of
  videos read forward) and training (``train``);
- the 2-process gloo run (two forked processes, global batch B) against 1 process (batch B): weights,
  time;
- resume: a run stopped after epoch 1 and resumed against an uninterrupted run (weights, bit for bit).

``--quick`` (under 2 minutes once the trees are cached; the first run generates them, about a minute
more on 2 cores) caps every epoch at ``--crops`` crops (the datasets still span every row) and measures
the in-memory path on the 1x and 16x trees only; without it epochs are whole. Mean and standard deviation
of the input are fixed (no colour statistics pass) so both paths do the same work. One torch thread.
Last line: ``rss_growth=X crops_per_s=Y ddp_match=1|0 resume_match=1|0``, where X is the streaming
path's peak RSS on the 16x tree over the 1x tree (must stay <= 1.3) and Y the best training crops/s on the
1x tree (0 or 2 workers); the line before it extrapolates one epoch over the release's 7.9M parts from Y.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RELEASE_PARTS = 7_900_000
SIZES = (1, 4, 16)
MEAN, STD = (0.45, 0.45, 0.45), (0.25, 0.25, 0.25)


# ----------------------------------------------------------------------------- trees


def tree(cache: Path, k: int) -> Path:
    """The mini tree with k times the tiny preset's training videos (generated once)."""
    from dataclasses import replace

    from tpslab import synthetic
    from tpslab.synthetic.writer import get_preset

    root = cache / f"tiny-x{k}-v{synthetic.GENERATOR_VERSION}"
    if not root.is_dir():
        tiny = get_preset("tiny")
        preset = replace(tiny, name=f"tiny-x{k}", train_videos=(tiny.train_videos[0] * k, tiny.train_videos[1] * k))
        print(f"generating the {k}x tree in {root} (once) ...", flush=True)
        synthetic.generate(root, preset=preset, seed=0, progress=False, workers=min(2, os.cpu_count() or 1))
    return root


# ----------------------------------------------------------------------------- memory


def _reset_peak() -> None:
    try:  # Linux: "5" resets the peak resident set size of this process
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # elsewhere the peak only grows: trees run in increasing size, so each reading is still its own


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def child(args) -> int:
    """One path (``--child streaming|memory``) on each tree of ``--trees``: a JSON line per tree."""
    import gc

    import torch

    torch.set_num_threads(1)
    from tpslab import load_dataset
    from tpslab.crops import video_paths
    from tpslab.models.recognizer import PartStateRecognizer

    for root in args.trees.split(","):
        gc.collect()
        _reset_peak()
        start = time.perf_counter()
        ds = load_dataset(root, progress=False)
        parts = ds.parts[ds.parts["state"].notna().to_numpy()]
        model = PartStateRecognizer(epochs=1, max_crops=args.cap, batch_size=128, mean=MEAN, std=STD, threads=1,
                                    progress=False)
        if args.child == "streaming":
            model.fit(model.dataset(parts, video_paths(ds), ds.vocab))
        else:
            model.fit(model.crops(parts, video_paths(ds), progress=False), parts, ds.vocab)
        m = model.metrics_[0]
        print(json.dumps({"root": root, "rows": len(parts), "crops": m["crops"], "epoch_s": m["seconds"],
                          "crops_per_s": m["crops_per_s"], "total_s": time.perf_counter() - start,
                          "peak_mb": _peak_mb()}), flush=True)
        del model, ds, parts
    return 0


def in_child(path: str, trees: list[Path], cap: int | None) -> list[dict]:
    cmd = [sys.executable, __file__, "--child", path, "--trees", ",".join(map(str, trees))]
    if cap:
        cmd += ["--crops", str(cap)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{path} child failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


# ----------------------------------------------------------------------------- throughput


def throughput(root: Path, cap: int | None) -> dict:
    """crops/s reading alone and training, with 0 and 2 DataLoader workers, on one tree."""
    from tpslab import load_dataset
    from tpslab.crops import CropSampler, ShardedBatches, batch_loader, video_paths
    from tpslab.models.recognizer import PartStateRecognizer
    from tpslab.models.training import VIDEO_BLOCK

    ds = load_dataset(root, progress=False)
    parts = ds.parts[ds.parts["state"].notna().to_numpy()]
    out = {}
    for workers in (0, 2):
        model = PartStateRecognizer(epochs=1, max_crops=cap, batch_size=128, mean=MEAN, std=STD, threads=1,
                                    progress=False)
        crops = model.dataset(parts, video_paths(ds), ds.vocab)
        batches = ShardedBatches(CropSampler(crops, num_samples=cap, video_block=VIDEO_BLOCK, seed=1), 128)
        start = time.perf_counter()
        n = sum(len(b["index"]) for b in batch_loader(crops, batches, workers))
        out[f"load_w{workers}"] = n / (time.perf_counter() - start)
        model.fit(crops, workers=workers)
        out[f"train_w{workers}"] = model.metrics_[0]["crops_per_s"]
    return out


# ----------------------------------------------------------------------------- processes and resume


def _small(root: Path):
    from tpslab import load_dataset
    from tpslab.crops import video_paths

    ds = load_dataset(root, progress=False)
    parts = ds.parts[ds.parts["state"].notna().to_numpy()]
    videos = sorted(parts["video"].astype(str).unique())
    val = parts["video"].astype(str).isin(videos[:2]).to_numpy()
    return parts[~val], parts[val], video_paths(ds), ds.vocab


def _join(rank: int, store: str, target) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        target(rank)
    finally:
        dist.destroy_process_group()


def ddp(root: Path, work: Path, cap: int) -> dict:
    """1 process with batch 64 against 2 gloo processes with global batch 64: weights and time."""
    import torch
    import torch.multiprocessing as mp

    from tpslab.models.recognizer import PartStateRecognizer

    train, val, paths, vocab = _small(root)
    options = dict(epochs=2, max_crops=cap + 1, batch_size=64, threads=1, progress=False)  # one process gets 0

    def fit(run):
        m = PartStateRecognizer(**options)
        return m.fit(m.dataset(train, paths, vocab), val=m.dataset(val, paths, vocab), run_dir=run)

    start = time.perf_counter()
    one = fit(work / "one").net_.state_dict()
    t_one = time.perf_counter() - start
    ctx = mp.get_context("fork")
    start = time.perf_counter()
    procs = [ctx.Process(target=_join, args=(r, str(work / "store"), lambda r: fit(work / "two"))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    t_two = time.perf_counter() - start
    if any(p.exitcode for p in procs):
        return {"match": 0, "max_diff": float("nan"), "one_s": t_one, "two_s": t_two}
    two = torch.load(work / "two" / "model.pt", weights_only=True)["state_dict"]
    diff = max(float((one[k].float() - two[k].float()).abs().max()) for k in one)
    return {"match": int(diff < 1e-4), "max_diff": diff, "one_s": t_one, "two_s": t_two}


def resume(root: Path, work: Path, cap: int) -> dict:
    """A run stopped right after epoch 1's checkpoint, resumed, against an uninterrupted run."""
    import torch

    from tpslab.models.recognizer import PartStateRecognizer

    train, val, paths, vocab = _small(root)
    options = dict(epochs=3, max_crops=cap, batch_size=64, threads=1, progress=False)

    class Stop(Exception):
        pass

    def stop(line):
        if line.startswith("epoch 1/"):
            raise Stop

    m = PartStateRecognizer(**options)
    try:
        m.fit(m.dataset(train, paths, vocab), run_dir=work / "stopped", log=stop)
    except Stop:
        pass
    resumed = PartStateRecognizer(**options)
    resumed.fit(resumed.dataset(train, paths, vocab), run_dir=work / "stopped", resume=True)
    whole = PartStateRecognizer(**options)
    whole.fit(whole.dataset(train, paths, vocab), run_dir=work / "whole")
    a, b = resumed.net_.state_dict(), whole.net_.state_dict()
    return {"match": int(all(torch.equal(a[k], b[k]) for k in a))}


# ----------------------------------------------------------------------------- report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="capped epochs; in-memory path on 1x and 16x only")
    parser.add_argument("--crops", type=int, default=None, help="crops per epoch (default: all; --quick: 1024)")
    parser.add_argument("--cache", help="where the trees are kept (default: $TPSLAB_CACHE/bench-scale)")
    parser.add_argument("--child", choices=["streaming", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--trees", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cap = args.crops if args.crops else (1024 if args.quick else None)
    if args.child:
        return child(args)
    import tempfile

    import torch

    from tpslab.home import cache_home

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cache = Path(args.cache) if args.cache else cache_home() / "bench-scale"
    trees = {k: tree(cache, k) for k in SIZES}
    print(f"trees ready in {time.perf_counter() - t0:.0f} s; epochs capped at {args.cap or 'all'} crops", flush=True)

    streaming = in_child("streaming", [trees[k] for k in SIZES], args.cap)
    memory_sizes = (1, 16) if args.quick else SIZES
    memory = in_child("memory", [trees[k] for k in memory_sizes], args.cap)
    print("\npeak RSS of one training epoch (tables loaded, crops made, one epoch), one process per path")
    print(f"{'tree':>5} {'rows':>7} {'crops':>6} | {'streaming MB':>12} {'epoch s':>8} {'crops/s':>8} | "
          f"{'in-memory MB':>12} {'total s':>8}")
    mem_of = dict(zip(memory_sizes, memory))
    for k, s in zip(SIZES, streaming):
        m = mem_of.get(k)
        mem = f"{m['peak_mb']:>12.0f} {m['total_s']:>8.1f}" if m else f"{'-':>12} {'-':>8}"
        print(f"{k:>4}x {s['rows']:>7} {s['crops']:>6} | {s['peak_mb']:>12.0f} {s['epoch_s']:>8.2f} "
              f"{s['crops_per_s']:>8.0f} | {mem}")
    rss_growth = streaming[-1]["peak_mb"] / streaming[0]["peak_mb"]
    mem_growth = memory[-1]["peak_mb"] / memory[0]["peak_mb"]
    print(f"16x over 1x: streaming {rss_growth:.2f}, in-memory {mem_growth:.2f}")

    rates = throughput(trees[1], args.cap)
    print("\ncrops/s on the 1x tree (one torch thread; video files, no rawframes)")
    print(f"{'workers':>8} {'load':>8} {'train':>8}")
    for w in (0, 2):
        print(f"{w:>8} {rates[f'load_w{w}']:>8.0f} {rates[f'train_w{w}']:>8.0f}")
    best = max(rates["train_w0"], rates["train_w2"])

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        (work / "ddp").mkdir()
        (work / "resume").mkdir()
        d = ddp(trees[1], work / "ddp", 256 if args.quick else 512)
        r = resume(trees[1], work / "resume", 256 if args.quick else 512)
    print(f"\n2 gloo processes vs 1 (global batch 64, 2 epochs): max weight difference {d['max_diff']:.2e}, "
          f"{d['two_s']:.1f} s vs {d['one_s']:.1f} s (2 processes include their start)")
    print(f"resume after epoch 1 of 3: weights {'equal' if r['match'] else 'DIFFER'} bit for bit")
    hours = RELEASE_PARTS / best / 3600
    print(f"\none epoch over the release's {RELEASE_PARTS / 1e6:.1f}M parts at {best:.0f} crops/s: {hours:.1f} h on "
          f"this CPU (tiny 192x144 videos; real videos decode slower: use rawframes) "
          f"[{time.perf_counter() - t0:.0f} s]")
    print(f"rss_growth={rss_growth:.2f} crops_per_s={best:.0f} ddp_match={d['match']} resume_match={r['match']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
