"""tpslab competition: the class competition bundle on the tiny mini dataset, and its scoring program run
the way Codabench and CodaLab run it (a fresh process, the reference data in INPUT/ref, the unzipped
submission in INPUT/res, scores written to OUTPUT) on the baseline, a perfect and a broken submission."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tpslab import competition
from tpslab.cli import main
from tpslab.metrics import tps_score
from tpslab.submission import read_ground_truth, read_submission, write_submission_zip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    # the session's shared cache, as tests/conftest.py sets it for each test
    cache = tmp_path_factory.getbasetemp() / "tpslab-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TPSLAB_CACHE", str(cache))
        mp.delenv("TPSLAB_DATA", raising=False)
        out = tmp_path_factory.mktemp("competition") / "class"
        result = competition.write_competition(out, preset="tiny", seed=0, start="2030-01-01")
        result["cache"] = cache
        yield result


def unzip(data: bytes, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(dest)
    return dest


def platform_run(bundle: Path, submission_zip: bytes, work: Path) -> subprocess.CompletedProcess:
    """What the platform does with an uploaded submission: unpack the task's scoring program and reference
    data from the bundle, the submission into input/res, and run the program's command in a new process."""
    with zipfile.ZipFile(bundle) as z:
        program = unzip(z.read("scoring_program.zip"), work / "program")
        unzip(z.read("reference_data.zip"), work / "input" / "ref")
    unzip(submission_zip, work / "input" / "res")
    command = (program / "metadata").read_text().split(":", 1)[1].split()
    command = [sys.executable if c == "python" else c for c in command]
    command = [c.replace("$program", str(program)).replace("$input", str(work / "input"))
               .replace("$output", str(work / "output")) for c in command]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(command, cwd=program, capture_output=True, text=True, env=env)


def test_bundle_holds_the_definition_programs_and_data(made):
    out = made["out"]
    definition = yaml.safe_load((out / "competition.yaml").read_text())
    assert definition["version"] == 2 and definition["phases"][0]["tasks"] == [0]
    columns = definition["leaderboards"][0]["columns"]
    assert [c["key"] for c in columns] == list(competition.COLUMNS) and columns[0]["index"] == 0
    task = definition["tasks"][0]
    with zipfile.ZipFile(out / "bundle.zip") as z:
        names = set(z.namelist())
        for name in (task["scoring_program"], task["reference_data"], definition["solutions"][0]["path"],
                     definition["image"], definition["terms"], *(p["file"] for p in definition["pages"])):
            assert name in names, name
        program = set(zipfile.ZipFile(io.BytesIO(z.read("scoring_program.zip"))).namelist())
        kit = set(zipfile.ZipFile(io.BytesIO(z.read("starting_kit.zip"))).namelist())
    assert {"score.py", "metadata", "metadata.yaml", "tpslab/__init__.py", "tpslab/metrics/__init__.py"} <= program
    assert "command: python3 /app/program/score.py" in (out / "scoring_program" / "metadata.yaml").read_text()
    assert {"README.md", "baseline.py", "baseline_submission.zip", "test_detections.json", "test_videos.txt"} == kit
    # the reference labels are the teacher's: not in the kit, not in the learners' dataset
    gt_vid, gt_part = read_ground_truth(out / "reference_data")
    videos = (out / "starting_kit" / "test_videos.txt").read_text().split()
    assert sorted(gt_vid) == sorted(videos) and len(videos) == made["videos"] == 8
    kit_text = b"".join(p.read_bytes() for p in (out / "starting_kit").iterdir())
    assert not any(label.encode() in kit_text for label in set(gt_vid.values()))
    import tpslab
    from tpslab.synthetic import mini_path

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TPSLAB_CACHE", str(made["cache"]))
        data = tpslab.load_dataset(mini_path("tiny", 0))
    test = data.videos[data.videos["video"].isin(videos)]
    assert len(test) == 8 and (test["split"].astype(str) == "test").all()
    assert (test["num_annotated_frames"] == 0).all() and not data.frames["video"].isin(videos).any()
    # the kit's detections cover the test videos, boxes without states
    detections = json.loads((out / "starting_kit" / "test_detections.json").read_text())
    assert sorted(detections) == sorted(videos)


def test_the_scoring_program_scores_the_baseline_as_the_platform_runs_it(made, tmp_path):
    out = made["out"]
    submission = (out / "starting_kit" / "baseline_submission.zip").read_bytes()
    run = platform_run(out / "bundle.zip", submission, tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"from {tmp_path / 'program' / 'tpslab'}" in run.stdout, "the copy of tpslab in the program is used"
    scores = json.loads((tmp_path / "output" / "scores.json").read_text())
    gt = read_ground_truth(out / "reference_data")
    expected = tps_score(*gt, *read_submission(out / "starting_kit" / "baseline_submission.zip"))
    assert scores == {"score": expected.area, "accuracy": expected.accuracy, "mean_psc": expected.mean_psc}
    assert scores == made["baseline"] and 0 < scores["score"] < 0.5
    lines = (tmp_path / "output" / "scores.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == list(competition.COLUMNS)
    assert float(lines[0].split(":")[1]) == pytest.approx(scores["score"], abs=1e-6)
    assert f"scores {scores['score']:.4f}" in (out / "starting_kit" / "README.md").read_text()


def test_a_perfect_submission_scores_the_maximum(made, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TPSLAB_CACHE", str(made["cache"]))
        tables, _ = competition.test_truth("tiny", 0)
    write_submission_zip(tmp_path / "perfect.zip", *competition.perfect_submission(tables))
    run = platform_run(made["out"] / "bundle.zip", (tmp_path / "perfect.zip").read_bytes(), tmp_path / "run")
    assert run.returncode == 0, run.stderr
    scores = json.loads((tmp_path / "run" / "output" / "scores.json").read_text())
    assert scores == {"score": 0.9999, "accuracy": 1.0, "mean_psc": 1.0}  # acc(t) = 1 at t = 1/10000 .. 9999/10000


def test_an_invalid_submission_fails_without_scores(made, tmp_path):
    pred_vid, pred_part = read_submission(made["out"] / "starting_kit" / "baseline_submission.zip")
    dropped = sorted(pred_vid)[0]
    del pred_vid[dropped], pred_part[dropped]
    write_submission_zip(tmp_path / "broken.zip", pred_vid, pred_part)
    run = platform_run(made["out"] / "bundle.zip", (tmp_path / "broken.zip").read_bytes(), tmp_path / "run")
    assert run.returncode == 1 and dropped in run.stderr
    assert not (tmp_path / "run" / "output" / "scores.json").exists()


def test_the_kits_baseline_script_writes_the_baseline_submission(made, tmp_path):
    kit = shutil.copytree(made["out"] / "starting_kit", tmp_path / "kit")
    (kit / "baseline_submission.zip").unlink()
    env = {**os.environ, "TPSLAB_CACHE": str(made["cache"])}
    run = subprocess.run([sys.executable, "baseline.py"], cwd=kit, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert read_submission(kit / "baseline_submission.zip") == \
        read_submission(made["out"] / "starting_kit" / "baseline_submission.zip")


def test_command_line(made, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TPSLAB_CACHE", str(made["cache"]))
    assert main(["competition", str(made["out"]), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tpslab competition: error:") and "not an empty folder" in err and len(err.splitlines()) == 1
    for bad in (["--drop", "1.5"], ["--start", "2030-13-01"], ["--seed", "-1"], ["--preset", "huge"]):
        assert main(["competition", str(tmp_path / "new"), *bad]) == 2, bad
        assert len(capsys.readouterr().err.splitlines()) == 1
    assert not (tmp_path / "new").exists()
    assert main(["competition", str(tmp_path / "new"), "--preset", "tiny", "--start", "2030-01-01"]) == 0
    printed = capsys.readouterr().out
    assert "bundle.zip" in printed and "baseline scores" in printed
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == sorted(p.name for p in made["out"].iterdir())
    # the same arguments make the same bundle, byte for byte (members dated 1980-01-01, one mode), and it
    # carries tpslab as source only: no compiled module built for this machine's Python
    assert (tmp_path / "new" / "bundle.zip").read_bytes() == (made["out"] / "bundle.zip").read_bytes()
    with zipfile.ZipFile(made["out"] / "bundle.zip") as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        with zipfile.ZipFile(io.BytesIO(z.read("scoring_program.zip"))) as program:
            names = program.namelist()
    assert "tpslab/challenge.py" in names and not [n for n in names if n.endswith((".so", ".pyd"))], names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".new.partial")]
