import os
import sys
from pathlib import Path

# Two shared cores: one BLAS/OpenMP thread per process (set before numpy or torch load their pools).
# Oversubscribed thread pools made single tests 20x slower on a busy machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test helper modules (release.py, ...)


def _session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "tpslab-cache"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's caches out of the user's home; share one mini dataset per session."""
    monkeypatch.setenv("TPSLAB_CACHE", str(_session_cache(tmp_path_factory)))
    monkeypatch.delenv("TPSLAB_DATA", raising=False)
    yield


# ----------------------------------------------------------------------------- shared data and models
# Session fixtures live here, not in helper modules: a fixture imported into several test modules is a
# separate fixture in each, and a session-scoped one is then made once per module.


def _made_once(tmp_path_factory, name: str, make):
    """``make()`` done once per test run. Under pytest-xdist each worker is a session of its own: the first to
    get here makes the value and pickles it into the run's shared temporary folder, under a lock, and the
    others wait and read it (the fitted recogniser is 8 s of CPU; two workers made it twice)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make()
    import pickle

    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / f"{name}.pickle"
    with FileLock(f"{shared}.lock"):
        if shared.is_file():
            return pickle.loads(shared.read_bytes())
        value = make()
        shared.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        return value


@pytest.fixture(scope="session")
def tiny_record(tmp_path_factory):
    """The generator's record of the tiny mini dataset (preset "tiny", seed 0), kept in the session's cache
    where ``ensure_mini("tiny", 0)`` looks for it (so the tests that reach the mini dataset through the cache
    use this one). Generated once per run: other pytest-xdist workers copy the folder. Tests read it and
    never write into it."""
    import dataclasses
    import shutil

    from tpslab import synthetic

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TPSLAB_CACHE", str(_session_cache(tmp_path_factory)))
        root = synthetic.mini_path("tiny", 0)
    if root.is_dir():  # made earlier in this session by ensure_mini (a test that ran first): the same data
        return synthetic.plan_record(root, "tiny", 0)
    root.parent.mkdir(parents=True, exist_ok=True)
    made = _made_once(tmp_path_factory, "tiny-record",
                      lambda: synthetic.generate(root, preset="tiny", seed=0, progress=False))
    if made.root == root:
        return made
    shutil.copytree(made.root, root)
    path = made.videos["path"]
    moved = path.map(lambda p: str(root / Path(p).relative_to(made.root))).astype(path.dtype)
    return dataclasses.replace(made, root=root, videos=made.videos.assign(path=moved))


@pytest.fixture(scope="session")
def tiny(tiny_record):
    """The tiny mini dataset loaded (tiny_models.Tiny): dataset, record, train/test videos, labels."""
    from tiny_models import make_tiny

    return make_tiny(tiny_record)


@pytest.fixture(scope="session")
def tiny_crops(tiny, tmp_path_factory):
    """In-memory crops (32 px, context 1.5) of every part of the train videos and of the test videos:
    (train crops, train part rows, test crops, test part rows)."""
    from tpslab.crops import crop_parts, video_paths

    paths = video_paths(tiny.dataset)
    train, test = tiny.dataset.parts, tiny.test_parts
    crops = _made_once(tmp_path_factory, "tiny-crops",
                       lambda: (crop_parts(train, paths, progress=False), crop_parts(test, paths, progress=False)))
    return crops[0], train, crops[1], test


@pytest.fixture(scope="session")
def tiny_recognizer(tiny, tiny_crops, tmp_path_factory):
    """A part-state recogniser fitted on the tiny train crops (tiny_models.RECOGNIZER_OPTIONS). Shared:
    tests must not fit or change it."""
    from tiny_models import RECOGNIZER_OPTIONS
    from tpslab.models.recognizer import PartStateRecognizer

    crops, boxes, _, _ = tiny_crops
    return _made_once(tmp_path_factory, "tiny-recognizer",
                      lambda: PartStateRecognizer(**RECOGNIZER_OPTIONS).fit(crops, boxes, tiny.dataset.vocab))


def pytest_collection_finish(session):
    """What the imports and the collection made (modules, test items: most of the heap) lives as long as
    the session: out of the garbage collector's full passes, which scanned it again and again."""
    import gc

    gc.freeze()


def pytest_configure(config):
    # Bytecode caches for tpslab and the tests (__pycache__, git-ignored) even where PYTHONDONTWRITEBYTECODE is
    # set (this machine's environment sets it): without them every run, and every subprocess a test starts,
    # compiled them again (4 s of collection alone). Installed packages come with theirs.
    sys.dont_write_bytecode = False

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # pools a plugin loaded before this file ran
    # torch reads OMP_NUM_THREADS (set above) when a test module first imports it: one intra-op thread. Not
    # imported here: under pytest-xdist this hook also runs in the controller, which runs no test (2.4 s).




# The modules that train torch models run in one pytest-xdist worker: the first optimizer a process builds
# imports torch._dynamo (3.7 s of CPU), once instead of once per worker. Every other module is sent whole to
# a worker, as ``--dist loadfile`` does, the longest first so that the workers end together (measured in
# November 2026; an order gone stale costs balance, never a result). (``--dist loadgroup`` and xdist_group
# marks cannot group modules with pytest 9.2: pytest-xdist 3.8 renames test ids through an attribute pytest
# no longer reads.)
TORCH_TRAINING = {"test_models_recognizer.py", "test_models_temporal.py", "test_pipeline.py", "test_training.py",
                  "test_training_inputs.py"}
LONGEST_FIRST = ("torch-training", "test_video.py", "test_widgets.py", "test_synthetic.py", "test_interop.py",
                 "test_models_compositional.py", "test_submission.py", "test_frames.py", "test_torchdata.py",
                 "test_metrics_official.py", "test_crops.py", "test_partfile.py", "test_validate.py", "test_viz.py",
                 "test_cli.py", "test_dataset.py", "test_memory.py", "test_layers.py")


@pytest.hookimpl(optionalhook=True)  # a run without pytest-xdist (-p no:xdist) does not know this hook
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # pytest-xdist's own scheduler
    from xdist.scheduler import LoadFileScheduling

    class Modules(LoadFileScheduling):
        def _split_scope(self, nodeid):
            module = Path(super()._split_scope(nodeid)).name
            return "torch-training" if module in TORCH_TRAINING else module

        def _assign_work_unit(self, node):
            for scope in reversed(LONGEST_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return Modules(config, log)
