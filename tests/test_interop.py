"""tpslab.interop: COCO out (checked with pycocotools), COCO results in (the pipeline's box table), and the
MMAction2 / PySlowFast lists (checked against the formats those toolchains document)."""

import contextlib
import io
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import videogen as vg
from release import human, make_release, part
from tpslab import load_dataset
from tpslab.frames import extract_frames
from tpslab.interop import (COCO_SIGNATURE, DECIMALS, PERSON_ID, UNKNOWN_LABEL, InteropError, check_coco_out,
                            coco_ground_truth, coco_to_corners, corners_to_coco, export_coco, export_lists,
                            read_coco_results, simulate_detections, write_detections)
from tpslab.metrics.official import HUMAN_LIMIT, PROPOSAL_LIMIT
from tpslab.pipeline import BOX_COLUMNS, Predictions, boxes_from_dataset, score_predictions

pycocotools = pytest.importorskip("pycocotools")  # a dev dependency: `pip install -e .[dev]`
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_frames(tiny, tmp_path_factory):
    """Rawframes of every train video of the tiny mini dataset (192x144, at the video's size)."""
    out = tmp_path_factory.mktemp("interop-frames") / "frames"
    report = extract_frames(tiny.dataset, out, videos=tiny.train, progress=False)
    assert (report["status"] == "extracted").all()
    return out


@pytest.fixture(scope="module")
def tiny_coco(tiny, tiny_frames):
    return coco_ground_truth(tiny.dataset, tiny_frames, videos=tiny.train, progress=False)


@pytest.fixture(scope="module")
def hurling(tmp_path_factory):
    """A release with the real class folder ``hurling_(sport)``, float boxes (some starting below pixel 1),
    a part outside its person's box, test videos, and real videos; plus its frames at two sizes."""
    root = tmp_path_factory.mktemp("hurling") / "release"

    def frame(n):
        people = [human([0.3 + n, 5.5, 60.25, 90.75], [
            part("head", [20.4, 6.0, 35.71, 20.02], "none"),
            part("left_hand", [0.5, 40.33, 9.99, 55.0], "hold", "ball", [0.25, 41.0, 12.5, 60.125]),
            part("right_foot", [61.5, 80.0, 68.0, 90.0], "step_on"),  # beside its person's box
        ])]
        if n % 2:
            people.append(human([70, 10, 120, 92], [part("hip", [80.1, 50.2, 110.9, 70.3], "none")], number=2))
        return {"humans": people}

    videos = {("hurling_(sport)", "hurl_a"): [1, 2, 3, 6], ("hurling_(sport)", "hurl_b"): [1, 4],
              ("lunge", "lunge_a"): [1, 2, 5], ("lunge", "lunge_b"): [2, 3]}
    make_release(root, {k: {f: frame(f) for f in frames} for k, frames in videos.items()},
                 test_videos=[("hurling_(sport)", "hurl_test", 6), ("lunge", "lunge_test", 6)])
    for (label, video) in videos:
        vg.write_video(root / "train_videos" / label / f"{video}.mp4", 8)
    for label, video in [("hurling_(sport)", "hurl_test"), ("lunge", "lunge_test")]:
        vg.write_video(root / "test_videos" / label / f"{video}.mp4", 6)
    rows = "".join(f"{label},{video},8\n" for label, video in videos)
    (root / "list" / "video_train_flist.csv").write_text("class,video,frames\n" + rows)
    ds = load_dataset(root, progress=False, cache=False, workers=1)
    full = root.parent / "frames"
    small = root.parent / "frames_small"
    assert (extract_frames(ds, full, progress=False)["status"] == "extracted").all()
    assert (extract_frames(ds, small, short_side=40, progress=False)["status"] == "extracted").all()
    return ds, full, small


def images_spec(n_images=1, width=200, height=100, video_width=None, video_height=None):
    """A hand-made images file, as export_coco writes it, for reader tests that need no frames."""
    return {"images": [{"id": i + 1, "file_name": f"train/a/v/img_{i + 1:05d}.jpg", "video": "v", "frame": i + 1,
                        "width": width, "height": height, "video_width": video_width or width,
                        "video_height": video_height or height} for i in range(n_images)],
            "categories": [{"id": PERSON_ID, "name": "person"}, {"id": 2, "name": "head"},
                           {"id": 6, "name": "left_hand"}]}


def det(image_id, category_id, corners, score):
    """A results entry from inclusive corners (frames at the video's size)."""
    x1, y1, x2, y2 = corners
    return {"image_id": image_id, "category_id": category_id, "bbox": [x1, y1, x2 - x1 + 1, y2 - y1 + 1],
            "score": score}


def as_detections(coco, score=1.0):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": score}
            for a in coco["annotations"]]


def sorted_boxes(boxes):
    """A box table in a canonical order, human numbers replaced by the human's box (numbering may differ)."""
    t = boxes[BOX_COLUMNS].astype({"video": str, "part": object}).drop(columns="human")
    t = t.assign(part=t["part"].where(t["part"].notna(), ""), frame=t["frame"].astype(np.int64))
    return t.sort_values(list(t.columns), kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- the conversion


def test_conversion_is_inclusive_pixels_and_scales_with_the_frames():
    bbox, exact = corners_to_coco([[10, 20, 19, 29]])
    assert bbox.tolist() == [[10, 20, 10, 10]] and exact.all()  # 10 pixels wide: x2 - x1 + 1, the scorer's width
    assert coco_to_corners(bbox).tolist() == [[10, 20, 19, 29]]
    # frames at half the size: the continuous box [x1, x2 + 1) halves
    bbox, exact = corners_to_coco([[10, 20, 19, 29]], (0.5, 0.5))
    assert bbox.tolist() == [[5, 10, 5, 5]] and exact.all()
    assert coco_to_corners(bbox, (0.5, 0.5)).tolist() == [[10, 20, 19, 29]]
    # NaN (no object) stays NaN and counts as exact
    bbox, exact = corners_to_coco([[np.nan] * 4])
    assert np.isnan(bbox).all() and exact.all()


@pytest.mark.parametrize("scale", [1.0, (0.5, 0.5), (2.0, 2.0), (340 / 1280, 340 / 720), (456 / 1280, 256 / 720),
                                   (171 / 640, 128 / 480)])
@pytest.mark.parametrize("decimals", [0, 2, DECIMALS])
def test_every_coordinate_with_up_to_6_decimals_reads_back_bit_for_bit(scale, decimals):
    rng = np.random.default_rng(decimals)
    n = 3000
    x1 = np.round(rng.uniform(0, 1900, n), decimals)
    y1 = np.round(rng.uniform(0, 1060, n), decimals)
    corners = np.stack([x1, y1, np.round(x1 + rng.uniform(0, 400, n), decimals),
                        np.round(y1 + rng.uniform(0, 400, n), decimals)], axis=1)
    corners[:50, :2] = np.round(rng.uniform(0, 1, (50, 2)), decimals)  # boxes starting below pixel 1
    # through JSON, as the COCO file carries them
    bbox, exact = corners_to_coco(corners, scale)
    back = coco_to_corners(json.loads(json.dumps(bbox.tolist())), scale)
    assert exact.all()
    assert np.array_equal(back.view(np.int64), corners.view(np.int64))  # the same bits


def test_finer_coordinates_are_flagged_and_the_docstring_example_has_no_exact_width():
    bbox, exact = corners_to_coco([[1 / 3, 2.0, 10.0, 12.0], [1.0, 2.0, 10.0, 12.0]])
    assert exact.tolist() == [False, True]
    assert coco_to_corners(bbox)[0, 0] == round(1 / 3, DECIMALS)
    # Why the way back rounds: without it, x1 + (w - 1) is a tie for every float w near the width,
    # and round-half-even never gives this (odd) x2.
    x1, x2 = 57.96, 126.29
    w = np.nextafter((x2 - x1) + 1, -np.inf)
    for _ in range(60):
        w = np.nextafter(w, -np.inf)
    hits = 0
    for _ in range(120):
        hits += (x1 + (w - 1)) == x2
        w = np.nextafter(w, np.inf)
    assert hits == 0
    assert coco_to_corners(corners_to_coco([[x1, 1.0, x2, 2.0]])[0])[0, 2] == x2


# ----------------------------------------------------------------------------- COCO out


def test_pycocotools_loads_the_export_and_its_counts_are_the_tables(tiny, tiny_frames, tmp_path):
    ds = tiny.dataset
    out = tmp_path / "gt.json"
    info = export_coco(ds, tiny_frames, out, videos=tiny.train, progress=False)
    assert out.read_bytes().startswith(COCO_SIGNATURE)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    parts = ds.parts[ds.parts["video"].astype(str).isin(tiny.train)]
    humans = ds.humans[ds.humans["video"].astype(str).isin(tiny.train)]
    frames = ds.frames[ds.frames["video"].astype(str).isin(tiny.train)]
    assert info["images"] == len(coco.getImgIds()) == len(frames)
    assert info["inexact_boxes"] == 0 and info["skipped_frames"] == 0 and info["resized_videos"] == 0
    cats = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    assert cats["person"] == PERSON_ID
    assert [cats[p] for p in ds.vocab.parts.names] == list(range(2, 2 + len(ds.vocab.parts)))
    assert len(coco.getAnnIds(catIds=[PERSON_ID])) == len(humans)
    per_part = parts["part"].astype(str).value_counts()
    for name in ds.vocab.parts.names:
        assert len(coco.getAnnIds(catIds=[cats[name]])) == per_part.get(name, 0), name
    # every image is a real JPEG of that size, 1-based like the annotation it carries
    from PIL import Image

    for img in coco.loadImgs(coco.getImgIds()[:: 37]):
        with Image.open(tiny_frames / img["file_name"]) as im:
            assert im.size == (img["width"], img["height"])
        assert img["file_name"].endswith(f"/{img['video']}/img_{img['frame']:05d}.jpg")
    # extras: the part's person, state, object; the person's box holds the part's person_id
    anns = coco.loadAnns(coco.getAnnIds(catIds=[cats["left_hand"]]))
    holding = [a for a in anns if a["object"] is not None][0]
    assert holding["object_bbox"] is not None and holding["state"] in ds.vocab.states
    assert coco.loadAnns(holding["person_id"])[0]["category_id"] == PERSON_ID
    assert coco.loadAnns(holding["person_id"])[0]["image_id"] == holding["image_id"]
    a = anns[0]
    assert a["iscrowd"] == 0 and a["area"] == a["bbox"][2] * a["bbox"][3]
    # the file and the in-memory dict are the same
    assert json.loads(out.read_text())["annotations"] == coco_ground_truth(
        ds, tiny_frames, videos=tiny.train, progress=False)["annotations"]


def coco_ap(gt_path, detections):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(detections), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, 2]  # IoU x recall x category, all areas, 100 detections
    per_category = {c: float(np.mean(precision[:, :, k])) for k, c in enumerate(ev.params.catIds)
                    if (precision[:, :, k] > -1).any()}
    return ev.stats, per_category


def test_cocoeval_of_the_ground_truth_as_detections_gives_ap_1(tiny, tiny_frames, tmp_path):
    path = tmp_path / "gt.json"
    export_coco(tiny.dataset, tiny_frames, path, videos=tiny.train[:5], progress=False)  # COCOeval is slow
    coco = json.loads(path.read_text())
    stats, per_category = coco_ap(path, as_detections(coco))
    assert stats[0] == 1.0 and stats[1] == 1.0 and stats[2] == 1.0  # AP@[.5:.95], AP@.5, AP@.75
    assert set(per_category) == {1, *range(2, 2 + len(tiny.dataset.vocab.parts))}
    assert all(v == 1.0 for v in per_category.values())
    # and a detector that is off by a few pixels is not perfect
    stats, _ = coco_ap(path, simulate_detections(coco, jitter=0.15, drop=0.0, seed=1))
    assert 0 < stats[0] < 0.9


def test_resized_frames_scale_the_boxes_and_round_trip_exactly(hurling):
    ds, full, small = hurling
    big = coco_ground_truth(ds, full, progress=False)
    little = coco_ground_truth(ds, small, progress=False)
    assert little["info"]["resized_videos"] == 4 and big["info"]["resized_videos"] == 0
    assert little["info"]["inexact_boxes"] == big["info"]["inexact_boxes"] == 0
    from PIL import Image

    for img in little["images"]:
        with Image.open(small / img["file_name"]) as im:
            assert im.size == (img["width"], img["height"]) == (53, 40)  # 128x96 -> short side 40
        assert (img["video_width"], img["video_height"]) == (128, 96)
    sx, sy = 53 / 128, 40 / 96
    a = np.array([x["bbox"] for x in big["annotations"]])
    b = np.array([x["bbox"] for x in little["annotations"]])
    assert np.allclose(b, a * [sx, sy, sx, sy], rtol=0, atol=1e-9)
    # read back from the small frames' COCO: the release's float boxes, bit for bit
    for coco in (big, little):
        boxes, _ = read_coco_results(as_detections(coco), coco)
        truth, _ = boxes_from_dataset(ds)
        pd.testing.assert_frame_equal(sorted_boxes(boxes), sorted_boxes(truth), check_exact=True)
    # object boxes too
    objs = [x["object_bbox"] for x in little["annotations"] if x.get("object_bbox")]
    back = coco_to_corners(objs, (sx, sy))
    assert (back == [0.25, 41.0, 12.5, 60.125]).all()


def test_round_trip_through_the_pipeline_scores_what_the_ground_truth_boxes_score(tiny, tiny_coco, tmp_path):
    """Ground truth -> COCO file -> read back as score-1 detections -> predictions with a state oracle ->
    the official score: the same number as the ground-truth boxes get, to the last bit, even at a part
    IoU of 1 (where a box one float off would miss)."""
    ds, videos = tiny.dataset, tiny.train
    results = tmp_path / "results.json"
    results.write_text(json.dumps(as_detections(tiny_coco)))
    images = tmp_path / "gt.json"
    images.write_text(json.dumps(tiny_coco))
    read = read_coco_results(results, images)
    boxes, frames = read
    assert read.counts["parts_without_person"] == 0 and read.counts["persons_over_limit"] == 0
    truth, truth_frames = boxes_from_dataset(ds, videos)
    pd.testing.assert_frame_equal(sorted_boxes(boxes), sorted_boxes(truth), check_exact=True)
    assert sorted(map(tuple, frames.to_numpy().tolist())) == sorted(map(tuple, truth_frames.to_numpy().tolist()))
    actions = {v: tiny.labels[v] for v in videos}

    def score(b, f, **kw):
        b = b.assign(state=np.where(b["part"].notna(), "none", None))  # replaced by the oracle
        return score_predictions(Predictions(b, actions, f), ds, videos, oracle=("part_states",), **kw)

    for kw in ({}, {"part_iou": 1.0}):
        ours, theirs = score(boxes, frames, **kw), score(truth, truth_frames, **kw)
        assert ours.area == theirs.area == 0.9999
        assert np.array_equal(ours.per_video["psc"].to_numpy(), theirs.per_video["psc"].to_numpy())
    # a simulated detector (boxes moved, some dropped) scores less, and the same each time
    sim = simulate_detections(tiny_coco, jitter=0.2, drop=0.2, seed=0)
    assert sim == simulate_detections(tiny_coco, jitter=0.2, drop=0.2, seed=0)
    assert 0.7 * len(tiny_coco["annotations"]) < len(sim) < 0.9 * len(tiny_coco["annotations"])
    noisy, noisy_frames = read_coco_results(sim, tiny_coco)
    assert score(noisy, noisy_frames).area < 0.9
    # one video of them
    one = read_coco_results(sim, tiny_coco, videos=videos[:1])
    assert set(one.boxes["video"]) == set(one.frames["video"]) == {videos[0]}
    assert one.counts["entries"] + one.counts["entries_of_other_videos"] == len(sim)
    assert "more of other videos left out" in one.summary()
    with pytest.raises(InteropError, match="has no frames of 1 of the videos asked for: nope"):
        read_coco_results(sim, tiny_coco, videos=["nope", videos[0]])
    # as the detections file of `tpslab predict --boxes`
    from tpslab.pipeline import boxes_from_predictions

    path = write_detections(noisy_read := read_coco_results(sim, tiny_coco), tmp_path / "detections.json")
    back, back_frames = boxes_from_predictions(path)
    pd.testing.assert_frame_equal(sorted_boxes(back), sorted_boxes(noisy_read.boxes), check_exact=True)
    assert sorted(map(tuple, back_frames.to_numpy().tolist())) == sorted(map(tuple, noisy_frames.to_numpy().tolist()))
    with pytest.raises(FileExistsError, match="detections.json: exists"):
        write_detections(noisy_read, path)


def test_export_skips_or_refuses_missing_frames_and_unverifiable_folders(hurling, tmp_path):
    ds, full, _ = hurling
    frames = tmp_path / "frames"
    shutil.copytree(full, frames)
    shutil.rmtree(frames / "train" / "lunge" / "lunge_b")
    for n in range(5, 9):  # lunge_a ends at img_00004 (as if the video were shorter than its annotations)
        (frames / "train" / "lunge" / "lunge_a" / f"img_{n:05d}.jpg").unlink()
    with pytest.raises(InteropError, match=r"lunge_a: no img_00005.jpg, .* 3 annotated frames of 2 videos"):
        coco_ground_truth(ds, frames, progress=False)
    coco = coco_ground_truth(ds, frames, missing="skip", progress=False)
    assert coco["info"]["skipped_frames"] == 3 and coco["info"]["skipped_videos"] == ["lunge_b"]
    assert len(coco["images"]) == len(ds.frames) - 3
    # a gap in the numbering is a damaged folder, refused even when skipping missing frames
    gap = frames / "train" / "hurling_(sport)" / "hurl_a" / "img_00004.jpg"
    gap.rename(gap.with_suffix(".bak"))
    with pytest.raises(InteropError, match=r"hurl_a: 1 frame\(s\) missing from the numbering, first img_00004"):
        coco_ground_truth(ds, frames, missing="skip", progress=False)
    gap.with_suffix(".bak").rename(gap)
    # a 0-based folder is refused, never read one frame off
    zero = frames / "train" / "lunge" / "lunge_a"
    (zero / "img_00000.jpg").write_bytes((zero / "img_00001.jpg").read_bytes())
    with pytest.raises(InteropError, match="0-based"):
        coco_ground_truth(ds, frames, videos=["lunge_a"], missing="skip", progress=False)
    (zero / "img_00000.jpg").unlink()
    # frames that are not a resize of their video (here: cropped) are refused
    from PIL import Image

    crop = frames / "train" / "hurling_(sport)" / "hurl_b"
    for f in crop.glob("img_*.jpg"):
        with Image.open(f) as im:
            im.crop((0, 0, 100, 96)).save(f)
    with pytest.raises(InteropError, match=r"hurl_b: frames are 100x96, not a resize of the video's 128x96"):
        coco_ground_truth(ds, frames, videos=["hurl_b"], progress=False)
    # without the video, the frames' scale cannot be verified
    video = Path(ds.video_info("hurl_a")["path"])
    hidden = video.with_suffix(".hidden")
    video.rename(hidden)
    try:
        with pytest.raises(InteropError, match="cannot verify the size of the frames"):
            coco_ground_truth(ds, full, videos=["hurl_a"], progress=False)
    finally:
        hidden.rename(video)
    with pytest.raises(InteropError, match="not videos of"):
        coco_ground_truth(ds, full, videos=["nope"], progress=False)
    # nothing to export is refused, never a COCO file of 0 images (pycocotools' evaluation fails on one)
    with pytest.raises(InteropError, match=r"^.*frames: nothing to export: none of the 2 videos has an annotated "
                       r"frame there \(2 videos have no annotations, as test videos\)$"):
        coco_ground_truth(ds, full, videos=["hurl_test", "lunge_test"], progress=False)
    with pytest.raises(InteropError, match=r"nothing to export: none of the 1 videos has an annotated frame there "
                       r"\(2 annotated frames were not in the folder and were skipped\)$"):
        coco_ground_truth(ds, frames, videos=["lunge_b"], missing="skip", progress=False)
    out = tmp_path / "empty.json"
    with pytest.raises(InteropError, match="nothing to export"):
        export_coco(ds, full, out, videos=["hurl_test"], progress=False)
    assert not out.exists()


def test_export_never_overwrites_a_file_it_did_not_write(hurling, tmp_path):
    ds, full, _ = hurling
    foreign = tmp_path / "mine.json"
    foreign.write_text('{"images": []}')
    with pytest.raises(FileExistsError, match="was not written by tpslab export-coco"):
        export_coco(ds, full, foreign, progress=False)
    assert foreign.read_text() == '{"images": []}'
    with pytest.raises(FileExistsError, match="is a folder"):
        check_coco_out(tmp_path)
    own = tmp_path / "gt.json"
    export_coco(ds, full, own, videos=["hurl_a"], progress=False)
    info = export_coco(ds, full, own, progress=False)  # its own file: replaced
    assert json.loads(own.read_text())["info"] == info and info["videos"] == 4


# ----------------------------------------------------------------------------- COCO results in


def test_persons_keep_the_best_up_to_the_scorers_limit():
    images = images_spec(width=400, height=100)
    results = [det(1, PERSON_ID, [30 * k, 0, 30 * k + 20, 50], score=k / 20) for k in range(12)]
    results.append(det(1, PERSON_ID, [0, 60, 10, 90], score=0.55))  # ties with k=11: file order first
    boxes, frames = read_coco_results(results, images)
    kept = boxes.sort_values("human")
    assert len(kept) == HUMAN_LIMIT and kept["part"].isna().all() and (kept["proposal"] == 0).all()
    assert kept["human_score"].tolist() == sorted(kept["human_score"], reverse=True)
    assert kept["human_x1"].iloc[0] == 330 and kept["human_x1"].iloc[1] == 0 and kept["human_y1"].iloc[1] == 60
    assert frames.to_dict("records") == [{"video": "v", "frame": 1}]
    few = read_coco_results(results, images, max_humans=3, min_person_score=0.2)
    assert len(few.boxes) == 3 and few.counts["persons_below_score"] == 4 and few.counts["persons_over_limit"] == 6
    with pytest.raises(ValueError, match="max_humans must be an integer from 1 to 10"):
        read_coco_results(results, images, max_humans=11)


def test_proposals_keep_the_best_by_score_in_score_order():
    images = images_spec()
    results = [det(1, PERSON_ID, [0, 0, 99, 99], 0.9)]
    results += [det(1, 2, [10 + k, 10, 30 + k, 30], score=s) for k, s in enumerate([0.2, 0.9, 0.5, 0.7, 0.1, 0.3,
                                                                                    0.8])]
    one = read_coco_results(results, images).boxes
    assert len(one) == 1 and one["part_x1"].iloc[0] == 11 and one["part"].iloc[0] == "head"
    five = read_coco_results(results, images, max_proposals=PROPOSAL_LIMIT)
    assert five.boxes["part_score"].tolist() == [0.9, 0.8, 0.7, 0.5, 0.3]
    assert five.boxes["proposal"].tolist() == [0, 1, 2, 3, 4] and five.counts["parts_over_limit"] == 2
    assert "2 over the limit of 5 per part" in five.summary()
    with pytest.raises(ValueError, match="max_proposals must be an integer from 1 to 5"):
        read_coco_results(results, images, max_proposals=6)
    # several proposals become lists in the prediction file
    from tpslab.submission import build_predictions

    boxes = five.boxes.assign(state="none")
    _, pred_part = build_predictions(boxes, {"v": "lunge"})
    part = pred_part["v"]["img_00001.json"]["humans"][0]["parts"]["head"]
    assert [b[0] for b in part["box"]] == [11, 16, 13, 12, 15]


def test_each_part_goes_to_the_person_holding_most_of_it():
    images = images_spec(width=300, height=200)
    big = [0, 0, 199, 199]  # person 0 (score 0.9)
    small = [100, 0, 149, 99]  # person 1 (score 0.8), inside the big one
    far = [250, 150, 299, 199]  # person 2 (score 0.7)
    results = [det(1, PERSON_ID, big, 0.9), det(1, PERSON_ID, small, 0.8), det(1, PERSON_ID, far, 0.7)]
    parts = {
        "inside both: the tighter person": ([110, 10, 119, 19], 1),
        "mostly in the big one": ([80, 10, 109, 19], 0),  # all of it in the big one, a third in the small one
        "beside the far one, within reach": ([238, 160, 247, 169], 2),  # 2 px left of it: gap 2/50
        "far from everyone": ([230, 5, 239, 14], None),  # 30 px right of big (0.15 of its width)
    }
    for k, (corners, _) in enumerate(parts.values()):
        results.append(det(1, 6 if k % 2 else 2, corners, 0.5))
    read = read_coco_results(results, images, max_proposals=5, reach=0.1)
    got = read.boxes[read.boxes["part"].notna()]
    for corners, owner in parts.values():
        row = got[got["part_x1"] == corners[0]]
        assert (row["human"].tolist() == [owner]) if owner is not None else row.empty
    assert read.counts["parts_without_person"] == 1
    # reach 0: parts outside every person are dropped; a larger reach takes them
    assert read_coco_results(results, images, max_proposals=5, reach=0).counts["parts_without_person"] == 2
    assert read_coco_results(results, images, max_proposals=5, reach=1).counts["parts_without_person"] == 0
    # a part whose only candidate is below the score threshold, or a person below it
    low = read_coco_results(results, images, max_proposals=5, min_part_score=0.6, min_person_score=0.85)
    assert low.counts["parts_below_score"] == 4 and low.counts["persons"] == 1 and len(low.boxes) == 1


def test_scaled_frames_give_boxes_in_the_release_pixels():
    images = images_spec(width=100, height=50, video_width=200, video_height=100)
    boxes = read_coco_results([{"image_id": 1, "category_id": 1, "bbox": [5, 10, 20, 25], "score": 1}], images).boxes
    assert boxes[["human_x1", "human_y1", "human_x2", "human_y2"]].to_numpy().tolist() == [[10, 20, 49, 69]]


BAD_ENTRIES = [
    ("not an object", ["a string"], r"entry 1 \(image_id None\): expected an object"),
    ("missing keys", [{"image_id": 1, "bbox": [1, 2, 3, 4]}], r"entry 1 \(image_id 1\): lacks category_id, score"),
    ("unknown image", [det(7, 1, [0, 0, 9, 9], 0.5)], r"entry 1 \(image_id 7\): image_id 7 is not an image of"),
    ("image id a bool", [det(True, 1, [0, 0, 9, 9], 0.5)], r"entry 1 \(image_id True\): image_id True is not"),
    ("unknown category", [det(1, 4, [0, 0, 9, 9], 0.5)], r"entry 1 \(image_id 1\): category_id 4 is not a category"),
    ("short bbox", [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 1}],
     r"entry 1 \(image_id 1\): bbox: expected 4 numbers, got 3"),
    ("bbox not a list", [{"image_id": 1, "category_id": 1, "bbox": "1 2 3 4", "score": 1}],
     r"bbox: expected a box \[x, y, w, h\], got str"),
    ("NaN in bbox", [{"image_id": 1, "category_id": 1, "bbox": [1, float("nan"), 3, 4], "score": 1}],
     r"entry 1 \(image_id 1\): bbox: expected 4 finite numbers"),
    ("zero width", [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 0, 4], "score": 1}],
     r"width and height must be positive"),
    ("negative height", [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, -4], "score": 1}],
     r"width and height must be positive"),
    ("NaN score", [det(1, 1, [0, 0, 9, 9], float("nan"))], r"entry 1 \(image_id 1\): score nan is not a finite number"),
    ("inf score", [det(1, 1, [0, 0, 9, 9], float("inf"))], r"score inf is not a finite number"),
    ("string score", [det(1, 1, [0, 0, 9, 9], "0.5")], r"score '0.5' is not a finite number"),
    ("bool score", [det(1, 1, [0, 0, 9, 9], True)], r"score True is not a finite number"),
]


@pytest.mark.parametrize("what, entries, message", BAD_ENTRIES, ids=[b[0] for b in BAD_ENTRIES])
def test_malformed_results_get_one_line_naming_the_file_and_entry(what, entries, message, tmp_path):
    path = tmp_path / "results.json"
    good = det(1, 1, [0, 0, 9, 9], 0.5)
    text = json.dumps([good, *entries, *entries])  # NaN and Infinity as Python's json writes them
    path.write_text(text)
    with pytest.raises(InteropError, match=message) as err:
        read_coco_results(path, images_spec())
    assert str(err.value).startswith(f"{path}: entry 1 ") and "\n" not in str(err.value)
    assert str(err.value).endswith("(and 1 more bad entries)")


def test_results_that_are_not_a_list_or_not_json_and_images_not_from_tpslab(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"image_id": 1}')
    with pytest.raises(InteropError, match=f"{path}: expected a JSON list of detections .*got dict"):
        read_coco_results(path, images_spec())
    path.write_text("[{")
    with pytest.raises(InteropError, match=f"{path}: not JSON"):
        read_coco_results(path, images_spec())
    with pytest.raises(InteropError, match=r"images\[0\] lacks video, video_width, video_height"):
        read_coco_results([], {"images": [{"id": 1, "frame": 1, "width": 2, "height": 2}], "categories": []})
    with pytest.raises(InteropError, match="exactly one category named 'person'"):
        read_coco_results([], {"images": [], "categories": [{"id": 1, "name": "head"}]})
    empty = read_coco_results([], images_spec(3))
    assert empty.boxes.empty and list(empty.boxes.columns[:len(BOX_COLUMNS)]) == BOX_COLUMNS
    assert len(empty.frames) == 3


# ----------------------------------------------------------------------------- lists


def read_rawframe_list(path, prefix):
    """MMAction2's documented rawframe annotation: ``frame_dir total_frames label`` split on whitespace,
    frame_dir joined to data_prefix; frames img_{:05}.jpg from start_index 1."""
    rows = []
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        assert len(fields) == 3, line
        frame_dir, total, label = fields[0], int(fields[1]), int(fields[2])
        folder = Path(prefix) / frame_dir
        names = sorted(p.name for p in folder.glob("img_*.jpg"))
        assert names == ["img_{:05}.jpg".format(i) for i in range(1, total + 1)], folder
        rows.append((frame_dir, total, label))
    return rows


def read_video_list(path, prefix):
    """MMAction2's VideoDataset (``filename label``, one space) and PySlowFast's Kinetics csv
    (``path label`` split on DATA.PATH_LABEL_SEPARATOR, default one space, exactly two fields)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        fields = line.split(" ")
        assert len(fields) == 2, line
        assert (Path(prefix) / fields[0]).is_file()
        rows.append((fields[0], int(fields[1])))
    return rows


def test_lists_follow_the_documented_formats(hurling, tmp_path):
    ds, full, small = hurling
    out = tmp_path / "lists"
    result = export_lists(ds, out, frames=small, val_fraction=0.5, seed=3, progress=False)
    actions = ds.vocab.actions
    assert (out / "classes.txt").read_text().splitlines() == list(actions.names)
    assert "hurling_(sport)" in actions.names
    train, val = ds.split_train_val(val_fraction=0.5, seed=3)
    labels = dict(zip(ds.videos["video"].astype(str), ds.videos["label"].astype(str)))
    for split, names in (("train", train), ("val", val), ("test", ["hurl_test", "lunge_test"])):
        frames = read_rawframe_list(out / f"{split}_list_rawframes.txt", small)
        videos = read_video_list(out / f"{split}_list_videos.txt", ds.root)
        assert (out / f"{split}.csv").read_text() == (out / f"{split}_list_videos.txt").read_text()
        assert [Path(d).name for d, _, _ in frames] == names == [Path(p).stem for p, _ in videos]
        assert [lab for _, _, lab in frames] == [lab for _, lab in videos] == [actions.id(labels[v]) for v in names]
        assert all(total == 8 if split != "test" else total == 6 for _, total, _ in frames)
        assert result["files"][f"{split}_list_rawframes.txt"] == len(names)
    line = next(x for x in (out / "train_list_rawframes.txt").read_text().splitlines() if "hurl" in x)
    assert line.startswith("train/hurling_(sport)/hurl_")  # the parentheses survive
    assert next(x for x in (out / "test.csv").read_text().splitlines()).startswith("test_videos/hurling_(sport)/")
    # a blind protocol: -1 for every test video, which both toolchains parse as an integer label
    blind = tmp_path / "blind"
    export_lists(ds, blind, hide_test_labels=True, progress=False)
    assert [lab for _, lab in read_video_list(blind / "test.csv", ds.root)] == [UNKNOWN_LABEL] * 2
    assert not (blind / "test_list_rawframes.txt").exists()  # no frames given


def test_lists_refuse_files_tpslab_did_not_write_and_folders_without_frames(hurling, tmp_path):
    ds, full, _ = hurling
    out = tmp_path / "lists"
    out.mkdir()
    (out / "train.csv").write_text("mine\n")
    with pytest.raises(FileExistsError, match="train.csv: exists and was not written by tpslab"):
        export_lists(ds, out, progress=False)
    assert (out / "train.csv").read_text() == "mine\n" and not (out / "classes.txt").exists()
    (out / "train.csv").unlink()
    export_lists(ds, out, frames=full, progress=False)
    export_lists(ds, out, frames=full, progress=False)  # its own files: rewritten
    # a run interrupted after claiming new contents, before writing them: the next run goes on
    record = json.loads((out / ".tpslab-lists.json").read_text())
    record["files"]["train.csv"] = [record["files"]["train.csv"], "0" * 64]
    (out / ".tpslab-lists.json").write_text(json.dumps(record))
    (out / "train.csv").write_text("half\n")
    with pytest.raises(FileExistsError, match="train.csv: exists and was changed"):
        export_lists(ds, out, frames=full, progress=False)
    (out / "train.csv").write_text((out / "train_list_videos.txt").read_text())
    export_lists(ds, out, frames=full, progress=False)
    assert isinstance(json.loads((out / ".tpslab-lists.json").read_text())["files"]["train.csv"], str)
    export_lists(ds, out, progress=False)  # no frames now: the earlier rawframe lists go
    assert not (out / "train_list_rawframes.txt").exists() and (out / "train_list_videos.txt").exists()
    with (out / "val.csv").open("a") as f:
        f.write("edited\n")
    with pytest.raises(FileExistsError, match="val.csv: exists and was changed since tpslab wrote it"):
        export_lists(ds, out, progress=False)
    frames = tmp_path / "frames"
    shutil.copytree(full, frames)
    shutil.rmtree(frames / "test" / "lunge" / "lunge_test")
    with pytest.raises(InteropError, match=r"lunge_test: no frames for lunge_test"):
        export_lists(ds, tmp_path / "other", frames=frames, progress=False)
    skipped = export_lists(ds, tmp_path / "other", frames=frames, missing="skip", progress=False)
    assert skipped["skipped"] == {"test_list_rawframes.txt": ["lunge_test"]}
    (frames / "train" / "lunge" / "lunge_a" / "img_00003.jpg").unlink()
    with pytest.raises(InteropError, match="lunge_a: 1 frame.* missing from the numbering, first img_00003"):
        export_lists(ds, tmp_path / "third", frames=frames, missing="skip", progress=False)
    # the last frames removed from a folder tpslab extracted: the count would be short, without a word
    shutil.copytree(full, tmp_path / "short")
    last = sorted((tmp_path / "short" / "train" / "lunge" / "lunge_a").glob("img_*.jpg"))[-2:]
    for f in last:
        f.unlink()
    with pytest.raises(InteropError, match=r"lunge_a: \d+ frames numbered from img_00001 without a gap, where "
                                           r"tpslab extract-frames wrote \d+"):
        export_lists(ds, tmp_path / "fourth", frames=tmp_path / "short", progress=False)


def test_lists_refuse_paths_with_whitespace(tmp_path):
    root = make_release(tmp_path / "release", {("front raises", "a_b"): {1: {"humans": []}}})
    ds = load_dataset(root, progress=False, cache=False, workers=1)
    with pytest.raises(InteropError, match="contains whitespace"):
        export_lists(ds, tmp_path / "lists", progress=False)


# ----------------------------------------------------------------------------- the commands


def run_cli(*argv):
    from tpslab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_export_coco_command(hurling, tmp_path):
    ds, full, small = hurling
    out = tmp_path / "gt.json"
    code, stdout, _ = run_cli("export-coco", ds.root, small, "--out", out, "--quiet", "--workers", 1)
    assert code == 0
    assert stdout.strip() == (f"{len(ds.frames)} images of 4 videos, {len(ds.humans)} persons, {len(ds.parts)} parts "
                              f"-> {out}; 4 videos with resized frames (boxes scaled); 2 videos without annotated "
                              "frames")
    assert json.loads(out.read_text())["info"]["resized_videos"] == 4
    train, val = ds.split_train_val(val_fraction=0.5, seed=1)
    code, _, _ = run_cli("export-coco", ds.root, full, "--out", out, "--split", "val", "--val-fraction", 0.5,
                         "--seed", 1, "--quiet", "--workers", 1)
    assert code == 0 and {i["video"] for i in json.loads(out.read_text())["images"]} == set(val)
    names = tmp_path / "videos.txt"
    names.write_text("hurl_b  # one video\n")
    code, _, _ = run_cli("export-coco", ds.root, full, "--out", out, "--videos", names, "--quiet", "--workers", 1)
    assert code == 0 and {i["video"] for i in json.loads(out.read_text())["images"]} == {"hurl_b"}
    # bad input: one line, exit 2, nothing overwritten
    foreign = tmp_path / "foreign.json"
    foreign.write_text("{}")
    test_only = tmp_path / "test_only.txt"
    test_only.write_text("lunge_test\n")
    for argv, message in [
        ((ds.root, full, "--out", foreign), "was not written by tpslab export-coco"),
        ((ds.root, tmp_path / "nowhere", "--out", out), "no such frames folder"),
        ((ds.root, full, "--out", tmp_path / "no" / "dir.json"), "no such folder"),
        ((ds.root, full, "--out", out, "--split", "val", "--val-fraction", 2), "strictly between 0 and 1"),
        ((ds.root, full, "--out", out, "--videos", tmp_path / "none.txt"), "none.txt"),
        ((ds.root, full, "--out", out, "--videos", test_only), "nothing to export: none of the 1 videos"),
    ]:
        code, stdout, stderr = run_cli("export-coco", *argv, "--quiet", "--workers", 1)
        assert code == 2 and stdout == "", argv
        assert stderr.startswith("tpslab export-coco: error: ") and message in stderr and stderr.count("\n") == 1
    assert foreign.read_text() == "{}"
    # ROOT is optional: one positional is FRAMES
    from tpslab.cli import _build_parser

    args = _build_parser().parse_args(["export-coco", "FR", "--out", "x.json"])
    assert args.root is None and args.frames == "FR" and args.split == "all"


def test_export_lists_command(hurling, tmp_path):
    ds, full, _ = hurling
    out = tmp_path / "lists"
    code, stdout, _ = run_cli("export-lists", ds.root, "--frames", full, "--out", out, "--quiet", "--workers", 1)
    train, val = ds.split_train_val()
    assert code == 0
    assert stdout.strip() == (f"train {len(train)}, val {len(val)}, test 2 videos: rawframe and video lists, "
                              f"PySlowFast csv files and classes.txt (2 actions) -> {out}")
    assert len(read_rawframe_list(out / "val_list_rawframes.txt", full)) == len(val)
    (out / "test.csv").write_text("changed\n")
    code, stdout, stderr = run_cli("export-lists", ds.root, "--out", out, "--quiet")
    assert code == 2 and stderr.startswith("tpslab export-lists: error: ") and "test.csv" in stderr
    assert stderr.count("\n") == 1 and (out / "test.csv").read_text() == "changed\n"


def test_the_one_coco_builder_scales_boxes_links_parts_and_refuses_unknown_parts():
    from tpslab.interop import coco_of_tables

    images = pd.DataFrame({"video": ["v", "v"], "frame": [1, 6], "file_name": ["v/img_00001.jpg", "v/img_00006.jpg"],
                           "width": [50, 50], "height": [40, 40], "video_width": [100, 100], "video_height": [80, 80]})
    humans = pd.DataFrame({"video": ["v", "w"], "frame": [6, 1], "human": [0, 0], "x1": [10.0, 0], "y1": [20.0, 0],
                           "x2": [29.0, 1], "y2": [39.0, 1]})
    parts = pd.DataFrame({"video": ["v"], "frame": [6], "human": [0], "part": ["hip"], "state": ["bend"],
                          "object": [None], "part_x1": [10.0], "part_y1": [20.0], "part_x2": [19.0], "part_y2": [29.0],
                          "object_x1": [np.nan], "object_y1": [np.nan], "object_x2": [np.nan], "object_y2": [np.nan]})
    coco = coco_of_tables(images, humans, parts, ["head", "hip"], where="here")
    assert [im["id"] for im in coco.images] == [1, 2] and (coco.persons, coco.parts, coco.inexact) == (1, 1, 0)
    person, hip = coco.annotations()
    assert person == {"id": 1, "image_id": 2, "category_id": PERSON_ID, "bbox": [5.0, 10.0, 10.0, 10.0],
                      "area": 100.0, "iscrowd": 0, "human": 0}  # half-size frames: inclusive corners, halved
    assert (hip["category_id"], hip["person_id"], hip["bbox"], hip["object_bbox"]) == (PERSON_ID + 2, 1,
                                                                                       [5.0, 10.0, 5.0, 5.0], None)
    with pytest.raises(InteropError, match="^here: parts outside the part vocabulary: hip$"):
        coco_of_tables(images, humans, parts, ["head"], where="here")
    # finite corners whose COCO width, height or area overflow were written as null (COCOeval then fails)
    for table, column, value, what in [(humans, "x2", 1e308, "v frame 6 humans[0]: box"),
                                       (humans, "x1", -1.7e308, "v frame 6 humans[0]: box"),
                                       (parts, "part_x2", 1.7e308, "v frame 6 humans[0] hip: part box"),
                                       (parts, "object_y2", 1.7e308, "v frame 6 humans[0] hip: object box")]:
        huge = table.copy()
        huge.loc[0, column] = value
        if column.startswith("object"):  # a height of 1.7e308 - -1.7e308: inf (no area is written for objects)
            huge.loc[0, ["object_x1", "object_y1", "object_x2"]] = [0.0, -1.7e308, 1.0]
        tables = (huge, parts) if table is humans else (humans, huge)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no numpy overflow warning either: the one line says it
            with pytest.raises(InteropError, match="^here: " + re.escape(what) + r" \[.*\] is too large for COCO's "
                               r"\[x, y, w, h\] \(its width, height or area is not a finite number\)$"):
                coco_of_tables(images, *tables, ["head", "hip"], where="here")
