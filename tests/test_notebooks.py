"""The tutorials as committed: conventions and exercises, and each learners' version run up to its first
exercise check, which must fail without an answer.

The full notebooks run under nbval (``make test``), and ``python -m tpslab.teaching site`` runs each of
them once more checking every exercise (before its solution, with a wrong answer, with the solution).
The runs here use the mini dataset the notebooks use (``make mini``), not the tests' own cache.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tpslab import teaching
from tpslab.home import cache_home

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: The cache folder of the user's mini dataset, read before tests/conftest.py points each test elsewhere.
USER_CACHE = str(cache_home())


def test_there_are_four_tutorials():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_follows_the_conventions(path):
    nb = teaching.read_notebook(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), "commit notebooks stripped"
    assert "widgets" not in nb["metadata"]
    assert "parameters" in teaching.tags(code[0]), "the first code cell holds the parameters"
    sources = [teaching.source(c) for c in code]
    assert any("viz.notebook_style()" in s for s in sources), "legible figure defaults"
    assert not any('rcParams["figure.dpi"]' in s for s in sources)
    # calls whose progress bar is on by default are told not to draw it (the exercise run also fails on any
    # progress bar saved in an output: tpslab.teaching.progress_bars)
    for s in sources:
        for call in (n for n in ast.walk(ast.parse(s)) if isinstance(n, ast.Call)):
            name = getattr(call.func, "attr", getattr(call.func, "id", ""))
            if name in {"part_ablation", "extract_frames", "export_coco", "crops", "TemporalClassifier",
                        "PartStateRecognizer"}:
                assert any(k.arg == "progress" for k in call.keywords), f"{name}(...) without progress=False"
    found = teaching.exercises(nb, path.name)
    assert len(found) >= 2
    for ex in found:
        check = teaching.source(nb["cells"][ex.check])
        assert check.startswith(f"assert {ex.names[0]} is not ...,"), "a check says kindly when there is no answer"
        assert f"Exercise {ex.number}" in check and f"Exercise {ex.number}" in teaching.source(nb["cells"][ex.cells[0]])
    student = teaching.student_notebook(nb, path.name)
    assert sum(teaching.CHECK in teaching.tags(c) for c in student["cells"]) == len(found)
    assert not any(teaching.SOLUTION in teaching.tags(c) for c in student["cells"])


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_learners_version_runs_until_its_first_check_fails(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TPSLAB_CACHE", USER_CACHE)
    (student,) = teaching.write_student([path], tmp_path)
    result = teaching.run_until_first_check(student, fast=True, timeout=900)
    assert result["error"] == "AssertionError" and result["cells"] > 5
