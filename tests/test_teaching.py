"""tpslab.teaching on small notebooks written here: exercise structure, the learners' version, wrong answers,
the checked run, the first-check run of a learners' version, and the rendered pages with their figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tpslab import teaching


def md(text, tags=()):
    return {"cell_type": "markdown", "metadata": {"tags": list(tags)} if tags else {}, "source": text}


def code(text, tags=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)} if tags else {}, "source": text, "outputs": [],
            "execution_count": None}


CHECK = ('assert square is not ..., "Exercise 1: write your answer above"\n'
         'assert square == 49, "Exercise 1: not yet"\nprint("Exercise 1: right")')


def notebook(*cells):
    for i, cell in enumerate(cells):
        cell.setdefault("id", f"cell-{i}")
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def good():
    return notebook(
        md("# A title"),
        code("x = 7"),
        md("## Exercise 1\nSquare `x`.", [teaching.EXERCISE]),
        code("square = ...  # your answer", [teaching.EXERCISE]),
        code("square = x * x", [teaching.SOLUTION]),
        code(CHECK, [teaching.CHECK]),
        code("import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
             "%matplotlib inline\nplt.plot([x, 2 * x])\nplt.show()"),
    )


def test_exercises_are_read_in_order():
    (ex,) = teaching.exercises(good())
    assert (ex.number, ex.code, ex.solutions, ex.check, ex.names) == (1, 3, [4], 5, ["square"])
    assert ex.cells == [2, 3, 4, 5]


@pytest.mark.parametrize("cells, message", [
    ([code("a = ...", ["exercise"]), code("a = 1", ["solution"])], "has no check"),
    ([code("a = ...", ["exercise"]), code("assert a == 1", ["check"])], "check without a solution"),
    ([code("a = 1", ["solution"])], "solution without an exercise"),
    ([code("a = 2", ["exercise"])], "bind its answer names"),
    ([code("a = ...", ["exercise"]), code("a = 1", ["solution"]), code("print(a)", ["check"])], "assert"),
    ([code("a = ...", ["exercise"]), code("a = 1", ["solution"]), code("assert a == 1", ["check"]),
      code("print(a + 1)")], "reads 'a'"),
    ([code("a = ...", ["exercise", "check"])], "at most one"),
    ([md("text", ["solution"])], "must be a code cell"),
])
def test_broken_exercises_are_refused_naming_the_cell(cells, message):
    with pytest.raises(teaching.ExerciseError, match=message):
        teaching.exercises(notebook(*cells), "nb.ipynb")


def test_student_version_leaves_out_the_solutions_only(tmp_path):
    full = good()
    full["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "7\n"}]
    full["cells"][1]["execution_count"] = 3
    student = teaching.student_notebook(full)
    assert not any(teaching.SOLUTION in teaching.tags(c) for c in student["cells"])
    kept = [c for c in student["cells"] if "student-note" not in teaching.tags(c)]
    assert [teaching.source(c) for c in kept] == [teaching.source(c) for c in full["cells"]
                                                  if teaching.SOLUTION not in teaching.tags(c)]
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None
               for c in student["cells"] if c["cell_type"] == "code")
    assert teaching.source(student["cells"][1]).startswith("**Learners' version**")
    assert full["cells"][1]["outputs"], "the source notebook is left as it was"
    src = tmp_path / "01_a.ipynb"
    teaching.write_notebook(full, src)
    (out,) = teaching.write_student([src], tmp_path / "student")
    assert out.name == "01_a.ipynb" and json.loads(out.read_text())["metadata"]["tpslab"] == {"version": "learners"}


def test_wrong_answers_differ_from_right_ones():
    assert teaching.perturbed(3) == 4 and teaching.perturbed(0.0) == 1.0 and teaching.perturbed(True) is False
    assert teaching.perturbed("run") != "run"
    s = pd.Series([0.25, 0.75], index=["a", "b"])
    assert not np.allclose(teaching.perturbed(s), s)
    text = pd.Series(["a", "b"])
    assert len(teaching.perturbed(text)) == 1
    assert teaching.perturbed({"a": 1, "b": 2}) == {"a": 1} and teaching.perturbed([]) == [None]
    assert teaching.perturbed(lambda v: 2 * v)(3) == 7
    assert not np.array_equal(teaching.perturbed(np.array([True, False])), [True, False])
    with pytest.raises(TypeError):
        teaching.perturbed(object())


def test_progress_bar_text_is_found():
    nb = notebook(code("x"))
    nb["cells"][0]["outputs"] = [{"output_type": "display_data", "metadata": {},
                                  "data": {"text/plain": "part ablation:   0%|          | 0/7 [00:00<?, ?fit/s]"}}]
    assert teaching.progress_bars(nb) == [(0, "part ablation:   0%|          | 0/7 [00:00<?, ?fit/s]")]
    nb["cells"][0]["outputs"][0]["data"]["text/plain"] = "accuracy 93% | 45/48 videos"
    assert teaching.progress_bars(nb) == []


def test_pages_are_checked_for_figures_widgets_and_bars():
    img = '<img alt="No description" src="data:image/png;base64,iVBOR">'
    assert teaching.check_page(f"<p>{img}{img}</p>", 2) == []
    assert "1 embedded figures, expected 2" in teaching.check_page(f"<p>{img}</p>", 2)[0]
    assert teaching.check_page("<p>text</p>", 0), "a page without any figure is a problem"
    widget = f'{img}<script type="application/vnd.jupyter.widget-view+json">{{}}</script>'
    assert "widget" in teaching.check_page(widget, 1)[0]
    assert "progress bar" in teaching.check_page(f"{img}<pre>  0%|          | 0/7 [00:00&lt;?, ?it/s]</pre>", 1)[0]


def test_a_widget_output_with_a_picture_keeps_the_picture():
    nb = notebook(code("explorer"))
    nb["cells"][0]["outputs"] = [{"output_type": "execute_result", "metadata": {}, "execution_count": 1, "data": {
        "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
        "image/png": "iVBOR", "text/plain": "Explorer"}}]
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    static = teaching.static_outputs(nb)
    assert set(static["cells"][0]["outputs"][0]["data"]) == {"image/png", "text/plain"}
    assert "widgets" not in static["metadata"] and "widgets" in nb["metadata"]


@pytest.mark.slow
def test_checked_run_site_and_learners_first_check(tmp_path):
    src = teaching.write_notebook(good(), tmp_path / "01_good.ipynb")
    result = teaching.run_notebook(src)
    assert result.checks == [{"exercise": 1, "cell": 5, "names": ["square"], "before": "AssertionError",
                              "wrong": "AssertionError"}]
    outputs = result.notebook["cells"][5]["outputs"]
    assert ["".join(o.get("text", "")) for o in outputs] == ["Exercise 1: right\n"], \
        "only the real check's output is kept"
    assert teaching.figures(result.notebook) == 1 and result.seconds > 0
    assert [teaching.source(c) for c in result.notebook["cells"]] == [teaching.source(c) for c in good()["cells"]], \
        "the extra runs leave the notebook's cells as they were"
    assert result.peak_mib is None or result.peak_mib > 10

    # a check that accepts anything but `...` is caught
    lax = good()
    lax["cells"][5]["source"] = 'assert square is not ..., "Exercise 1: write your answer above"'
    teaching.write_notebook(lax, tmp_path / "02_lax.ipynb")
    with pytest.raises(teaching.NotebookRunError, match="must raise AssertionError for a wrong answer"):
        teaching.run_notebook(tmp_path / "02_lax.ipynb")

    (student,) = teaching.write_student([src], tmp_path / "student")
    first = teaching.run_until_first_check(student)
    assert first["error"] == "AssertionError" and first["check"] == 5

    record = teaching.build_site([src], tmp_path / "site", log=None)
    assert record["pages"][0]["figures"] == 1 and record["pages"][0]["exercises"] == 1
    assert record["pages"][0]["title"] == "A title"
    assert teaching.check_site(tmp_path / "site") == []
    (tmp_path / "site" / "01_good.html").write_text("<p>no figures</p>")
    assert teaching.check_site(tmp_path / "site")
