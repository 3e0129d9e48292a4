"""Teaching with the notebooks: exercises and their solutions in one source, the learners' version without
the solutions, a run that proves every exercise check tells right from wrong, and rendered pages.

Exercises are marked by cell tags (JupyterLab: the property inspector's "Cell tags"; Jupyter Notebook:
View > Cell Toolbar > Tags):

``exercise``
    The task: a markdown cell that says what to write, and one code cell where the learner writes it.
    That code cell binds each *answer name* to ``...`` (Ellipsis), e.g. ``left_arm_bag = ...``.
``solution``
    One or more code cells with the teacher's answer (binding the same names). The learners' version
    leaves them out (:func:`student_notebook`).
``check``
    One code cell of ``assert`` statements that compare the answer with what tpslab computes another way
    (or with values worked out by hand). It ends the exercise and is kept in both versions. Without an
    answer it must fail with an ``AssertionError`` (a first ``assert name is not ..., "..."`` says so
    kindly), with a wrong answer it must fail too, and with the solution it must pass.

:func:`exercises` reads and checks that structure: every exercise has its code cell, at least one
solution and its check, in that order, and an answer name is read only by the cells of its own
exercise, so the rest of the learners' version runs the same whether or not they answered.

:func:`run_notebook` executes a notebook in a fresh kernel, measuring its run time and the peak memory
of the kernel and its child processes, and, for every exercise, runs the check three more times:
before the solution (the learners' version: it must raise ``AssertionError``), with each answer
replaced by a wrong one (:func:`perturbed`: it must raise ``AssertionError``), then as the notebook
has it (it must pass). :func:`build_site` renders executed notebooks as self-contained HTML pages
(figures embedded as PNG data, the explorer shown as its static picture) and :func:`check_site`
verifies that each page has its figures.

``python -m tpslab.teaching student OUT NOTEBOOK...`` writes the learners' version;
``python -m tpslab.teaching site OUT NOTEBOOK... [--fast]`` builds and checks the pages. The Makefile's
``student`` and ``site`` targets call them. Running notebooks needs ``nbclient`` and ``nbconvert``
(JupyterLab brings both); memory is measured with ``psutil`` (ipykernel's dependency) when present.
"""

from __future__ import annotations

import argparse
import ast
import copy
import html
import importlib.util
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

EXERCISE, SOLUTION, CHECK = "exercise", "solution", "check"
#: Tags this module reads.
TAGS = (EXERCISE, SOLUTION, CHECK)
#: Text of a tqdm progress bar as it lands in a saved output (``" 0%|          | 0/7 [00:00<?, ?it/s]"``).
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")
_IMG = re.compile(r'<img[^>]+src="data:image/png;base64,')
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_STUDENT_NOTE = ("**Learners' version**: the solutions are left out. Write each answer in the cell of its "
                 "exercise; the check cell after it says whether it is right.")


class ExerciseError(ValueError):
    """A notebook whose exercise cells break the rules of :mod:`tpslab.teaching`; the message names the cell."""


# ----------------------------------------------------------------------------- notebooks as JSON


def read_notebook(path) -> dict:
    """A notebook file as its JSON dict."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_notebook(nb: dict, path) -> Path:
    """Write ``nb`` as JupyterLab does (1-space indent, a final newline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def source(cell: dict) -> str:
    """A cell's source as one string (files store it as a list of lines or a string)."""
    s = cell.get("source", "")
    return s if isinstance(s, str) else "".join(s)


def tags(cell: dict) -> list[str]:
    """The tags of a cell (an empty list when it has none)."""
    return list(cell.get("metadata", {}).get("tags", []))


def strip_outputs(nb: dict) -> dict:
    """``nb`` with every output and execution count removed (as notebooks are committed); a copy."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.get("metadata", {}).pop("widgets", None)
    return nb


# ----------------------------------------------------------------------------- the exercises


@dataclass
class Exercise:
    """One exercise of a notebook: cell indices of its ``code`` cell (the learner's), its ``solutions``
    and its ``check``; ``names`` are the answer names the code cell binds to ``...``; ``cells`` are all
    cells of the exercise (its markdown included)."""

    number: int
    code: int
    solutions: list[int]
    check: int
    names: list[str]
    cells: list[int] = field(default_factory=list)


def _parse(cell: dict, where: str) -> ast.Module:
    # IPython magics and shell escapes are not Python: blank them before parsing.
    text = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source(cell).splitlines())
    try:
        return ast.parse(text)
    except SyntaxError as e:
        raise ExerciseError(f"{where}: not valid Python ({e.msg}, line {e.lineno})") from None


def answer_names(cell: dict, where: str = "cell") -> list[str]:
    """The names a learner's code cell binds to ``...`` (``name = ...``), in order."""
    names = []
    for node in _parse(cell, where).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis:
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def _loaded_names(cell: dict, where: str) -> set[str]:
    return {n.id for n in ast.walk(_parse(cell, where)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def exercises(nb: dict, name: str = "notebook") -> list[Exercise]:
    """The exercises of ``nb``, in order; :class:`ExerciseError` when its tags break the rules.

    Rules: an ``exercise`` code cell binds at least one name to ``...``; it is followed by one or more
    ``solution`` cells and then one ``check`` cell (markdown cells tagged ``exercise`` may stand
    anywhere before the check); solution and check cells are code; a check has an ``assert``; an answer
    name is read by no cell outside its exercise.
    """
    out: list[Exercise] = []
    current: dict | None = None
    for i, cell in enumerate(nb["cells"]):
        t = set(tags(cell)) & set(TAGS)
        where = f"{name}, cell {i}"
        if len(t) > 1:
            raise ExerciseError(f"{where}: tagged {sorted(t)}; a cell has at most one of {TAGS}")
        if not t:
            continue
        tag = t.pop()
        if tag == EXERCISE:
            current = _exercise_cell(cell, i, where, current)
        elif cell["cell_type"] != "code":
            raise ExerciseError(f"{where}: a {tag} cell must be a code cell")
        elif tag == SOLUTION:
            if current is None or current["code"] is None:
                raise ExerciseError(f"{where}: a solution without an exercise code cell before it")
            current["solutions"].append(i)
            current["cells"].append(i)
        else:  # check
            if current is None or not current["solutions"]:
                raise ExerciseError(f"{where}: a check without a solution before it")
            if not any(isinstance(n, ast.Assert) for n in ast.walk(_parse(cell, where))):
                raise ExerciseError(f"{where}: a check cell needs at least one assert")
            current["cells"].append(i)
            out.append(Exercise(len(out) + 1, current["code"], current["solutions"], i, current["names"],
                                current["cells"]))
            current = None
    if current is not None:
        raise ExerciseError(f"{name}: the last exercise (cell {current['cells'][0]}) has no check cell")
    _check_answers_stay_inside(nb, out, name)
    return out


def _exercise_cell(cell: dict, i: int, where: str, current: dict | None) -> dict:
    """The exercise being read (``current``, or a new one) with cell ``i``, tagged ``exercise``, in it: its
    text (markdown, before the solution) or its code cell (one, binding its answer names to ``...``)."""
    current = current or {"code": None, "solutions": [], "cells": []}
    if cell["cell_type"] == "markdown":
        if current["solutions"]:
            raise ExerciseError(f"{where}: exercise text after the solution; the check must come first")
    else:
        if current["code"] is not None:
            raise ExerciseError(f"{where}: a second exercise code cell before the check of the first")
        names = answer_names(cell, where)
        if not names:
            raise ExerciseError(f"{where}: an exercise's code cell must bind its answer names to ... "
                                "(e.g. `answer = ...`)")
        current.update(code=i, names=names)
    current["cells"].append(i)
    return current


def _check_answers_stay_inside(nb: dict, found: list, name: str) -> None:
    """No cell outside an exercise reads its answer names (the learners' version has no solution)."""
    owner = {n: ex for ex in found for n in ex.names}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        read = _loaded_names(cell, f"{name}, cell {i}") & set(owner)
        for n in sorted(read):
            if i not in owner[n].cells:
                raise ExerciseError(f"{name}, cell {i}: reads {n!r}, the answer of exercise {owner[n].number}; "
                                    "only that exercise's cells may (the learners' version has no solution)")


def student_notebook(nb: dict, name: str = "notebook") -> dict:
    """The learners' version of ``nb``: the ``solution`` cells left out, outputs stripped, and a note
    after the title cell. The exercises are checked first (:func:`exercises`); ``nb`` is not changed."""
    exercises(nb, name)
    out = strip_outputs(nb)
    out["cells"] = [c for c in out["cells"] if SOLUTION not in tags(c)]
    note = {"cell_type": "markdown", "metadata": {"tags": ["student-note"]}, "source": _STUDENT_NOTE}
    if any("id" in c for c in out["cells"]):
        note["id"] = "tpslab-student-note"
    out["cells"].insert(1 if out["cells"] else 0, note)  # after the title
    out.setdefault("metadata", {})["tpslab"] = {"version": "learners"}
    return out


def write_student(notebooks: Iterable, out) -> list[Path]:
    """Write the learners' version of each notebook into folder ``out`` (same file names)."""
    paths = []
    for path in notebooks:
        path = Path(path)
        paths.append(write_notebook(student_notebook(read_notebook(path), path.name), Path(out) / path.name))
    return paths


# ----------------------------------------------------------------------------- wrong answers


def perturbed(value):
    """A wrong answer close to ``value``, to prove that a check rejects answers that are merely close.

    Integers get 1 added; floats (and numeric arrays, Series, DataFrames) are scaled by 1.25 and get 1
    added; strings get a
    character appended; booleans flip; sequences, sets and dicts lose their last item (or gain one when
    empty); a callable returns the perturbed result of the original. Raises TypeError for other types.
    """
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return not value
    if isinstance(value, (int, np.integer)):
        return value + 1
    if isinstance(value, (float, np.floating)):
        return value * 1.25 + 1
    if isinstance(value, str):
        return value + "?"
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency of tpslab
        pd = None
    if pd is not None and isinstance(value, (pd.Series, pd.DataFrame)):
        numeric = value.select_dtypes("number") if isinstance(value, pd.DataFrame) else value
        if isinstance(value, pd.DataFrame) and numeric.shape[1]:
            out = value.copy()
            out[numeric.columns] = numeric * 1.25 + 1
            return out
        if isinstance(value, pd.Series) and pd.api.types.is_numeric_dtype(value):
            return value * 1.25 + 1
        return value.iloc[:-1] if len(value) else value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iufc":
            return value * 1.25 + 1
        if value.dtype.kind == "b":
            return ~value
        return value[:-1]
    if isinstance(value, dict):
        return dict(list(value.items())[:-1]) if value else {"?": None}
    if isinstance(value, (list, tuple)):
        return type(value)(value[:-1]) if value else type(value)([None])
    if isinstance(value, (set, frozenset)):
        return type(value)(sorted(value, key=repr)[:-1]) if value else type(value)({None})
    if callable(value):
        def wrong(*args, **kwargs):
            return perturbed(value(*args, **kwargs))

        return wrong
    raise TypeError(f"no wrong answer is known for a {type(value).__name__}")


# ----------------------------------------------------------------------------- running notebooks


class NotebookRunError(RuntimeError):
    """A notebook cell failed, or an exercise check did not behave (see :func:`run_notebook`)."""


@dataclass
class RunResult:
    """What :func:`run_notebook` measured: the executed notebook (a dict, outputs in place), ``seconds``
    (kernel start to the last cell), ``peak_mib`` (peak resident memory of the kernel and its children,
    summed; None without psutil) and, per exercise, ``checks``: the error name each check run gave
    (``before``: without the solution; ``wrong``: with :func:`perturbed` answers; ``after``: None)."""

    path: str
    notebook: dict
    seconds: float
    peak_mib: float | None
    fast: bool
    checks: list[dict]


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class _MemorySampler:
    """Samples the summed RSS of a kernel and its children every ``interval`` seconds in a thread."""

    def __init__(self, client, interval: float = 0.1):
        self.client, self.interval, self.peak = client, interval, 0
        self.available = importlib.util.find_spec("psutil") is not None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pid(self):
        km = getattr(self.client, "km", None)
        prov = getattr(km, "provisioner", None) if km is not None else None
        return getattr(prov, "pid", None) or getattr(getattr(prov, "process", None), "pid", None)

    def _run(self):
        while not self._stop.is_set():
            pid = self._pid()
            if pid:
                self.peak = max(self.peak, _tree_rss(pid))
            self._stop.wait(self.interval)

    def __enter__(self):
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.available:
            self._thread.join()


def _code_cell(text: str) -> dict:
    return {"cell_type": "code", "id": "tpslab-run", "metadata": {}, "source": text, "outputs": [],
            "execution_count": None}


def _error_name(client, cell: dict, index: int) -> str | None:
    """Execute a copy of ``cell`` outside the notebook; the name of the exception it raised, or None.

    nbclient stores an executed cell at its index in the notebook; the cell that was there is put back,
    so these extra runs leave no trace in the notebook."""
    from nbclient.exceptions import CellExecutionError

    trial = copy.deepcopy(cell)
    trial["outputs"] = []
    kept = client.nb.cells[index]
    try:
        client.execute_cell(_node(trial), index, store_history=False)
    except CellExecutionError as e:
        return e.ename
    finally:
        client.nb.cells[index] = kept
    return None


def _run_quietly(client, text: str, index: int) -> None:
    """Run ``text`` in the kernel (it must not fail), leaving the notebook's cell at ``index`` as it was."""
    kept = client.nb.cells[index]
    try:
        client.execute_cell(_node(_code_cell(text)), index, store_history=False)
    finally:
        client.nb.cells[index] = kept


def _node(cell: dict):
    import nbformat

    return nbformat.from_dict({**cell, "source": source(cell)})


def _as_node(nb: dict):
    """``nb`` as an nbformat node (sources joined into strings, as nbclient and nbconvert want them)."""
    import nbformat

    return nbformat.reads(json.dumps(nb), as_version=4)


def run_notebook(path, *, fast: bool = False, timeout: int = 1800, check_exercises: bool = True,
                 env: dict | None = None) -> RunResult:
    """Execute the notebook at ``path`` top to bottom in a fresh kernel started in its folder.

    ``fast`` sets ``TPSLAB_FAST=1`` for the kernel (CI's mode); ``env`` adds more variables. With
    ``check_exercises``, each exercise's check runs before its first solution (it must raise
    ``AssertionError``: that is what the learners' version shows), then, once the solutions ran, with
    every answer name bound to :func:`perturbed` of its value (it must raise ``AssertionError`` again),
    then in place (it must pass). Those extra runs leave no output in the notebook. Raises
    :class:`NotebookRunError` naming the cell when a cell fails or a check misbehaves.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = read_notebook(path)
    found = {ex.check: ex for ex in exercises(nb, path.name)} if check_exercises else {}
    first_solution = {ex.solutions[0]: ex for ex in found.values()}
    node = _as_node(strip_outputs(nb))
    variables = {"TPSLAB_FAST": "1" if fast else None, **(env or {})}
    saved = {k: os.environ.get(k) for k in variables}
    for k, v in variables.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    client = NotebookClient(node, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    checks: list[dict] = []
    t0 = time.perf_counter()
    try:
        with _MemorySampler(client) as memory, client.setup_kernel():
            for k, v in saved.items():  # the kernel has its environment; restore ours
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            if found:
                _run_quietly(client, "from tpslab.teaching import perturbed as _tpslab_wrong", 0)
            for i, cell in enumerate(node.cells):
                if i in first_solution:
                    ex = first_solution[i]
                    before = _error_name(client, nb["cells"][ex.check], ex.check)
                    if before != "AssertionError":
                        raise NotebookRunError(
                            f"{path.name}, cell {ex.check}: the check of exercise {ex.number} must raise "
                            f"AssertionError before the solution (the learners' version); it "
                            + ("passed" if before is None else f"raised {before}"))
                if i in found:
                    ex = found[i]
                    keep = "; ".join(f"_tpslab_keep_{n} = {n}; {n} = _tpslab_wrong({n})" for n in ex.names)
                    _run_quietly(client, keep, i)
                    wrong = _error_name(client, nb["cells"][i], i)
                    back = "; ".join(f"{n} = _tpslab_keep_{n}; del _tpslab_keep_{n}" for n in ex.names)
                    _run_quietly(client, back, i)
                    if wrong != "AssertionError":
                        raise NotebookRunError(
                            f"{path.name}, cell {i}: the check of exercise {ex.number} must raise AssertionError "
                            "for a wrong answer (its solution's value, perturbed); it "
                            + ("passed" if wrong is None else f"raised {wrong}"))
                    checks.append({"exercise": ex.number, "cell": i, "names": ex.names, "before": "AssertionError",
                                   "wrong": wrong})
                if cell.cell_type == "code":
                    try:
                        client.execute_cell(cell, i)
                    except CellExecutionError as e:
                        raise NotebookRunError(f"{path.name}, cell {i} failed: {e.ename}: {e.evalue}") from None
            client.set_widgets_metadata()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - t0
    peak = memory.peak / 2 ** 20 if memory.available else None
    return RunResult(str(path), json.loads(nbformat.writes(node)), round(seconds, 1),
                     None if peak is None else round(peak), fast, checks)


def run_until_first_check(path, *, fast: bool = True, timeout: int = 1800) -> dict:
    """Execute the notebook at ``path`` (a learners' version) up to its first ``check`` cell, which must
    raise ``AssertionError``; every cell before it must run. Returns ``{"cells": n, "check": index,
    "error": ename, "seconds": s}``; raises :class:`NotebookRunError` otherwise."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = strip_outputs(read_notebook(path))
    first = next((i for i, c in enumerate(nb["cells"]) if CHECK in tags(c)), None)
    if first is None:
        raise NotebookRunError(f"{path.name}: no check cell")
    if any(SOLUTION in tags(c) for c in nb["cells"][:first]):
        raise NotebookRunError(f"{path.name}: a solution cell comes before the first check: not a learners' version")
    node = _as_node(nb)
    saved = os.environ.get("TPSLAB_FAST")
    if fast:
        os.environ["TPSLAB_FAST"] = "1"
    else:
        os.environ.pop("TPSLAB_FAST", None)
    client = NotebookClient(node, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    t0 = time.perf_counter()
    try:
        with client.setup_kernel():
            for i, cell in enumerate(node.cells[:first + 1]):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, i)
                except CellExecutionError as e:
                    if i == first and e.ename == "AssertionError":
                        return {"cells": first, "check": i, "error": e.ename,
                                "seconds": round(time.perf_counter() - t0, 1)}
                    raise NotebookRunError(f"{path.name}, cell {i} failed: {e.ename}: {e.evalue}") from None
    finally:
        if saved is None:
            os.environ.pop("TPSLAB_FAST", None)
        else:
            os.environ["TPSLAB_FAST"] = saved
    raise NotebookRunError(f"{path.name}, cell {first}: the first check passed without an answer")


# ----------------------------------------------------------------------------- rendered pages


def progress_bars(nb: dict) -> list[tuple[int, str]]:
    """``(cell index, text)`` of every saved output that holds a progress bar's text (e.g. ``0%| | 0/7``)."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [out.get("data", {}).get("text/plain", "")]
            for t in texts:
                t = t if isinstance(t, str) else "".join(t)
                if PROGRESS_BAR.search(t):
                    found.append((i, t.strip()[:80]))
    return found


def figures(nb: dict) -> int:
    """How many PNG pictures an executed notebook's outputs hold."""
    return sum("image/png" in out.get("data", {}) for c in nb["cells"] for out in c.get("outputs", []))


def static_outputs(nb: dict) -> dict:
    """``nb`` for a page without a kernel: an output that has a widget view and a PNG picture of it (the
    explorer) keeps the picture only, so the page shows it without loading widget code from the network;
    the saved widget state is dropped. A copy."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if _WIDGET_VIEW in data and "image/png" in data:
                del data[_WIDGET_VIEW]
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def render_html(nb: dict) -> str:
    """One self-contained HTML page of an executed notebook (nbconvert's ``lab`` template; pictures
    embedded as PNG data)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(_as_node(static_outputs(nb)))
    return body


def check_page(page: str, expected_figures: int, name: str = "page") -> list[str]:
    """Problems of a rendered page: fewer embedded PNG pictures than ``expected_figures`` (or none at
    all), a widget view left for a browser to fetch code for, or a progress bar's text."""
    problems = []
    n = len(_IMG.findall(page))
    if n == 0 or n < expected_figures:
        problems.append(f"{name}: {n} embedded figures, expected {max(expected_figures, 1)}")
    if f'type="{_WIDGET_VIEW}"' in page:
        problems.append(f"{name}: a widget view needs widget code from the network; show its static picture")
    text = re.sub(r"<[^>]+>", " ", page)
    bar = PROGRESS_BAR.search(html.unescape(text))
    if bar:
        problems.append(f"{name}: a progress bar's text is in the page: {bar.group(0)!r}")
    return problems


SITE_RECORD = "site.json"


def build_site(notebooks: Sequence, out, *, fast: bool = False, timeout: int = 1800, log=print) -> dict:
    """Execute each notebook (:func:`run_notebook`, exercise checks included), write its page into folder
    ``out`` (``NN_topic.html``) and ``index.html`` linking them with their run time and peak memory, and
    record what was built in ``out/site.json``; then :func:`check_site`. Returns the record."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for path in notebooks:
        path = Path(path)
        result = run_notebook(path, fast=fast, timeout=timeout)
        bars = progress_bars(result.notebook)
        if bars:
            raise NotebookRunError(f"{path.name}, cell {bars[0][0]}: a progress bar was saved in the output "
                                   f"({bars[0][1]!r}); pass progress=False")
        page = out / (path.stem + ".html")
        page.write_text(render_html(result.notebook), encoding="utf-8")
        entry = {"notebook": path.name, "page": page.name, "title": _title(result.notebook), "fast": fast,
                 "seconds": result.seconds, "peak_mib": result.peak_mib, "figures": figures(result.notebook),
                 "exercises": len(result.checks)}
        pages.append(entry)
        if log:
            log(f"{path.name}: {result.seconds:.0f} s, peak {result.peak_mib} MiB, {entry['figures']} figures, "
                f"{len(result.checks)} exercises checked -> {page}")
    record = {"fast": fast, "pages": pages}
    (out / "index.html").write_text(_index(record), encoding="utf-8")
    (out / SITE_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    problems = check_site(out)
    if problems:
        raise NotebookRunError("; ".join(problems))
    return record


def check_site(out) -> list[str]:
    """Problems of a site :func:`build_site` wrote: missing pages, pages without their figures
    (:func:`check_page`), an index that does not link every page."""
    out = Path(out)
    try:
        record = json.loads((out / SITE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [f"{out}: no readable {SITE_RECORD} ({e})"]
    problems = []
    index = (out / "index.html").read_text(encoding="utf-8") if (out / "index.html").exists() else ""
    for entry in record["pages"]:
        page = out / entry["page"]
        if not page.exists():
            problems.append(f"{page}: missing")
            continue
        problems += check_page(page.read_text(encoding="utf-8"), entry["figures"], entry["page"])
        if f'href="{entry["page"]}"' not in index:
            problems.append(f"index.html: no link to {entry['page']}")
    return problems


def _title(nb: dict) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "notebook"


def _index(record: dict) -> str:
    mode = "fast mode (TPSLAB_FAST=1)" if record["fast"] else "full mode"
    rows = "\n".join(
        f'<tr><td><a href="{html.escape(p["page"])}">{html.escape(p["title"])}</a></td>'
        f'<td>{p["seconds"]:.0f} s</td><td>{"?" if p["peak_mib"] is None else p["peak_mib"]} MiB</td>'
        f'<td>{p["figures"]}</td><td>{p["exercises"]}</td></tr>' for p in record["pages"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tpslab tutorials</title>
<style>body{{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.5}}
table{{border-collapse:collapse}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}</style>
</head><body>
<h1>tpslab tutorials</h1>
<p>The notebooks of <code>notebooks/</code>, executed on the mini dataset in {mode}, with their outputs and
figures, exercises with their solutions. Run time and peak memory (kernel and its worker processes)
were measured while building these pages.</p>
<table><tr><th>notebook</th><th>run time</th><th>peak memory</th><th>figures</th><th>exercises</th></tr>
{rows}
</table>
</body></html>
"""


# ----------------------------------------------------------------------------- command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tpslab.teaching", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("student", help="write the learners' version (no solutions) of each notebook into OUT")
    p.add_argument("out")
    p.add_argument("notebooks", nargs="+")
    p = sub.add_parser("site", help="execute the notebooks (checking every exercise) and write HTML pages into OUT")
    p.add_argument("out")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--fast", action="store_true", help="TPSLAB_FAST=1, as in CI")
    p.add_argument("--timeout", type=int, default=1800, help="seconds a cell may take (default: 1800)")
    p = sub.add_parser("check-site", help="verify the pages in OUT have their figures")
    p.add_argument("out")
    args = parser.parse_args(argv)
    try:
        if args.command == "student":
            for path in write_student(args.notebooks, args.out):
                print(path)
        elif args.command == "site":
            record = build_site(args.notebooks, args.out, fast=args.fast, timeout=args.timeout)
            print(f"{len(record['pages'])} pages in {Path(args.out) / 'index.html'}")
        else:
            problems = check_site(args.out)
            for p in problems:
                print(p)
            return 1 if problems else 0
    except (ExerciseError, NotebookRunError, OSError) as e:
        print(f"tpslab.teaching {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
