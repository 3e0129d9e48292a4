"""The tiny mini dataset shared by the model tests, and a smaller preset for tests of the generator itself.

The session fixtures built on these (``tiny_record``, ``tiny``, ``tiny_crops``, ``tiny_recognizer``) live
in ``conftest.py``: a fixture imported into several test modules is a separate fixture in each, and a
session-scoped one was then made once per module.
"""

from dataclasses import dataclass

import pandas as pd

from tpslab.synthetic import Preset

#: A smaller preset than "tiny" for the tests of generation itself (determinism, workers, caching, the
#: command): two classes, six videos. The generator's output does not depend on the preset's size.
MICRO = Preset("micro", ("push_up", "salsa_dancing"), (2, 2), 1, (28, 32), (192, 144))

#: The recogniser every model test shares (tiny dataset, train videos): narrower than the default (width 16),
#: three epochs at twice the default peak rate, to train in 5 s; well above the per-part prior on the test
#: videos (0.74 against 0.63) and, in the pipeline, above the per-(action, part) majority states (mean PSC
#: 0.73 against 0.70).
RECOGNIZER_OPTIONS = dict(epochs=3, width=8, lr=6e-3, threads=1, progress=False)


@dataclass
class Tiny:
    dataset: object  # tpslab.dataset.TPSDataset of the tiny release
    record: object  # the generator's record (ground truth of the test videos too)
    train: list  # train split videos
    test: list  # test split videos (ground truth in record.test_parts)
    labels: dict  # {video: action} for every video
    test_parts: pd.DataFrame


def make_tiny(record) -> Tiny:
    from tpslab import load_dataset

    ds = load_dataset(record.root, progress=False, cache=False, workers=1)
    v = ds.videos
    labels = dict(zip(v["video"].astype(str), v["label"].astype(str)))
    train = sorted(v.loc[v["split"] == "train", "video"].astype(str))
    test = sorted(v.loc[v["split"] == "test", "video"].astype(str))
    return Tiny(ds, record, train, test, labels, record.test_parts)


def with_extra_state(vocab):
    """The same vocabularies with one more part state: features built with it must be refused."""
    from tpslab.vocab import Vocab, Vocabulary

    return Vocab(vocab.actions, vocab.parts, Vocabulary("part state", list(vocab.states.names) + ["extra"]),
                 vocab.objects)


def use_micro_as_tiny(monkeypatch) -> None:
    """Make preset "tiny" the MICRO preset for one test: for tests of ``tpslab mini``, whose ``--preset``
    offers only "tiny" and "default" (the command's behaviour does not depend on the preset's size)."""
    import dataclasses

    from tpslab.synthetic import presets

    monkeypatch.setitem(presets.PRESETS, "tiny", dataclasses.replace(MICRO, name="tiny"))


def detections(tiny: Tiny, path):
    """The test videos' ground-truth boxes as a detections file (prediction format, verbs ignored)."""
    import json
    import types

    from tpslab.pipeline import boxes_from_dataset
    from tpslab.submission import build_predictions

    r = tiny.record
    truth = types.SimpleNamespace(videos=r.videos, frames=r.test_frames, humans=r.test_humans, parts=r.test_parts)
    boxes, frames = boxes_from_dataset(truth, tiny.test)
    _, part = build_predictions(boxes.assign(state="none"), {v: "push_up" for v in tiny.test}, frames=frames)
    path.write_text(json.dumps(part))
    return path
