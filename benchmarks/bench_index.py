"""Index build and cache reload at Kinetics-TPS scale.

Builds an annotation tree of the release's shape (3809 videos x ~151 frame files = ~575k files, about
2.8 humans per frame and 4.9 parts per human, objects on ~6% of parts; ``--fraction`` keeps the same
per-video shape with fewer videos), then measures in one run:

- baseline: one process ``json.load``-ing every file into the same rows, then DataFrames;
- tpslab: ``tpslab.index.load_index`` with a fresh parse (all cores), and the cache reload.

Last line: ``index_speedup=X reload_s=Y files=N``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tpslab.index import find_annotation_dirs, load_index
from tpslab.vocab import Vocab

FULL_VIDEOS = 3809
FILES_PER_VIDEO = 151


def make_tree(root: Path, n_videos: int, seed: int = 0) -> int:
    """Write ``n_videos`` annotation folders of realistic content; returns the number of files."""
    rng = np.random.default_rng(seed)
    vocab = Vocab.default()
    Vocab.default().write_lists(root)
    states = list(vocab.states.names[:40])
    objects = list(vocab.objects.names)
    total = 0
    for v in range(n_videos):
        label = vocab.actions.names[v % len(vocab.actions)]
        video = f"{v:011d}_{v % 300:06d}_{v % 300 + 10:06d}"
        d = root / "train_annotations" / label / video / video
        d.mkdir(parents=True)
        n_frames = int(rng.integers(140, 163))
        frames = np.sort(rng.choice(300, size=n_frames, replace=False)) + 1
        for f in frames:
            humans = []
            for h in range(int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.25, 0.25, 0.2, 0.1]))):
                x, y = rng.integers(0, 300, 2).tolist()
                parts = []
                names = rng.permutation(vocab.parts.names)[: int(rng.choice([3, 4, 5, 6, 7], p=[.1, .2, .35, .25, .1]))]
                for name in names:
                    px, py = x + int(rng.integers(0, 60)), y + int(rng.integers(0, 120))
                    p = {"name": str(name), "box": [px, py, px + 20, py + 20],
                         "verb": states[int(rng.integers(len(states)))] if rng.random() < 0.5 else "none"}
                    if rng.random() < 0.06:
                        p["obj_class"] = objects[int(rng.integers(len(objects)))]
                        p["obj_bbox"] = [px - 5, py - 5, px + 30, py + 30]
                    else:
                        p["obj_class"] = None
                    parts.append(p)
                humans.append({"number": h + 1, "box": [x, y, x + 80, y + 160], "parts": parts})
            (d / f"img_{int(f):05d}.json").write_text(json.dumps({"humans": humans}))
        total += n_frames
    return total


def baseline(root: Path) -> dict[str, pd.DataFrame]:
    """The plain way: one process, json.load per file, Python rows, DataFrames at the end."""
    frames, humans, parts = [], [], []
    for d in find_annotation_dirs(root):
        for name, frame in zip(d.names, d.frames):
            with open(os.path.join(d.path, name)) as fh:
                data = json.load(fh)
            frames.append((d.video, frame, len(data["humans"])))
            for i, h in enumerate(data["humans"]):
                hp = h.get("parts") or []
                humans.append((d.video, frame, i, *h["box"], len(hp)))
                for p in hp:
                    obj = p.get("obj_class") or None
                    ob = p.get("obj_bbox") if obj else [np.nan] * 4
                    parts.append((d.video, frame, i, *h["box"], p["name"], *p["box"], p["verb"], obj, *ob))
    return {
        "frames": pd.DataFrame(frames, columns=["video", "frame", "num_humans"]),
        "humans": pd.DataFrame(humans, columns=["video", "frame", "human", "x1", "y1", "x2", "y2", "num_parts"]),
        "parts": pd.DataFrame(parts, columns=[
            "video", "frame", "human", "human_x1", "human_y1", "human_x2", "human_y2", "part", "part_x1",
            "part_y1", "part_x2", "part_y2", "state", "object", "object_x1", "object_y1", "object_x2",
            "object_y2"]),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2%% of the videos (a run under 60 s)")
    ap.add_argument("--fraction", type=float, default=None, help="fraction of the 3809 videos (default 1.0)")
    ap.add_argument("--dir", type=Path, default=None, help="keep the generated tree here and reuse it")
    ap.add_argument("--workers", type=int, default=None, help="tpslab worker processes (default: all cores)")
    args = ap.parse_args(argv)
    fraction = args.fraction if args.fraction is not None else (0.02 if args.quick else 1.0)
    n_videos = max(1, round(FULL_VIDEOS * fraction))

    tmp = None
    root = args.dir or Path(tmp := tempfile.mkdtemp(prefix="tpslab-bench-index-"))
    try:
        marker = root / f".bench-{n_videos}"
        if not marker.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            t = time.perf_counter()
            files = make_tree(root, n_videos)
            marker.write_text(str(files))
            print(f"generated {files} files in {n_videos} videos in {time.perf_counter() - t:.1f} s", flush=True)
        files = int(marker.read_text())
        shutil.rmtree(root / ".tpslab", ignore_errors=True)

        t = time.perf_counter()
        base = baseline(root)
        base_s = time.perf_counter() - t
        print(f"baseline (json.load, 1 process): {base_s:.2f} s", flush=True)

        t = time.perf_counter()
        idx = load_index(root, workers=args.workers, progress=sys.stderr.isatty(), rebuild=True)
        build_s = time.perf_counter() - t
        print(f"tpslab build (parse + cache write, {args.workers or os.cpu_count()} workers): {build_s:.2f} s",
              flush=True)
        assert len(idx.tables["parts"]) == len(base["parts"]), "tables disagree with the baseline"
        assert len(idx.tables["humans"]) == len(base["humans"])
        # A reload happens in a fresh session: drop the millions of Python objects built above.
        del base, idx

        reloads = []
        for _ in range(3):
            t = time.perf_counter()
            again = load_index(root, progress=False)
            reloads.append(time.perf_counter() - t)
            assert again.from_cache
        reload_s = min(reloads)
        print(f"cache reload: {reload_s:.3f} s (best of 3; {', '.join(f'{r:.3f}' for r in reloads)}); "
              f"rows: {len(again.tables['frames'])} frames, {len(again.tables['humans'])} humans, "
              f"{len(again.tables['parts'])} parts")
        print(f"index_speedup={base_s / build_s:.2f} reload_s={reload_s:.3f} files={files}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
