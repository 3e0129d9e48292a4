"""The official score at test-set size: tpslab against the plain reference implementation, in one run.

Case: 932 videos x 30 scored frames, ~3 people per frame with ~5 parts each, and a noisy prediction
(``tests/tps_cases.realistic_case``), serialised and parsed back so both scorers get JSON-loaded dicts.
Measured in one run, wall-clock, best of ``--repeat`` for each side:

- reference: ``tests/reference_scorer.py`` (one box at a time, as the public script) at IoU 0.5/0.3;
- tpslab: ``tpslab.metrics.tps_score`` on the same input (both areas must be identical);
- grid: ``tpslab.metrics.tps_grid``, the 5x5 grid of human x part IoU thresholds the public script prints
  (the submission is flattened once); without ``--quick`` the reference's grid (25 reference scores) too;
- from files: the reference after ``json.load`` of the four files (what the public script does) against
  ``tps_score`` given the four paths (orjson, garbage collector paused while parsing).

Last line: ``speedup=X score_s=Y grid_s=Z`` (X: reference score time / tpslab score time).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import orjson

from tpslab.metrics import GRID_IOUS, tps_grid, tps_score

TESTS = Path(__file__).resolve().parent.parent / "tests"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_of(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), times, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the reference grid (a run under 60 s)")
    ap.add_argument("--videos", type=int, default=932, help="videos in the case (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per side (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    ref = _load("reference_scorer")
    cases = _load("tps_cases")
    t = time.perf_counter()
    case = cases.realistic_case(n_videos=args.videos, seed=args.seed)
    blobs = [orjson.dumps(x) for x in case]
    del case
    gc.disable()  # parsing with the collector paused, as tpslab's own loader does
    gt_vid, gt_part, pred_vid, pred_part = (orjson.loads(b) for b in blobs)
    gc.enable()
    gc.collect()  # settle the freshly loaded objects so that neither side pays for them
    n_parts = sum(len(h["parts"]) for v in gt_part.values() for f in v.values() for h in f["humans"])
    n_humans = sum(len(f["humans"]) for v in gt_part.values() for f in v.values())
    print(f"case: {len(gt_vid)} videos, {sum(len(v) for v in gt_part.values())} scored frames, {n_humans} GT humans, "
          f"{n_parts} GT parts; {sum(map(len, blobs)) / 2**20:.0f} MB of JSON (made in "
          f"{time.perf_counter() - t:.1f} s)", flush=True)

    ref_s, ref_all, expected = best_of(lambda: ref.score(gt_vid, gt_part, pred_vid, pred_part), args.repeat)
    print(f"reference score: {ref_s:.3f} s (runs: {', '.join(f'{x:.3f}' for x in ref_all)})", flush=True)
    score_s, score_all, result = best_of(lambda: tps_score(gt_vid, gt_part, pred_vid, pred_part), args.repeat)
    print(f"tpslab score:    {score_s:.3f} s (runs: {', '.join(f'{x:.3f}' for x in score_all)}); "
          f"area {result.area:.6f}", flush=True)
    if result.area_raw != expected["area"]:
        print(f"MISMATCH: tpslab area_raw {result.area_raw!r} != reference {expected['area']!r}", file=sys.stderr)
        return 1
    grid_s, grid_all, grid = best_of(lambda: tps_grid(gt_vid, gt_part, pred_vid, pred_part), args.repeat)
    print(f"tpslab grid (5x5 IoU thresholds): {grid_s:.3f} s (runs: {', '.join(f'{x:.3f}' for x in grid_all)})",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{name}.json" for name in ("gt_vid", "gt_part", "pred_vid", "pred_part")]
        for path, blob in zip(paths, blobs):
            path.write_bytes(blob)
        t = time.perf_counter()
        loaded = []
        for path in paths:
            with open(path, encoding="utf-8") as f:
                loaded.append(json.load(f))
        ref.score(*loaded)
        ref_files_s = time.perf_counter() - t
        del loaded
        gc.collect()
        t = time.perf_counter()
        tps_score(*paths)
        files_s = time.perf_counter() - t
    gc.collect()
    print(f"from files: reference (json.load + score) {ref_files_s:.2f} s, tpslab (paths) {files_s:.2f} s, "
          f"{ref_files_s / files_s:.1f}x", flush=True)
    if not args.quick:
        t = time.perf_counter()
        ref_grid = [ref.score(gt_vid, gt_part, pred_vid, pred_part, human_iou=hi, part_iou=pi)["area"]
                    for hi in GRID_IOUS for pi in GRID_IOUS]
        ref_grid_s = time.perf_counter() - t
        if ref_grid != grid["area_raw"].tolist():
            print("MISMATCH in the grid", file=sys.stderr)
            return 1
        print(f"reference grid: {ref_grid_s:.1f} s; grid speedup {ref_grid_s / grid_s:.1f}x", flush=True)
        # The public script computes one score and then the grid: 26 scores in all.
        print(f"whole public-script workload (score + grid): reference {ref_s + ref_grid_s:.1f} s, "
              f"tpslab {score_s + grid_s:.2f} s, {(ref_s + ref_grid_s) / (score_s + grid_s):.1f}x", flush=True)
    print(f"speedup={ref_s / score_s:.2f} score_s={score_s:.3f} grid_s={grid_s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
