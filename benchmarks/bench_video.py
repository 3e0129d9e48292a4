"""Clip reading speed: tpslab's frame-exact readers against raw decord, and the DataLoader.

Writes 10 s H.264 videos (25 fps, x264 defaults: keyframe interval 250, B-frames) at 320x240 and
640x360 into a temporary release folder, then measures in one run, on the same 8-frame TSN clips
(random offsets, seeded), each opening the file per clip as a data loader does:

- baseline: ``decord.VideoReader(path).get_batch(indices)``;
- tpslab: ``tpslab.video.open_video(path).get(indices)`` (auto: packet probe, then decord), with
  the probe cold (the headline figure) and remembered from an earlier read of the video;
- tpslab PyAV backend: ``open_video(path, "pyav").get(indices)``;
- ``tpslab.torchdata.ClipDataset`` through a DataLoader (batch 4, short side 256, crop 224), with 0
  and 2 workers, in clips per second.

The readers run interleaved clip by clip, so a busy shared CPU slows them alike.
Last line: ``decord_overhead=X pyav_ratio=Y clips_per_s_w0=A clips_per_s_w2=B`` where X is
tpslab/decord time and Y PyAV/decord time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = [(320, 240), (640, 360)]
FPS, SECONDS, CLIP = 25, 10, 8


def write_video(path: Path, width: int, height: int, seed: int) -> None:
    """A 10 s video with moving texture (so it decodes like real footage, not flat colour)."""
    import av

    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, size=(height * 2, width * 2, 3), dtype=np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(FPS * SECONDS):
            dx, dy = (3 * i) % width, (2 * i) % height
            frame = texture[dy:dy + height, dx:dx + width] // 2
            frame[..., 0] += ((np.sin((x + 4 * i) / 17.0) + 1) * 60).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make_release(root: Path, videos_per_size: int) -> list[Path]:
    """A release folder with the videos, a flist and one annotated frame in five."""
    from tpslab.vocab import Vocab

    vocab = Vocab.default()
    vocab.write_lists(root)
    paths, rows = [], []
    for s, (w, h) in enumerate(SIZES):
        for k in range(videos_per_size):
            label = vocab.actions.names[k % 3]
            video = f"bench{w}x{h}_{k:03d}"
            path = root / "train_videos" / label / f"{video}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, w, h, seed=100 * s + k)
            paths.append(path)
            rows.append(f"{label},{video},{FPS * SECONDS}\n")
            ann = root / "train_annotations" / label / video / video
            ann.mkdir(parents=True)
            for number in range(1, FPS * SECONDS + 1, 5):
                human = {"number": 1, "box": [10, 10, w // 2, h - 10], "parts": [
                    {"name": "head", "box": [20, 12, 40, 30], "verb": "none"},
                    {"name": "left_hand", "box": [12, 60, 30, 80], "verb": "hold"}]}
                (ann / f"img_{number:05d}.json").write_text(json.dumps({"humans": [human]}))
    (root / "list" / "video_train_flist.csv").write_text("class,video,frames\n" + "".join(rows))
    return paths


def time_readers(paths: list[Path], clips_per_video: int, seed: int) -> dict[str, list[float]]:
    import decord

    from tpslab.sampling import tsn_indices
    from tpslab.video import clear_probe_cache, open_video, probe_cached

    def raw_decord(path, idx):
        return decord.VideoReader(str(path)).get_batch(idx.tolist()).asnumpy()

    def tpslab_auto(path, idx):
        with open_video(path) as reader:
            return reader.get(idx)

    def tpslab_pyav(path, idx):
        with open_video(path, "pyav") as reader:
            return reader.get(idx)

    # "tpslab" and "pyav" start cold (no remembered probe, as on a video's first read in a
    # process); "tpslab_warm" reads a video whose probe this process remembers (later epochs)
    methods = {"decord": raw_decord, "tpslab": tpslab_auto, "pyav": tpslab_pyav, "tpslab_warm": tpslab_auto}
    cold = {"tpslab", "pyav"}
    times: dict[str, list[float]] = {name: [] for name in methods}
    rng = np.random.default_rng(seed)
    for path in paths:  # warm the file cache and the libraries
        for fn in methods.values():
            fn(path, np.arange(CLIP))
    order = list(methods)
    for c in range(clips_per_video):
        for path in paths:
            idx = tsn_indices(FPS * SECONDS, CLIP, train=True, seed=rng)
            order = order[1:] + order[:1]  # rotate who goes first
            results = {}
            for name in order:
                if name in cold:
                    clear_probe_cache()
                else:
                    probe_cached(path)
                t = time.perf_counter()
                results[name] = methods[name](path, idx)
                times[name].append(time.perf_counter() - t)
            # all three must hand out the same frames (decord and FFmpeg convert colour alike)
            diff = np.abs(results["pyav"].astype(np.int16) - results["decord"].astype(np.int16)).mean()
            if not (np.array_equal(results["tpslab"], results["decord"])
                    and np.array_equal(results["tpslab_warm"], results["decord"])) or diff > 2:
                raise SystemExit(f"readers disagree on {path} {idx.tolist()} (mean pyav diff {diff:.2f})")
    return times


def loader_rate(root: Path, workers: int, batches: int, seed: int) -> float:
    import torch

    import tpslab
    from tpslab.torchdata import TSN, ClipDataset, collate_clips, train_transform

    ds = tpslab.load_dataset(root, progress=False, workers=1)
    clips = ClipDataset(ds, sampler=TSN(CLIP), train=True, seed=seed,
                        transform=train_transform(ds.vocab.parts.names, 256, 224))
    sampler = torch.utils.data.RandomSampler(clips, replacement=True, num_samples=4 * batches,
                                             generator=torch.Generator().manual_seed(seed))
    loader = torch.utils.data.DataLoader(clips, batch_size=4, sampler=sampler, num_workers=workers,
                                         collate_fn=collate_clips, persistent_workers=False)
    t = time.perf_counter()
    n = sum(len(batch["video"]) for batch in loader)  # includes starting the workers
    return n / (time.perf_counter() - t)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer videos and clips (under a minute)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    videos_per_size, clips_per_video, batches = (2, 6, 6) if args.quick else (4, 20, 20)

    with tempfile.TemporaryDirectory(prefix="tpslab-bench-video-") as tmp:
        root = Path(tmp) / "Kinetics-TPS"
        t = time.perf_counter()
        paths = make_release(root, videos_per_size)
        print(f"wrote {len(paths)} videos of {SECONDS} s ({', '.join(f'{w}x{h}' for w, h in SIZES)}) "
              f"in {time.perf_counter() - t:.1f} s")
        times = time_readers(paths, clips_per_video, args.seed)
        per_size = len(times["decord"]) // len(SIZES)
        for s, (w, h) in enumerate(SIZES):
            # clips alternate over the paths, which are grouped by size
            sel = [i for i in range(len(times["decord"])) if (i % len(paths)) // videos_per_size == s]
            assert len(sel) == per_size
            med = {name: statistics.median([v[i] for i in sel]) * 1e3 for name, v in times.items()}
            print(f"{w}x{h}: median ms per clip: decord {med['decord']:.1f}, tpslab {med['tpslab']:.1f} "
                  f"(remembered probe {med['tpslab_warm']:.1f}), pyav {med['pyav']:.1f}")
        total = {name: sum(v) for name, v in times.items()}
        overhead = total["tpslab"] / total["decord"]
        pyav_ratio = total["pyav"] / total["decord"]
        print(f"{len(times['decord'])} clips each; total s: decord {total['decord']:.2f}, "
              f"tpslab {total['tpslab']:.2f} (remembered probe {total['tpslab_warm']:.2f}, "
              f"{total['tpslab_warm'] / total['decord']:.3f}x decord), pyav {total['pyav']:.2f}")
        rate0 = loader_rate(root, 0, batches, args.seed)
        rate2 = loader_rate(root, 2, batches, args.seed)
        print(f"DataLoader, batch 4, 256/224 train transform: {rate0:.1f} clips/s with 0 workers, "
              f"{rate2:.1f} with 2")
    print(f"decord_overhead={overhead:.3f} pyav_ratio={pyav_ratio:.3f} "
          f"clips_per_s_w0={rate0:.2f} clips_per_s_w2={rate2:.2f}")


if __name__ == "__main__":
    main()
