"""The embedded mini dataset: synthetic Kinetics-TPS videos and annotations, generated on demand.

``generate(out, preset, seed)`` writes a complete release tree (rendered H.264 videos, frame
annotations in the raw release form, list files, flist CSVs) and returns the generator's own
:class:`SyntheticRecord` of every box and state it wrote; ``ensure_mini(preset, seed)`` makes it once
in the cache folder and returns its root. Everything is deterministic for a seed.

Actions are compositions of per-body-group motifs (:mod:`tpslab.synthetic.programs`), drawn as limb
figures whose part states show in the pixels (:mod:`tpslab.synthetic.render`) and written in the
release layout (:mod:`tpslab.synthetic.writer`). Presets: ``default`` (24 classes, 6-10 train and 2
test videos each, 56-72 frames at 256x192) and ``tiny`` (4 classes, 4 train and 2 test videos each,
28-36 frames at 192x144, for tests).
"""

from __future__ import annotations

import errno
import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tpslab.fileio import atomic_folder
from tpslab.synthetic.presets import GENERATOR_VERSION, PRESETS, Preset, get_preset

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GENERATOR_VERSION", "MINI_RECORD", "PRESETS", "Preset", "SyntheticRecord", "ensure_mini", "generate",
           "generate_or_reuse", "mini_path", "plan_record"]

#: The file in a dataset root that says how ``tpslab mini OUT`` made it (hidden: never read as data).
MINI_RECORD = ".tpslab-mini.json"


@dataclass
class SyntheticRecord:
    """What the generator wrote, as the tables :func:`tpslab.load_dataset` returns for it.

    ``videos``, ``frames``, ``humans`` and ``parts`` follow the dataset contract (same columns, order
    and types), built from the generator's state, not by reading files back. ``test_frames``,
    ``test_humans`` and ``test_parts`` hold the ground truth of the test videos, whose annotations a
    release does not contain (the frames an annotator would have labelled, same columns).
    """

    root: Path
    preset: str
    seed: int
    videos: pd.DataFrame
    frames: pd.DataFrame
    humans: pd.DataFrame
    parts: pd.DataFrame
    test_frames: pd.DataFrame
    test_humans: pd.DataFrame
    test_parts: pd.DataFrame


def _tables(specs, rows) -> tuple:
    """frames, humans and parts tables for ``specs`` (already in folder order)."""
    import numpy as np
    import pandas as pd

    from tpslab.vocab import Vocab

    vocab = Vocab.default()
    names = [s.video for s in specs]

    def video_col(key):
        codes = np.concatenate([np.full(len(rows[s.index][key]), i, np.int32) for i, s in enumerate(specs)]) \
            if specs else np.zeros(0, np.int32)
        return pd.Categorical.from_codes(codes, categories=names)

    def col(key, dtype):
        return np.asarray([v for s in specs for v in rows[s.index][key]], dtype=dtype)

    def boxes(key):
        values = [v if v is not None else [np.nan] * 4 for s in specs for v in rows[s.index][key]]
        return np.asarray(values, np.float64).reshape(-1, 4)

    def names_col(key, vocabulary):
        values = [v for s in specs for v in rows[s.index][key]]
        return pd.Categorical(values, categories=list(vocabulary.names))

    frames = pd.DataFrame({"video": video_col("f_frame"), "frame": col("f_frame", np.int32),
                           "num_humans": col("f_humans", np.int16)})
    hbox = boxes("h_box")
    humans = pd.DataFrame({"video": video_col("h_frame"), "frame": col("h_frame", np.int32),
                           "human": col("h_index", np.int16), "x1": hbox[:, 0], "y1": hbox[:, 1],
                           "x2": hbox[:, 2], "y2": hbox[:, 3], "num_parts": col("h_parts", np.int16)})
    phb, pb, ob = boxes("p_hbox"), boxes("p_box"), boxes("p_obox")
    parts = pd.DataFrame({
        "video": video_col("p_frame"), "frame": col("p_frame", np.int32), "human": col("p_human", np.int16),
        "human_x1": phb[:, 0], "human_y1": phb[:, 1], "human_x2": phb[:, 2], "human_y2": phb[:, 3],
        "part": names_col("p_part", vocab.parts),
        "part_x1": pb[:, 0], "part_y1": pb[:, 1], "part_x2": pb[:, 2], "part_y2": pb[:, 3],
        "state": names_col("p_state", vocab.states), "object": names_col("p_obj", vocab.objects),
        "object_x1": ob[:, 0], "object_y1": ob[:, 1], "object_x2": ob[:, 2], "object_y2": ob[:, 3],
    })
    return frames, humans, parts


def _record(root: Path, preset: Preset, seed: int, specs, rows) -> SyntheticRecord:
    import numpy as np
    import pandas as pd

    order = sorted(specs, key=lambda s: (s.split != "train", s.label, s.video))
    videos = pd.DataFrame({
        "video": [s.video for s in order],
        "label": [s.label for s in order],
        "split": pd.Categorical([s.split for s in order], categories=["train", "test"]),
        "path": [str(root / s.mp4) for s in order],
        "num_frames": pd.array([s.num_frames for s in order], dtype="Int64"),
        "num_annotated_frames": np.array([len(rows[s.index]["f_frame"]) if s.split == "train" else 0
                                          for s in order], np.int64),
    })
    videos["label"] = videos["label"].astype("category")
    train = [s for s in order if s.split == "train"]
    test = [s for s in order if s.split == "test"]
    frames, humans, parts = _tables(train, rows)
    test_frames, test_humans, test_parts = _tables(test, rows)
    return SyntheticRecord(root, preset.name, seed, videos, frames, humans, parts,
                           test_frames, test_humans, test_parts)


def generate(out, preset="default", seed: int = 0, progress: bool = True,
             workers: int | None = None, *, mark: bool = False) -> SyntheticRecord:
    """Write a mini dataset in the release layout to ``out`` and return the generator's record of it.

    The tree is built in a hidden sibling folder and renamed to ``out`` when complete, so an
    interrupted run never leaves a partial dataset. ``out`` must not exist or be an empty folder.
    ``workers``: processes rendering videos (default: one per core for the default preset, none for
    the tiny one); the output does not depend on it. ``mark`` also writes :data:`MINI_RECORD` (preset,
    seed, generator version) into the root, so that :func:`generate_or_reuse` can recognise it.
    """
    from tpslab.synthetic import writer

    p = get_preset(preset)
    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder; choose a new folder")
    specs = writer.video_specs(p, seed)
    with atomic_folder(out) as tmp:
        workers = writer.default_workers(len(specs)) if workers is None else workers
        rows = writer.run_videos(specs, tmp, workers, progress)
        writer.write_lists(tmp, specs)
        if mark:
            (tmp / MINI_RECORD).write_text(json.dumps(_mini_identity(p, seed)) + "\n", encoding="utf-8")
    return _record(out, p, seed, specs, rows)


def _mini_identity(preset: Preset, seed: int) -> dict:
    return {"generator": "tpslab.synthetic", "generator_version": GENERATOR_VERSION, "preset": preset.name,
            "seed": int(seed)}


def generate_or_reuse(out, preset="default", seed: int = 0, progress: bool = True) -> tuple[Path, bool]:
    """``tpslab mini OUT``: generate the mini dataset into ``out``, or reuse the one already there.

    ``out`` is reused, untouched, when it holds the dataset this call would write: its
    :data:`MINI_RECORD` names the same preset, seed and generator version, and every video and list
    folder of that dataset is present. A missing or empty ``out`` is generated (with the record). Anything
    else (another preset or seed, an older generator, an incomplete tree, files tpslab did not write) is
    refused with a ``FileExistsError`` saying what is there; nothing in ``out`` is changed or deleted.
    Returns ``(root, reused)``.
    """
    from tpslab.synthetic import writer

    p = get_preset(preset)
    out = Path(out).expanduser().absolute()
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        generate(out, preset=p, seed=seed, progress=progress, mark=True)
        return out, False
    if not out.is_dir():
        raise FileExistsError(errno.EEXIST, "exists and is a file, not a folder; choose a new folder", str(out))
    try:
        found = json.loads((out / MINI_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = None
    wanted = _mini_identity(p, seed)
    if not isinstance(found, dict) or found.get("generator") != wanted["generator"]:
        raise FileExistsError(errno.EEXIST, "exists and does not hold a mini dataset written by `tpslab mini`; "
                              "choose a new folder (tpslab never writes into one it did not make)", str(out))
    if found != wanted:
        made = (f"preset {found.get('preset')!r}, seed {found.get('seed')!r}, "
                f"generator v{found.get('generator_version')}")
        raise FileExistsError(errno.EEXIST, f"holds the mini dataset of {made}, not of preset {p.name!r}, seed "
                              f"{seed}, generator v{GENERATOR_VERSION}; choose a new folder", str(out))
    missing = [s.mp4 for s in writer.video_specs(p, seed) if not (out / s.mp4).is_file()]
    missing += [d for d in ("list", "train_annotations") if not (out / d).is_dir()]
    if missing:
        raise FileExistsError(errno.EEXIST, f"holds an incomplete mini dataset ({len(missing)} videos or folders "
                              f"missing, e.g. {missing[0]}); choose a new folder", str(out))
    return out, True


def plan_record(root, preset="default", seed: int = 0) -> SyntheticRecord:
    """The record of the dataset ``generate(root, preset, seed)`` writes, recomputed without pixels.

    Useful to get the ground truth of the test videos of a cached mini dataset (see :func:`ensure_mini`).
    """
    from tpslab.synthetic import writer

    p = get_preset(preset)
    specs = writer.video_specs(p, seed)
    rows = {s.index: writer.plan_rows(writer.plan_video(s)) for s in specs}
    return _record(Path(root).expanduser().absolute(), p, seed, specs, rows)


def mini_path(preset="default", seed: int = 0) -> Path:
    """Where :func:`ensure_mini` keeps a generated dataset (it may not exist yet)."""
    from tpslab.home import cache_home

    return cache_home() / f"mini-{get_preset(preset).name}-seed{seed}-v{GENERATOR_VERSION}"


@contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive lock on ``lock_path`` (POSIX flock); a no-op where flock is missing."""
    try:
        import fcntl
    except ImportError:  # the atomic rename in generate() still keeps the result whole
        yield
        return
    with open(lock_path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure_mini(preset="default", seed: int = 0, progress: bool = True) -> Path:
    """Return the root of the mini dataset for ``preset`` and ``seed``, generating it on first use.

    It lives in the cache folder (:func:`tpslab.home.cache_home`) under a name that includes the
    generator version. Concurrent callers wait on a lock file and one of them generates.
    """
    target = mini_path(preset, seed)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / f"{target.name}.lock"):
        if target.is_dir():
            return target
        for stale in target.parent.glob(f".{target.name}.partial-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        try:
            generate(target, preset=preset, seed=seed, progress=progress)
        except FileExistsError:
            if not target.is_dir():
                raise
    return target
