"""The tiny mini dataset shared by the model tests: generated once per session into a temporary folder."""

from dataclasses import dataclass

import pandas as pd
import pytest


@dataclass
class Tiny:
    dataset: object  # tpslab.dataset.TPSDataset of the tiny release
    record: object  # the generator's record (ground truth of the test videos too)
    train: list  # train split videos
    test: list  # test split videos (ground truth in record.test_parts)
    labels: dict  # {video: action} for every video
    test_parts: pd.DataFrame


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from tpslab import load_dataset, synthetic

    root = tmp_path_factory.mktemp("models-tiny") / "release"
    record = synthetic.generate(root, preset="tiny", seed=0, progress=False)
    ds = load_dataset(root, progress=False, cache=False, workers=1)
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
