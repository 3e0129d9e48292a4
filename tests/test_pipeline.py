import json
import types

import numpy as np
import pandas as pd
import pytest

from tpslab.metrics import tps_score
from tpslab.models.baselines import MajorityBaseline
from tpslab.models.compositional import CompositionalClassifier, FeatureConfig
from tpslab.pipeline import (BOX_COLUMNS, EndToEnd, boxes_from_dataset, boxes_from_predictions,
                                    majority_predictions, part_ablation, score_predictions)
from tpslab.models.recognizer import PartStateRecognizer, video_paths
from tpslab.submission import build_predictions, export_ground_truth
from tpslab.vocab import Vocab


def truth_of_test_videos(tiny):
    """The test videos' ground truth (from the generator) as a dataset-like object the exporter reads."""
    r = tiny.record
    return types.SimpleNamespace(videos=r.videos.assign(split="train"), frames=r.test_frames,
                                 humans=r.test_humans, parts=r.test_parts)


@pytest.fixture(scope="module")
def models(tiny, tiny_recognizer):
    """The session's recogniser (conftest.tiny_recognizer), an action classifier and the majority states."""
    parts, vocab = tiny.dataset.parts, tiny.dataset.vocab
    recognizer = tiny_recognizer
    labels = {v: tiny.labels[v] for v in tiny.train}
    classifier = CompositionalClassifier().fit_parts(parts, labels, vocab)
    majority = MajorityBaseline().fit(parts, labels, vocab)
    return recognizer, classifier, majority


# ----------------------------------------------------------------------------- boxes


def test_boxes_from_dataset(tiny):
    ds = tiny.dataset
    videos = tiny.train[:5]
    boxes, frames = boxes_from_dataset(ds, videos)
    parts = ds.parts[ds.parts["video"].astype(str).isin(videos)]
    humans = ds.humans[ds.humans["video"].astype(str).isin(videos)]
    partless = int((humans["num_parts"] == 0).sum())
    assert len(boxes) == len(parts) + partless and boxes["part"].isna().sum() == partless
    has = boxes["part"].notna().to_numpy()
    assert (boxes.loc[has, "state"].astype(str).to_numpy() == parts["state"].astype(str).to_numpy()).all()
    assert len(frames) == int(ds.videos.set_index("video").loc[videos, "num_annotated_frames"].sum())


def test_boxes_from_a_detections_file_round_trip(tiny, tmp_path):
    boxes, frames = boxes_from_dataset(tiny.dataset, tiny.train[:3])
    _, pred_part = build_predictions(boxes, {v: "push_up" for v in tiny.train[:3]}, frames=frames)
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(pred_part))
    back, back_frames = boxes_from_predictions(path)
    key = ["video", "frame", "human", "part"]

    def table(t):
        t = t[BOX_COLUMNS].astype({"video": str, "part": object})
        t = t.assign(part=t["part"].where(t["part"].notna(), ""))
        return t.sort_values(key).reset_index(drop=True)

    pd.testing.assert_frame_equal(table(back), table(boxes), check_dtype=False)
    assert sorted(map(tuple, back_frames.to_numpy().tolist())) == sorted(map(tuple, frames.to_numpy().tolist()))
    # Several proposals: the first box counts; verbs are ignored; `videos` selects.
    video = tiny.train[0]
    first_key = next(iter(pred_part[video]))
    human = pred_part[video][first_key]["humans"][0]
    name, entry = next(iter(human["parts"].items()))
    entry["box"] = [[1, 2, 30, 40], [5, 5, 9, 9]]
    entry["verb"] = ["nonsense", "bend"]
    one, _ = boxes_from_predictions(pred_part, videos=[video])
    row = one[(one["frame"] == int(first_key[4:9])) & (one["human"] == 0) & (one["part"] == name)]
    assert set(one["video"]) == {video}
    assert row[["part_x1", "part_y1", "part_x2", "part_y2"]].to_numpy().tolist() == [[1, 2, 30, 40]]
    entry["box"] = [[1, 2, 30]]
    with pytest.raises(ValueError, match=f"{video}/{first_key}/humans\\[0\\].parts.{name}.box"):
        boxes_from_predictions(pred_part)


# ----------------------------------------------------------------------------- end to end


def test_end_to_end_scores_and_beats_the_majority_states(tiny, models, tmp_path):
    recognizer, classifier, majority = models
    truth = truth_of_test_videos(tiny)
    boxes, frames = boxes_from_dataset(truth, tiny.test)
    pipeline = EndToEnd(recognizer, classifier)
    pred = pipeline.predict(boxes, video_paths(tiny.dataset), frames=frames, progress=False)
    assert set(pred.actions) == set(tiny.test) and list(pred.boxes.columns) == BOX_COLUMNS + ["state"]
    assert np.mean([pred.actions[v] == tiny.labels[v] for v in tiny.test]) > 0.25  # 4 actions
    result = score_predictions(pred, truth, tiny.test)
    # The same boxes and actions with the per-(action, part) majority state instead of the pixels.
    base = score_predictions(majority_predictions(majority, boxes, pred.actions, frames), truth, tiny.test)
    assert result.accuracy == base.accuracy and result.mean_psc > base.mean_psc
    # The files are what the official scorer reads; written files score the same.
    vid_path, part_path = pred.write(tmp_path / "sub")
    gt_vid, gt_part = export_ground_truth(truth, videos=tiny.test)
    assert tps_score(gt_vid, gt_part, vid_path, part_path).area == result.area
    assert set(json.loads(part_path.read_text())[tiny.test[0]]) <= {f"img_{f:05d}.json" for f in range(1, 200, 5)}
    # A saved and loaded pipeline, on the boxes of a detections file holding every frame, predicts the same.
    pipeline.save(tmp_path / "pipe")
    again = EndToEnd.load(tmp_path / "pipe", vocab=tiny.dataset.vocab, threads=1)
    _, all_frames = pred.write(tmp_path / "all", scored_only=False)
    det_boxes, det_frames = boxes_from_predictions(all_frames)
    from_file = again.predict(det_boxes, video_paths(tiny.dataset), frames=det_frames, progress=False)
    assert from_file.actions == pred.actions
    key = ["video", "frame", "human", "part"]
    merged = pred.boxes.astype({"video": str}).merge(from_file.boxes, on=key, suffixes=("", "_file"))
    assert len(merged) == len(pred.boxes)
    assert (merged["state"].fillna("-") == merged["state_file"].fillna("-")).all()  # NA: a human without parts
    assert score_predictions(from_file, truth, tiny.test).area == result.area
    # damaged files of a saved pipeline, and an empty detections file: one line naming the file
    import shutil

    for name, content, match in [("pipeline.json", "{oops", "pipeline.json: not valid JSON"),
                                 ("pipeline.json", "{}", "pipeline.json: not a pipeline's settings"),
                                 ("classifier.joblib", "garbage", "classifier.joblib: cannot read it as a saved "
                                                                  "classifier")]:
        broken = tmp_path / f"broken-{name}-{len(content)}"
        shutil.copytree(tmp_path / "pipe", broken)
        (broken / name).write_text(content)
        with pytest.raises(ValueError, match=match):
            EndToEnd.load(broken, vocab=tiny.dataset.vocab, threads=1)
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(ValueError, match=r"empty\.json.*not valid JSON"):
        boxes_from_predictions(tmp_path / "empty.json")


def test_end_to_end_errors(tiny, models):
    recognizer, classifier, _ = models
    vocab = tiny.dataset.vocab
    with pytest.raises(ValueError, match="fitted"):
        EndToEnd(PartStateRecognizer(), classifier)
    with_objects = CompositionalClassifier(config=FeatureConfig(objects=True)).fit_parts(
        tiny.dataset.parts, {v: tiny.labels[v] for v in tiny.train}, vocab)
    with pytest.raises(ValueError, match="object bags"):
        EndToEnd(recognizer, with_objects)
    with pytest.raises(ValueError, match="counts must be"):
        EndToEnd(recognizer, classifier, counts="some")
    boxes, _ = boxes_from_dataset(tiny.dataset, tiny.train[:1])
    with pytest.raises(ValueError, match="video paths"):
        EndToEnd(recognizer, classifier).predict(boxes)
    other = PartStateRecognizer()
    other.net_, other.vocab_ = recognizer.net_, Vocab(vocab.actions, vocab.parts, vocab.objects, vocab.objects)
    with pytest.raises(ValueError, match="different part or state vocabularies"):
        EndToEnd(other, classifier)


# ----------------------------------------------------------------------------- ablation


def toy_parts(seed=0):
    """Four actions told apart only by the head's state; every other part does random things."""
    rng = np.random.default_rng(seed)
    head_state = {"capoeira": "none", "lunge": "nod", "push_up": "turn", "surfing_crowd": "shake"}
    rows, labels = [], {}
    for action, state in head_state.items():
        for k in range(10):
            video = f"{action[:3]}{k}"
            labels[video] = action
            for frame in range(1, 6):
                rows.append((video, frame, 0, "head", state))
                for part in ("left_arm", "right_arm", "hip"):
                    rows.append((video, frame, 0, part, str(rng.choice(["bend", "unbend", "lift", "none"]))))
    return pd.DataFrame(rows, columns=["video", "frame", "human", "part", "state"]), labels


def test_ablation_finds_the_deciding_part():
    parts, labels = toy_parts()
    vocab = Vocab.default()
    videos = sorted(labels)
    splits = [([v for v in videos if v[-1] in "01234"], [v for v in videos if v[-1] in "56789"])]
    drop = part_ablation(parts, labels, vocab, splits)
    assert drop["group"].tolist()[:2] == ["all parts", "head"]
    assert drop.loc[0, "accuracy"] == 1.0 and drop.loc[1, "accuracy"] <= 0.5
    assert len(drop) == 1 + 6  # head, hip, arm, hand, leg, foot
    others = drop[~drop["group"].isin(["all parts", "head"])]
    assert (others["change"].abs() < 0.5).all()
    keep = part_ablation(parts, labels, vocab, splits, groups="parts", mode="keep")
    assert len(keep) == 11 and keep.loc[1, "group"] == "head" and keep.loc[1, "accuracy"] == 1.0
    assert keep[keep["group"] == "left_leg"]["accuracy"].item() <= 0.5  # no rows at all: a constant guess


def test_ablation_reference_is_the_plain_classifier(tiny):
    from sklearn.ensemble import RandomForestClassifier

    ds = tiny.dataset
    train, val = ds.split_train_val(0.25, seed=0)
    # A random model, so that another seed or settings would show; 30 trees (the "forest" model has 300:
    # seven fits of it took 5 s)
    forest = RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1)
    table = part_ablation(ds.parts, tiny.labels, ds.vocab, [(train, val)], model=forest, progress=False)
    clf = CompositionalClassifier(forest).fit_parts(ds.parts, {v: tiny.labels[v] for v in train}, ds.vocab)
    pred = clf.predict_parts(ds.parts, videos=val)
    assert table.loc[0, "accuracy"] == pytest.approx(np.mean([pred[v] == tiny.labels[v] for v in val]))
    assert np.allclose(table["change"], table["accuracy"] - table.loc[0, "accuracy"])


def test_ablation_errors():
    parts, labels = toy_parts()
    vocab = Vocab.default()
    with pytest.raises(ValueError, match="groups must be"):
        part_ablation(parts, labels, vocab, [(["cap0"], ["cap1"])], groups="sides")
    with pytest.raises(ValueError, match="mode must be"):
        part_ablation(parts, labels, vocab, [(["cap0"], ["cap1"])], mode="swap")
    with pytest.raises(ValueError, match="at least one"):
        part_ablation(parts, labels, vocab, [])
    with pytest.raises(ValueError, match="probs has"):
        part_ablation(parts, labels, vocab, [(["cap0"], ["cap1"])], probs=np.zeros((3, 66)))


def test_streamed_prediction_does_not_depend_on_workers_or_batch_size(tiny, models):
    recognizer, classifier, _ = models
    boxes, frames = boxes_from_dataset(tiny.dataset, tiny.train[:3])  # 3 videos: one worker reads two
    paths = video_paths(tiny.dataset)
    pipeline = EndToEnd(recognizer, classifier, window=1)
    whole = pipeline.predict(boxes, paths, frames=frames, progress=False)
    # DataLoader workers read the same batches (one video each): the same numbers, bit for bit.
    workers = pipeline.predict(boxes, paths, frames=frames, workers=2, progress=False)
    assert workers.actions == whole.actions
    np.testing.assert_array_equal(workers.probs, whole.probs)
    pd.testing.assert_frame_equal(workers.boxes, whole.boxes)
    # Smaller batches (pieces of a video, cut between frames) change the numbers by rounding at most.
    small = pipeline.predict(boxes, paths, frames=frames, batch_size=40, progress=False)
    assert small.actions == whole.actions
    np.testing.assert_allclose(small.probs, whole.probs, rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(small.boxes, whole.boxes)
    # In-memory crops of the same boxes give the same states (the crops are the same bytes).
    has_part = boxes["part"].notna().to_numpy()
    crops = recognizer.crops(boxes[has_part], paths, progress=False)
    held = pipeline.predict(boxes, frames=frames, crops=crops, progress=False)
    np.testing.assert_allclose(held.probs, whole.probs, rtol=0, atol=1e-6)
    assert held.actions == whole.actions


def test_videos_with_frames_but_no_boxes_get_an_action(tiny, models):
    recognizer, classifier, _ = models
    boxes, frames = boxes_from_dataset(tiny.dataset, tiny.train[:2])
    lonely = pd.DataFrame({"video": [tiny.train[3]], "frame": [1]})
    pred = EndToEnd(recognizer, classifier).predict(boxes, video_paths(tiny.dataset),
                                                    frames=pd.concat([frames, lonely]), progress=False)
    assert set(pred.actions) == set(tiny.train[:2]) | {tiny.train[3]}
    pred_vid, pred_part = pred.files()
    assert pred_part[tiny.train[3]] == {"img_00001.json": {"humans": []}}


def test_detection_parts_are_checked_against_the_releases_part_names():
    """A release's list/body_part.txt names its parts: the check follows it, not the built-in names."""
    from tpslab.pipeline import _check_part_names

    boxes = pd.DataFrame({"video": ["v", "v"], "frame": [1, 6], "human": [0, 1], "part": ["head", "tail"]})
    _check_part_names(boxes, ["head", "tail"], "d.json")  # the release's own names pass
    with pytest.raises(ValueError, match=r"^d\.json: v/img_00006\.json/humans\[1\]\.parts: 'tail' is not a body part "
                                         r"of the challenge \(head, neck\)$"):
        _check_part_names(boxes, ["head", "neck"], "d.json")
