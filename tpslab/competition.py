"""A class competition on the mini dataset: a bundle for a self-hosted Codabench (or CodaLab) server.

The challenge ran as a leaderboard; :func:`write_competition` (``tpslab competition OUT``) prepares the
same for a class, on the test videos of the mini dataset, whose labels the learners never see (a
release holds no test annotations; the generator knows them). ``OUT`` receives::

    bundle.zip             what the teacher uploads to Codabench ("Create competition" > upload): the files
                           below, with the programs and data zipped as the platform expects
    competition.yaml       Codabench's competition definition (version 2): one phase, one task, a
                           leaderboard of score (area under acc(t)), action accuracy and mean PSC
    overview.md, evaluation.md, data.md, terms.md, logo.png
    scoring_program/       score.py, a copy of tpslab, metadata.yaml (Codabench) and metadata (CodaLab)
    reference_data/        gt_vid_result.json and gt_part_result.json of the test videos (the teacher's only)
    starting_kit/          what learners get: README.md, test_videos.txt, test_detections.json (person
                           and part boxes of the test videos from a simulated detector, no states),
                           baseline.py and baseline_submission.zip (the submission baseline.py writes)

The scoring program follows both platforms' folder convention: it reads the reference data from
``INPUT/ref`` and the unzipped submission from ``INPUT/res``, and writes ``OUTPUT/scores.json``
(Codabench reads it: ``{"score": ..., "accuracy": ..., "mean_psc": ...}``, the leaderboard's column keys)
and ``OUTPUT/scores.txt`` (CodaLab's ``key: value`` lines). Codabench runs it as ``python3
/app/program/score.py`` with ``/app/input`` and ``/app/output``; CodaLab as ``python $program/score.py
$input $output``. It validates the submission first (tpslab's validator: one line per problem) and exits
1 without scores when it is not valid. It needs Python >= 3.10 with numpy, pandas, scipy and orjson in
the platform's Docker image (``docker_image`` in competition.yaml; see the starting kit's README).
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

#: The leaderboard's columns: key -> (title, what it is).
COLUMNS = {
    "score": ("Score", "area under acc(t), the official Kinetics-TPS score"),
    "accuracy": ("Action accuracy", "share of test videos whose action is right"),
    "mean_psc": ("Mean PSC", "mean part-state correctness of the test videos"),
}
#: The Docker image written into competition.yaml: Python 3.11; the scoring program also needs numpy,
#: pandas, scipy and orjson (an image built from the starting kit's instructions has them).
DOCKER_IMAGE = "python:3.11"
_FILES = ("competition.yaml", "overview.md", "evaluation.md", "data.md", "terms.md", "logo.png")


# ----------------------------------------------------------------------------- the test videos' truth


def test_truth(preset: str = "default", seed: int = 0):
    """The ground truth of the mini dataset's test videos, from the generator: ``(tables, root)`` where
    ``tables`` has ``videos`` (the test videos, labelled), ``frames``, ``humans`` and ``parts`` (the
    dataset's columns) and ``root`` is the generated dataset (made on first use)."""
    from tpslab.synthetic import ensure_mini, plan_record

    root = ensure_mini(preset=preset, seed=seed, progress=False)
    record = plan_record(root, preset, seed)
    videos = record.videos[record.videos["split"].astype(str) == "test"].reset_index(drop=True)
    return SimpleNamespace(root=root, videos=videos, frames=record.test_frames, humans=record.test_humans,
                           parts=record.test_parts), root


def reference_files(tables) -> tuple[dict, dict]:
    """``(gt_vid, gt_part)`` of the test videos in ``tables`` (:func:`test_truth`), in the challenge's format."""
    from tpslab.submission import export_ground_truth

    # export_ground_truth refuses test-split videos (a release has no annotations for them); these tables
    # are the generator's truth, so they are given as annotated videos.
    labelled = tables.videos.assign(split="train")
    shown = SimpleNamespace(videos=labelled, frames=tables.frames, humans=tables.humans, parts=tables.parts)
    return export_ground_truth(shown, videos=list(tables.videos["video"].astype(str)))


def perfect_submission(tables) -> tuple[dict, dict]:
    """The submission that gets every test video right (the ground truth written as predictions)."""
    from tpslab.pipeline import boxes_from_dataset
    from tpslab.submission import build_predictions

    boxes, frames = boxes_from_dataset(tables, list(tables.videos["video"].astype(str)))
    labels = dict(zip(tables.videos["video"].astype(str), tables.videos["label"].astype(str)))
    return build_predictions(boxes, labels, frames=frames)


# ----------------------------------------------------------------------------- simulated detections


def coco_of(tables, part_names, size: tuple[int, int]) -> dict:
    """A COCO dict of the persons and parts of ``tables`` as :func:`tpslab.interop.export_coco` writes them
    (:func:`tpslab.interop.coco_of_tables`), without frames on disk: every frame of the mini dataset has
    the preset's ``size``, so images are not resized."""
    from tpslab.challenge import frame_stem
    from tpslab.interop import coco_of_tables

    width, height = (int(s) for s in size)
    images = tables.frames[["video", "frame"]].astype({"video": str, "frame": np.int64})
    names = [f"{v}/{frame_stem(f)}.jpg" for v, f in zip(images["video"], images["frame"])]
    images = images.assign(file_name=names, width=width, height=height, video_width=width, video_height=height)
    coco = coco_of_tables(images, tables.humans, tables.parts, part_names, where="the competition's test tables")
    return {"info": {"tool": "tpslab competition"}, "images": coco.images, "categories": coco.categories,
            "annotations": coco.annotations()}


def simulated_detections(tables, part_names, size, *, jitter: float = 0.2, drop: float = 0.05, seed: int = 0):
    """The boxes a detector might find on the test videos: the true boxes moved and dropped
    (:func:`tpslab.interop.simulate_detections`), read back like a detector's COCO results
    (:func:`tpslab.interop.read_coco_results`). Returns the :class:`~tpslab.interop.CocoDetections`."""
    from tpslab.interop import read_coco_results, simulate_detections

    coco = coco_of(tables, part_names, size)
    return read_coco_results(simulate_detections(coco, jitter=jitter, drop=drop, seed=seed), coco)


# ----------------------------------------------------------------------------- the scoring program

SCORE_PY = '''"""Scoring program of a tpslab class competition (Codabench / CodaLab).

    python3 score.py [INPUT OUTPUT]      (default: /app/input /app/output, Codabench's folders)

Reads the reference data from INPUT/ref (gt_vid_result.json, gt_part_result.json) and the unzipped
submission from INPUT/res (pred_vid_result.json and pred_part_result.json, at its root or in one folder),
validates the submission, scores it with tpslab's implementation of the official Kinetics-TPS score and
writes OUTPUT/scores.json (Codabench) and OUTPUT/scores.txt (CodaLab). An invalid submission gets its
problems listed on stderr and exit status 1 (the platform marks it failed), and no scores.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the copy of tpslab next to this file comes first

import tpslab  # noqa: E402
from tpslab.metrics import tps_score  # noqa: E402
from tpslab.submission import read_ground_truth, read_submission, validate_submission  # noqa: E402


def main(argv):
    inp = Path(argv[1]) if len(argv) > 1 else Path("/app/input")
    out = Path(argv[2]) if len(argv) > 2 else Path("/app/output")
    print(f"tpslab {tpslab.__version__} from {Path(tpslab.__file__).parent}")
    gt_vid, gt_part = read_ground_truth(inp / "ref")
    try:
        pred_vid, pred_part = read_submission(inp / "res")
    except (OSError, ValueError) as e:
        print(f"the submission cannot be read: {e}", file=sys.stderr)
        return 1
    report = validate_submission(pred_vid, pred_part, gt_vid, gt_part)
    print(report)
    if not report.ok:
        print(f"the submission is not valid:\\n{report}", file=sys.stderr)
        return 1
    result = tps_score(gt_vid, gt_part, pred_vid, pred_part)
    print(result)
    scores = {"score": float(result.area), "accuracy": float(result.accuracy), "mean_psc": float(result.mean_psc)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps(scores) + "\\n", encoding="utf-8")
    (out / "scores.txt").write_text("".join(f"{k}: {v:.6f}\\n" for k, v in scores.items()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''

BASELINE_PY = '''"""The starting kit's baseline: every test video gets the most frequent training action, and every
detected part the state it most often has in that action's training videos (the challenge organisers'
majority baseline, with the simplest possible action). Writes baseline_submission.zip next to this file.

    tpslab mini --preset {preset} --seed {seed}    # the competition's data (once)
    python baseline.py
"""

from pathlib import Path

import tpslab
from tpslab.models.baselines import MajorityBaseline
from tpslab.pipeline import boxes_from_predictions, majority_predictions
from tpslab.submission import write_submission_zip
from tpslab.synthetic import ensure_mini

HERE = Path(__file__).resolve().parent
ds = tpslab.load_dataset(ensure_mini(preset="{preset}", seed={seed}))
labels = dict(zip(ds.videos["video"].astype(str), ds.videos["label"].astype(str)))
train = {{v: labels[v] for v in ds.videos.loc[ds.videos["split"] == "train", "video"].astype(str)}}
boxes, frames = boxes_from_predictions(HERE / "test_detections.json")
videos = list(dict.fromkeys(frames["video"].astype(str)))
most_frequent = sorted(train.values(), key=lambda a: (-list(train.values()).count(a), a))[0]
majority = MajorityBaseline().fit(ds.parts, train, ds.vocab)
predictions = majority_predictions(majority, boxes, {{v: most_frequent for v in videos}}, frames)
write_submission_zip(HERE / "baseline_submission.zip", *predictions.files())
print(f"{{HERE / 'baseline_submission.zip'}}: {{len(videos)}} test videos, all {{most_frequent}}")
'''


def _yaml(title: str, start: str) -> str:
    columns = "\n".join(f"""      - title: {t}
        key: {k}
        index: {i}
        sorting: desc""" for i, (k, (t, _)) in enumerate(COLUMNS.items()))
    return f"""# Codabench competition definition (version 2), written by `tpslab competition`.
# Upload bundle.zip (this file with the pages, the logo and the zipped programs and data) to Codabench.
version: 2
title: "{title}"
description: "Part-level action parsing on the tpslab mini Kinetics-TPS: name the action of each test video and the state of every body part."
image: logo.png
registration_auto_approve: True
enable_detailed_results: False
docker_image: "{DOCKER_IMAGE}"
terms: terms.md
pages:
  - title: Overview
    file: overview.md
  - title: Evaluation
    file: evaluation.md
  - title: Data
    file: data.md
phases:
  - index: 0
    name: Test
    description: "Submissions are scored on the test videos of the mini dataset."
    start: {start}
    max_submissions_per_day: 5
    max_submissions: 100
    execution_time_limit: 600
    tasks:
      - 0
    solutions:
      - 0
tasks:
  - index: 0
    name: Mini Kinetics-TPS test videos
    description: "The official Kinetics-TPS score of a submission (two JSON files, zipped)."
    scoring_program: scoring_program.zip
    reference_data: reference_data.zip
solutions:
  - index: 0
    tasks:
      - 0
    path: baseline_submission.zip
leaderboards:
  - index: 0
    title: Results
    key: main
    submission_rule: "Force_Last"
    columns:
{columns}
"""


def _pages(preset: str, seed: int, n_videos: int, baseline: dict) -> dict[str, str]:
    score_lines = "\n".join(f"- **{t}** (`{k}`): {what}." for k, (t, what) in COLUMNS.items())
    return {
        "overview.md": f"""# Kinetics-TPS, class edition

Recognise what people do in a video **and how their body parts move**. For each of the {n_videos} test
videos of the tpslab mini dataset (preset `{preset}`, seed {seed}), name the action and, on every scored
frame (1, 6, 11, ...), the state of each body part of each person (`bend`, `hold`, `step_on`, ...).
The leaderboard ranks submissions by the official Kinetics-TPS score.

Start with the starting kit (files of this competition): its README says how to make a first submission.
""",
        "evaluation.md": f"""# Evaluation

A submission is a zip of two JSON files at its root: `pred_vid_result.json` (`{{video: action}}`) and
`pred_part_result.json` (per video and scored frame, the people with their box and, per part, up to 5
proposed boxes and states). `tpslab check-submission submission.zip` checks one before you upload it.

{score_lines}

For each scored frame, true people are matched to predicted people (IoU > 0.5); a true part counts when
its matched person has that part with a box of IoU >= 0.3 and the right state. A video's PSC is the
mean over its frames of the share of parts that counted; acc(t) is the share of videos whose action is
right and whose PSC is at least t; the score is the area under acc(t). The baseline of the starting kit
scores {baseline['score']:.4f} (accuracy {baseline['accuracy']:.4f}, mean PSC {baseline['mean_psc']:.4f}).
""",
        "data.md": f"""# Data

The data is the tpslab mini dataset: `pip install tpslab`, then `tpslab mini --preset {preset} --seed {seed}`
writes it (videos, annotations of the training videos, the list files) in the layout of the real
release. The test videos have no annotations. The starting kit adds `test_detections.json`: person and
part boxes of the test videos from a simulated detector (true boxes moved and some dropped), without
states, in the prediction format that `tpslab predict RUN --boxes test_detections.json` reads.
""",
        "terms.md": """# Terms

This is a class exercise. Submit predictions made by your own code; do not use the generator of the
mini dataset (`tpslab.synthetic`) to recover the test labels.
""",
    }


def _kit_readme(preset: str, seed: int, baseline: dict) -> str:
    return f"""# Starting kit

- `test_videos.txt`: the test videos (one per line).
- `test_detections.json`: person and part boxes of the test videos from a simulated detector, no states.
- `baseline.py`: writes `baseline_submission.zip` (the most frequent action, and each part's most
  frequent state for it). It scores {baseline['score']:.4f} on the leaderboard.

A first real submission, with tpslab (`pip install tpslab`):

```bash
tpslab mini --preset {preset} --seed {seed}                  # the data, once
tpslab train-recognizer --out run                             # part states from pixels, and the action classifier
tpslab predict run --boxes test_detections.json --out submission.zip
tpslab check-submission submission.zip                        # then upload submission.zip
```

(`tpslab mini` prints where the dataset is; `TPSLAB_DATA` or a ROOT argument points the other commands
at it when it is not the default preset.) The notebooks of tpslab explain every step.

For the teacher: the scoring program runs in the Docker image named in `competition.yaml`
(`docker_image`). It needs Python >= 3.10 with numpy, pandas, scipy and orjson; an image built from

```dockerfile
FROM python:3.11
RUN pip install numpy pandas scipy orjson
```

and pushed to a registry the Codabench workers reach does it; put its name in `docker_image`.
"""


def _logo() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (240, 240), (31, 119, 180))
    draw = ImageDraw.Draw(img)
    for k, (x0, y0, x1, y1) in enumerate([(60, 40, 180, 200), (80, 60, 130, 110), (120, 120, 170, 180)]):
        draw.rectangle((x0, y0, x1, y1), outline=(255, 255, 255) if k == 0 else (255, 217, 47), width=6)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _zip_folder(folder: Path, out: Path) -> None:
    """Zip the contents of ``folder`` (files at the zip's root) into ``out``, the same bytes for the same files."""
    from tpslab.fileio import add_to_zip

    with zipfile.ZipFile(out, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                add_to_zip(z, path.relative_to(folder).as_posix(), path.read_bytes())


def _copy_tpslab(dest: Path) -> None:
    """tpslab's source for the scoring program: no bytecode, and no compiled module (built for this machine's
    Python; the platform's reads part files with msgspec, the same results)."""
    import tpslab

    shutil.copytree(Path(tpslab.__file__).resolve().parent, dest,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd"))


def score_folder(program: Path, input_dir: Path, output_dir: Path) -> dict:
    """Run the scoring program in ``program`` the way the platform does, in this process's Python:
    returns the scores it wrote (raises RuntimeError with its output when it fails)."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, str(program / "score.py"), str(input_dir), str(output_dir)],
                         cwd=program, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"the scoring program failed (exit {run.returncode}):\n{run.stdout}{run.stderr}")
    return json.loads((output_dir / "scores.json").read_text(encoding="utf-8"))


def write_competition(out, *, preset: str = "default", seed: int = 0, jitter: float = 0.2, drop: float = 0.05,
                      title: str | None = None, start: str | None = None) -> dict:
    """Write the competition bundle into the new (or empty) folder ``out``; see the module docstring.

    ``preset``/``seed``: the mini dataset (generated on first use); ``jitter``/``drop``: the simulated
    detector of the starting kit's detections; ``start``: the phase's start date (default: today).
    The bundle is built in a hidden sibling folder and renamed into place, so ``out`` never holds half a
    bundle. Returns ``{"out", "videos", "baseline": scores}``; raises FileExistsError for a folder that
    is not empty.
    """
    import tpslab
    from tpslab.fileio import add_to_zip, atomic_folder
    from tpslab.interop import write_detections
    from tpslab.submission import write_json_pair, write_submission_zip
    from tpslab.synthetic.writer import get_preset

    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose a new folder")
    tables, root = test_truth(preset, seed)
    ds = tpslab.load_dataset(root, progress=False)
    names = list(tables.videos["video"].astype(str))
    with atomic_folder(out) as tmp:
        # reference data: the teacher's only
        (tmp / "reference_data").mkdir()
        gt_vid, gt_part = reference_files(tables)
        write_json_pair(tmp / "reference_data", "gt_vid_result.json", gt_vid, "gt_part_result.json", gt_part,
                        record=False)
        # scoring program
        program = tmp / "scoring_program"
        program.mkdir()
        (program / "score.py").write_text(SCORE_PY, encoding="utf-8")
        (program / "metadata.yaml").write_text("command: python3 /app/program/score.py /app/input /app/output\n",
                                               encoding="utf-8")
        (program / "metadata").write_text("command: python $program/score.py $input $output\n", encoding="utf-8")
        _copy_tpslab(program / "tpslab")
        # starting kit: detections, the baseline and its submission
        kit = tmp / "starting_kit"
        kit.mkdir()
        (kit / "test_videos.txt").write_text("".join(f"{v}\n" for v in names), encoding="utf-8")
        detections = simulated_detections(tables, ds.vocab.parts.names, get_preset(preset).size, jitter=jitter,
                                          drop=drop, seed=seed)
        write_detections(detections, kit / "test_detections.json")
        (kit / "baseline.py").write_text(BASELINE_PY.format(preset=preset, seed=seed), encoding="utf-8")
        write_submission_zip(kit / "baseline_submission.zip", *_baseline(ds, kit / "test_detections.json"))
        # score the baseline as the platform would
        with_inputs = tmp / ".baseline-run"
        (with_inputs / "input").mkdir(parents=True)
        shutil.copytree(tmp / "reference_data", with_inputs / "input" / "ref")
        with zipfile.ZipFile(kit / "baseline_submission.zip") as z:
            z.extractall(with_inputs / "input" / "res")
        baseline = score_folder(program, with_inputs / "input", with_inputs / "output")
        shutil.rmtree(with_inputs)
        (kit / "README.md").write_text(_kit_readme(preset, seed, baseline), encoding="utf-8")
        # the pages and the definition
        title = title or f"Kinetics-TPS class competition (mini dataset, {preset}, seed {seed})"
        (tmp / "competition.yaml").write_text(_yaml(title, start or date.today().isoformat()), encoding="utf-8")
        for name, text in _pages(preset, seed, len(names), baseline).items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / "logo.png").write_bytes(_logo())
        # the bundle: programs and data zipped inside
        with zipfile.ZipFile(tmp / "bundle.zip", "w") as bundle:
            for name in _FILES:
                add_to_zip(bundle, name, (tmp / name).read_bytes())
            for folder, inner in (("scoring_program", "scoring_program.zip"), ("reference_data", "reference_data.zip"),
                                  ("starting_kit", "starting_kit.zip")):
                _zip_folder(tmp / folder, tmp / inner)
                add_to_zip(bundle, inner, (tmp / inner).read_bytes())
                (tmp / inner).unlink()
            add_to_zip(bundle, "baseline_submission.zip", (kit / "baseline_submission.zip").read_bytes())
    return {"out": out, "videos": len(names), "baseline": baseline}


def _baseline(ds, detections_file) -> tuple[dict, dict]:
    """The starting kit's baseline submission (what baseline.py writes)."""
    from tpslab.models.baselines import MajorityBaseline
    from tpslab.pipeline import boxes_from_predictions, majority_predictions

    labels = dict(zip(ds.videos["video"].astype(str), ds.videos["label"].astype(str)))
    train = {v: labels[v] for v in ds.videos.loc[ds.videos["split"] == "train", "video"].astype(str)}
    boxes, frames = boxes_from_predictions(detections_file)
    videos = list(dict.fromkeys(frames["video"].astype(str)))
    counts = pd.Series(list(train.values())).value_counts()
    most_frequent = sorted(counts[counts == counts.max()].index)[0]
    majority = MajorityBaseline().fit(ds.parts, train, ds.vocab)
    return majority_predictions(majority, boxes, {v: most_frequent for v in videos}, frames).files()


__all__ = ["COLUMNS", "DOCKER_IMAGE", "coco_of", "perfect_submission", "reference_files", "score_folder",
           "simulated_detections", "test_truth", "write_competition"]
