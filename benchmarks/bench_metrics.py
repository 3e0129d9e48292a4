"""The official score at test-set size: tpslab against a plain implementation, in one run.

Case: 932 videos x 30 scored frames, ~3 people per frame with ~5 parts each, and a noisy prediction
(``tests/tps_cases.realistic_case``). Measured in one run, wall-clock, best of ``--repeat`` for each side:

- reference: ``tests/reference_scorer.py`` (one box at a time, as the public script) at IoU 0.5/0.3, on
  JSON-loaded dicts;
- tpslab: ``tpslab.metrics.tps_score`` on the same dicts (both areas must be identical);
- grid: ``tpslab.metrics.tps_grid``, the 5x5 grid of human x part IoU thresholds the public script prints
  (the submission is flattened once); without ``--quick`` the reference's grid (25 reference scores) too;
- from files, each side in a fresh process: the baseline reads the four files with ``json.load`` and
  scores them at IoU 0.5/0.3, ``tpslab evaluate GT_DIR PRED_DIR`` reads, validates and scores them (both
  areas must be identical). The baseline is the public 2021 script (xiadingZ/Kinetics-TPS-evaluation's
  ``eval_detection.py``: its ``cal_task_acc`` and ``cal_area``) when ``--public-script PATH`` names a copy
  of it, else ``tests/reference_scorer.py`` run the same way; the output says which, and which reader
  tpslab used (the compiled one where it is built, else msgspec).

Last line: ``speedup=X score_s=Y grid_s=Z file_speedup=W`` (X: reference score time / tpslab score time
on dicts; W: baseline process time / ``tpslab evaluate`` process time on the files).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
FILES = {"gt": ("gt_vid_result.json", "gt_part_result.json"), "pred": ("pred_vid_result.json", "pred_part_result.json")}


def _load(name: str, path: Path | None = None):
    spec = importlib.util.spec_from_file_location(name, path or TESTS / f"{name}.py")
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


def run_baseline(script: str, gt_dir: str, pred_dir: str) -> None:
    """In a fresh process: the baseline's json.load of the four files and its score at IoU 0.5/0.3."""
    module = _load("baseline", Path(script))
    loaded = []
    for folder, names in ((gt_dir, FILES["gt"]), (pred_dir, FILES["pred"])):
        for name in names:
            with open(Path(folder) / name) as f:
                loaded.append(json.load(f))
    if hasattr(module, "cal_task_acc"):  # the public script
        area = module.cal_area(module.cal_task_acc(*loaded, max_human_iou=0.5, max_part_iou=0.3))
    else:  # tests/reference_scorer.py
        area = module.score(*loaded)["area"]
    print(repr(area))


def _timed_process(cmd: list) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{out.stderr}")
    return elapsed, out.stdout


def files_comparison(blobs: list, baseline: Path, repeat: int) -> tuple[float, float, float, float]:
    """Best process times (baseline, tpslab evaluate) on the four files, and both areas."""
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {side: Path(tmp) / side for side in FILES}
        for (side, names), pair in zip(FILES.items(), (blobs[:2], blobs[2:])):
            dirs[side].mkdir()
            for name, blob in zip(names, pair):
                (dirs[side] / name).write_bytes(blob)
        base_cmd = [sys.executable, __file__, "--baseline-run", str(baseline), str(dirs["gt"]), str(dirs["pred"])]
        # The case's classes are made-up names (class_00, ...): scored, as the validator lets through with
        # --allow-unknown-names (it still checks every name).
        ours_cmd = [sys.executable, "-m", "tpslab", "evaluate", str(dirs["gt"]), str(dirs["pred"]), "--json",
                    "--allow-unknown-names"]
        base_times, our_times = [], []
        for _ in range(repeat):  # interleaved, so that both sides see the same machine
            t, out = _timed_process(base_cmd)
            base_times.append(t)
            base_area = float(out.strip().splitlines()[-1])
            t, out = _timed_process(ours_cmd)
            our_times.append(t)
            our_area = json.loads(out)["area_raw"]
    return min(base_times), min(our_times), base_area, our_area


def dicts_comparison(blobs: list, args) -> tuple[float, float, float] | None:
    """Best times of the reference score, tpslab's score and grid on JSON-loaded dicts (None: a mismatch)."""
    import orjson

    from tpslab.metrics import GRID_IOUS, tps_grid, tps_score

    ref = _load("reference_scorer")
    gc.disable()  # parsing with the collector paused, as tpslab's own loader does
    gt_vid, gt_part, pred_vid, pred_part = (orjson.loads(b) for b in blobs)
    gc.enable()
    gc.collect()  # settle the freshly loaded objects so that neither side pays for them
    ref_s, ref_all, expected = best_of(lambda: ref.score(gt_vid, gt_part, pred_vid, pred_part), args.repeat)
    print(f"reference score: {ref_s:.3f} s (runs: {', '.join(f'{x:.3f}' for x in ref_all)})", flush=True)
    score_s, score_all, result = best_of(lambda: tps_score(gt_vid, gt_part, pred_vid, pred_part), args.repeat)
    print(f"tpslab score:    {score_s:.3f} s (runs: {', '.join(f'{x:.3f}' for x in score_all)}); "
          f"area {result.area:.6f}", flush=True)
    if result.area_raw != expected["area"]:
        print(f"MISMATCH: tpslab area_raw {result.area_raw!r} != reference {expected['area']!r}", file=sys.stderr)
        return None
    grid_s, grid_all, grid = best_of(lambda: tps_grid(gt_vid, gt_part, pred_vid, pred_part), args.repeat)
    print(f"tpslab grid (5x5 IoU thresholds): {grid_s:.3f} s (runs: {', '.join(f'{x:.3f}' for x in grid_all)})",
          flush=True)
    if not args.quick:
        t = time.perf_counter()
        ref_grid = [ref.score(gt_vid, gt_part, pred_vid, pred_part, human_iou=hi, part_iou=pi)["area"]
                    for hi in GRID_IOUS for pi in GRID_IOUS]
        ref_grid_s = time.perf_counter() - t
        if ref_grid != grid["area_raw"].tolist():
            print("MISMATCH in the grid", file=sys.stderr)
            return None
        print(f"reference grid: {ref_grid_s:.1f} s; grid speedup {ref_grid_s / grid_s:.1f}x", flush=True)
        # The public script computes one score and then the grid: 26 scores in all.
        print(f"whole public-script workload (score + grid): reference {ref_s + ref_grid_s:.1f} s, "
              f"tpslab {score_s + grid_s:.2f} s, {(ref_s + ref_grid_s) / (score_s + grid_s):.1f}x", flush=True)
    return ref_s, score_s, grid_s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the reference grid (a run of a few minutes)")
    ap.add_argument("--videos", type=int, default=932, help="videos in the case (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per side (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--public-script", type=Path, metavar="PATH",
                    help="a copy of the public 2021 scorer (eval_detection.py) to time from files; default: "
                    "tests/reference_scorer.py run the same way")
    ap.add_argument("--baseline-run", nargs=3, metavar=("SCRIPT", "GT_DIR", "PRED_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.baseline_run:  # the baseline's own process: nothing of tpslab imported
        run_baseline(*args.baseline_run)
        return 0
    import orjson

    t = time.perf_counter()
    case = _load("tps_cases").realistic_case(n_videos=args.videos, seed=args.seed)
    gt_vid, gt_part = case[0], case[1]
    n_parts = sum(len(h["parts"]) for v in gt_part.values() for f in v.values() for h in f["humans"])
    n_humans = sum(len(f["humans"]) for v in gt_part.values() for f in v.values())
    blobs = [orjson.dumps(x) for x in case]
    print(f"case: {len(gt_vid)} videos, {sum(len(v) for v in gt_part.values())} scored frames, {n_humans} GT humans, "
          f"{n_parts} GT parts; {sum(map(len, blobs)) / 2**20:.0f} MB of JSON (made in "
          f"{time.perf_counter() - t:.1f} s)", flush=True)
    del case, gt_vid, gt_part
    times = dicts_comparison(blobs, args)
    if times is None:
        return 1
    ref_s, score_s, grid_s = times
    gc.collect()
    baseline = args.public_script or TESTS / "reference_scorer.py"
    which = f"the public 2021 script ({baseline})" if args.public_script else "tests/reference_scorer.py"
    base_s, ours_s, base_area, our_area = files_comparison(blobs, baseline, args.repeat)
    if base_area != our_area:
        print(f"MISMATCH from files: baseline area {base_area!r} != tpslab {our_area!r}", file=sys.stderr)
        return 1
    from tpslab.challenge import compiled_reader

    reader = ("the compiled reader (tpslab._partfile)" if compiled_reader() is not None
              else "msgspec (tpslab._partfile is not built here)")
    print(f"from files, fresh processes: baseline = {which}: json.load + score {base_s:.2f} s; "
          f"tpslab evaluate (read with {reader}, validate, score) {ours_s:.2f} s; {base_s / ours_s:.1f}x",
          flush=True)
    print(f"speedup={ref_s / score_s:.2f} score_s={score_s:.3f} grid_s={grid_s:.3f} file_speedup={base_s / ours_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
