import json
import multiprocessing as mp
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tpslab
from tiny_models import MICRO, use_micro_as_tiny
from tpslab import synthetic
from tpslab.layout import CACHE_DIR
from tpslab.synthetic import programs, render, writer
from tpslab.vocab import ACTIONS, PARTS, Vocab

VIDEO_NAME = re.compile(r"^[A-Za-z0-9_-]{11}_(\d{6})_(\d{6})$")


@pytest.fixture(scope="module")
def tiny(tiny_record):
    """The generator's record of the tiny preset, seed 0 (generated once per session: conftest.tiny_record)."""
    return tiny_record


@pytest.fixture(scope="module")
def default_plans():
    """Plans (no pixels) of every video of the default preset (241 videos: 12 s, for the slow test)."""
    return [writer.plan_video(s) for s in writer.video_specs("default", 0)]


@pytest.fixture(scope="module")
def plans():
    """Plans (no pixels) of every sixth video of the default preset: 41 videos, every class (of 8 to 12 videos)
    among them. The properties checked on them hold for the whole preset as for this sample (the fraction
    of two-person videos: 0.44 against 0.50, annotated frames per video: 0.67 against 0.68, part box
    coverage: median 0.85 against 0.86)."""
    return [writer.plan_video(s) for s in writer.video_specs("default", 0)[::6]]


@pytest.fixture(scope="module")
def tiny_frames(tiny):
    """Every decoded frame of every tiny video: {video: [RGB frames]}."""
    return {v: decode(p) for v, p in zip(tiny.videos["video"], tiny.videos["path"])}


def decode(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def annotation_files(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted((root / "train_annotations").rglob("*.json"))}


# ----------------------------------------------------------------------------- layout and files


def test_release_layout(tiny):
    root, preset = tiny.root, synthetic.PRESETS["tiny"]
    # (.tpslab: the index cache that loading this dataset, shared by the session's tests, writes beside it)
    assert sorted(p.name for p in root.iterdir() if p.name != CACHE_DIR) == [
        "list", "test_videos", "train_annotations", "train_videos"]
    vocab = Vocab.default()
    lists = (("body_part.txt", vocab.parts), ("part_stat.txt", vocab.states), ("object.txt", vocab.objects))
    for fname, names in lists:
        assert (root / "list" / fname).read_text().split() == list(names.names)
    videos = tiny.videos
    assert set(videos["label"]) == set(preset.classes)
    for split in ("train", "test"):
        lines = (root / "list" / f"video_{split}_flist.csv").read_text().splitlines()
        assert lines[0] == "class,video,frames"
        rows = [ln.split(",") for ln in lines[1:]]
        expected = videos[videos["split"] == split]
        assert sorted((c, v, int(n)) for c, v, n in rows) == sorted(
            zip(expected["label"], expected["video"], expected["num_frames"]))
        files = sorted((root / f"{split}_videos").glob("*/*.mp4"))
        assert sorted(f"{f.parent.name}/{f.stem}" for f in files) == sorted(
            f"{c}/{v}" for c, v, _ in rows)
    assert (videos["split"] == "test").sum() == preset.test_videos * len(preset.classes)
    for video in videos["video"]:
        m = VIDEO_NAME.match(video)
        assert m and int(m.group(2)) - int(m.group(1)) == 10
    # annotations: double-nested, 1-based, only for train videos, inside the video's frame range
    ann_videos = set()
    for f in (root / "train_annotations").rglob("*.json"):
        label, video, inner = f.relative_to(root / "train_annotations").parts[:3]
        assert inner == video and re.fullmatch(r"img_\d{5}\.json", f.name)
        n = int(videos.set_index("video").loc[video, "num_frames"])
        assert 1 <= int(f.name[4:9]) <= n
        ann_videos.add(video)
    assert ann_videos == set(videos.loc[videos["split"] == "train", "video"])


def test_videos_are_h264_with_the_listed_frame_count(tiny):
    import av

    w, h = synthetic.PRESETS["tiny"].size
    for row in tiny.videos.itertuples():
        with av.open(row.path) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264" and s.format.name == "yuv420p"
            assert (s.width, s.height) == (w, h)
            n = sum(1 for _ in c.decode(video=0))
        assert n == row.num_frames


def test_loading_reproduces_the_generators_record(tiny):
    ds = tpslab.load_dataset(tiny.root, progress=False)
    assert ds.problems == []
    for table in ("videos", "frames", "humans", "parts"):
        pd.testing.assert_frame_equal(getattr(ds, table), getattr(tiny, table), check_dtype=False,
                                      check_categorical=False, obj=table)
    # the record is built from the generator's state, so this compares two independent paths
    assert len(tiny.parts) > 1000 and tiny.parts["object"].notna().any()


def test_plan_record_recomputes_the_record_without_pixels(tiny):
    again = synthetic.plan_record(tiny.root, preset="tiny", seed=0)
    for table in ("videos", "frames", "humans", "parts", "test_frames", "test_humans", "test_parts"):
        pd.testing.assert_frame_equal(getattr(again, table), getattr(tiny, table), obj=table)
    # test videos have ground truth in the record but no annotation files
    assert set(tiny.test_frames["video"]) == set(tiny.videos.loc[tiny.videos["split"] == "test", "video"])
    assert len(tiny.test_parts) > 0


def test_generation_is_deterministic_and_independent_of_workers(tmp_path):
    # a small preset (six videos): one process, then two worker processes
    one = synthetic.generate(tmp_path / "one", preset=MICRO, seed=0, progress=False, workers=1)
    other = synthetic.generate(tmp_path / "again", preset=MICRO, seed=0, progress=False, workers=2)
    assert len(one.videos) == 6 and len(annotation_files(one.root)) > 20
    assert annotation_files(other.root) == annotation_files(one.root)
    for f in ("video_train_flist.csv", "video_test_flist.csv"):
        assert (other.root / "list" / f).read_bytes() == (one.root / "list" / f).read_bytes()
    for a, b in zip(one.videos["path"], other.videos["path"]):
        fa, fb = decode(a), decode(b)
        assert len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb))
    # another seed: other videos (the record names the videos the specs name)
    assert {s.video for s in writer.video_specs(MICRO, 1)}.isdisjoint(one.videos["video"])


# ----------------------------------------------------------------------------- annotation content


def _all_frames(plans):
    for plan in plans:
        if plan.spec.split == "train":
            for t in plan.annotated:
                yield plan, t, writer.frame_json(plan.annotations[t])


def test_json_varies_as_the_real_annotations(plans):
    seen = Counter()
    for plan, t, doc in _all_frames(plans):
        w, h = plan.spec.size
        json.loads(json.dumps(doc))  # plain JSON
        humans = doc["humans"]
        seen["empty frame"] += not humans
        assert len(humans) <= 2 and [hu["number"] for hu in humans] == list(range(1, len(humans) + 1))
        for hu in humans:
            seen["empty parts"] += not hu["parts"]
            seen["some parts missing"] += 0 < len(hu["parts"]) < len(PARTS)
            names = [p["name"] for p in hu["parts"]]
            assert len(set(names)) == len(names)
            boxes = [hu["box"]] + [p["box"] for p in hu["parts"]]
            boxes += [p["obj_bbox"] for p in hu["parts"] if "obj_bbox" in p]
            for b in boxes:
                assert len(b) == 4 and 0 <= b[0] <= b[2] <= w - 1 and 0 <= b[1] <= b[3] <= h - 1, b
                seen["float box" if isinstance(b[0], float) else "int box"] += 1
            for p in hu["parts"]:
                # As the release writes parts, and as third-party readers of the raw files index them
                # (p["obj_class"] on every part, p["obj_bbox"] whenever obj_class names an object):
                obj = p["obj_class"]
                if obj is None:
                    seen["no object (null)"] += 1
                    assert "obj_bbox" not in p
                else:
                    assert isinstance(obj, str) and obj != "" and len(p["obj_bbox"]) == 4
                    seen["object none with box" if obj == "none" else "object"] += 1
    for form in ("empty frame", "empty parts", "some parts missing", "float box", "int box", "no object (null)",
                 "object none with box", "object"):
        assert seen[form] > 0, form
    assert seen["int box"] > seen["float box"]


def test_files_on_disk_write_objects_as_the_release(tiny):
    # Third-party readers of the raw files (e.g. KG-CLIP's data scripts) index part["obj_class"] on every
    # part and part["obj_bbox"] whenever obj_class is set: the files must have both in that form.
    parts = [p for f in (tiny.root / "train_annotations").rglob("img_*.json")
             for hu in json.loads(f.read_text())["humans"] for p in hu["parts"]]
    assert len(parts) > 1000
    assert all("obj_class" in p for p in parts)
    assert all(("obj_bbox" in p) == (p["obj_class"] is not None) for p in parts)
    assert {type(p["obj_class"]) for p in parts} == {type(None), str} and "" not in [p["obj_class"] for p in parts]


def test_annotated_frames_are_irregular(plans):
    coverage = []
    for plan in plans:
        frames = np.array(plan.annotated)
        coverage.append(len(frames) / plan.spec.num_frames)
        assert len(set(np.diff(frames))) > 1  # no fixed stride
    assert 0.5 <= np.mean(coverage) <= 0.7 and min(coverage) > 0.25


def test_one_or_two_people_per_video(plans):
    counts = Counter(len(p.people) for p in plans)
    assert set(counts) == {1, 2} and min(counts.values()) > 0.3 * len(plans)


def test_every_name_is_in_the_vocabulary(tiny, plans):
    vocab = Vocab.default()
    states, objects = programs.used_names()
    assert states <= set(vocab.states.names) and objects <= set(vocab.objects.names)
    assert set(programs.PROGRAMS) == set(ACTIONS)
    assert set(tiny.parts["state"]) <= states and set(tiny.parts["object"].dropna()) <= objects
    for plan, _, doc in _all_frames(plans):
        for hu in doc["humans"]:
            for p in hu["parts"]:
                assert p["name"] in vocab.parts and p["verb"] in states
                assert p.get("obj_class") in (None, "") or p["obj_class"] in objects


def test_motif_states_are_the_drawable_ones():
    for motif in programs.MOTIFS.values():
        for phase in motif.phases:
            for slot, (state, _) in phase.slots:
                kind = programs.part_kind(slot.replace("lead_", "left_").replace("other_", "right_"))
                assert state in programs.PART_STATES[kind], (motif.name, slot, state)
    assert set(render.ARM_ANGLES) == set(programs.PART_STATES["arm"])
    assert set(render.LEG_ANGLES) == set(programs.PART_STATES["leg"])
    assert set(render.FOOT_ANGLES) == set(programs.PART_STATES["foot"])
    assert set(render.HIP_ANGLES) == set(programs.PART_STATES["hip"])


# ----------------------------------------------------------------------------- program design


def test_every_motif_is_shared_and_every_combination_unique():
    combos = [(p.upper, p.lower, p.torso) for p in programs.PROGRAMS.values()]
    assert len(set(combos)) == len(combos)
    for g, group in enumerate(("upper", "lower", "torso")):
        uses = Counter(c[g] for c in combos)
        assert min(uses.values()) >= 2, (group, uses)
    # many actions share two of their three motifs (6 or 8 of 10 parts) with another action
    close = [a for a in combos if any(sum(x == y for x, y in zip(a, b)) == 2 for b in combos if b != a)]
    assert len(close) >= len(combos) // 2


def _state_bags(per_action=10, seed=0):
    """Per-video bags of (part, state) label frequencies, normalised per part, as a model would see them."""
    rng = np.random.default_rng(seed)
    columns = [(p, s) for p in PARTS for s in programs.PART_STATES[programs.part_kind(p)]]
    col = {c: i for i, c in enumerate(columns)}
    X, y = [], []
    lo, hi = synthetic.PRESETS["default"].frames
    for action in ACTIONS:
        for _ in range(per_action):
            n = int(rng.integers(lo, hi + 1))
            tl = programs.action_timeline(action, n, rng)
            frames = np.flatnonzero(rng.random(n) < 0.6)
            v = np.zeros(len(columns))
            for t in frames:
                for part, state in tl.labels[t].items():
                    v[col[(part, state)]] += 1
            X.append(v)
            y.append(action)
    X = np.array(X)
    for p in PARTS:
        idx = [i for i, c in enumerate(columns) if c[0] == p]
        X[:, idx] /= np.maximum(X[:, idx].sum(1, keepdims=True), 1)
    return X, np.array(y), columns


@pytest.mark.slow  # a statistical experiment on the generator (75 cross-validated fits)
def test_actions_need_several_parts():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    X, y, columns = _state_bags()

    def accuracy(parts):
        idx = [i for i, c in enumerate(columns) if c[0] in parts]
        return cross_val_score(LogisticRegression(C=10.0, max_iter=3000), X[:, idx], y, cv=5).mean()

    chance = 1 / len(ACTIONS)
    assert accuracy(PARTS) >= 0.9  # all parts together decide the action
    for part in PARTS:  # no single part does
        assert accuracy([part]) < 0.45, part
    for group, parts in programs.GROUPS.items():  # nor a whole body group
        assert accuracy(parts) < 0.7, group
    assert accuracy(["head"]) < 6 * chance  # mostly "none", as in the real data


def test_states_hold_over_stretches_of_frames():
    """Phases last 8-25 frames: a part's state changes rarely, so smoothing along time can help."""
    lo, hi = programs.PHASE_FRAMES
    assert lo >= 8
    for motif in programs.MOTIFS.values():
        for phase in motif.phases:
            assert lo <= phase.frames[0] <= phase.frames[1] <= hi, (motif.name, phase.frames)
    rng = np.random.default_rng(0)
    n_lo, n_hi = synthetic.PRESETS["default"].frames
    runs, changes, frames = [], 0, 0
    for action in ACTIONS:
        for _ in range(5):
            n = int(rng.integers(n_lo, n_hi + 1))
            tl = programs.action_timeline(action, n, rng)
            for part in PARTS:
                shown = [s[part] for s in tl.states]
                starts = [0] + [t for t in range(1, n) if shown[t] != shown[t - 1]] + [n]
                runs += list(np.diff(starts)[1:-1])  # runs cut by the video's start or end excluded
                changes += len(starts) - 2
                frames += n
    # a slip replaces a whole phase, and sides switch between cycles: no run is shorter than a phase
    assert min(runs) >= lo and np.median(runs) >= 12
    assert changes / frames < 0.05  # the state of a part changes in fewer than 1 frame in 20


# ----------------------------------------------------------------------------- boxes


def _box_rows(plans):
    """Per annotated part: the annotation's part and human boxes, the part's tight (drawn) box and
    the person's tight box, and the state."""
    rows = []
    for plan in plans:
        for t in plan.annotated:
            for hu in plan.annotations[t]:
                tight = render.part_boxes(plan.people[hu.person].poses[t])
                union = [min(b[0] for b in tight.values()), min(b[1] for b in tight.values()),
                         max(b[2] for b in tight.values()), max(b[3] for b in tight.values())]
                for p in hu.parts:
                    rows.append((plan.spec.index, p.name, p.state, *p.box, *hu.box, *tight[p.name], *union))
    columns = ["index", "part", "state", "part_x1", "part_y1", "part_x2", "part_y2",
               "human_x1", "human_y1", "human_x2", "human_y2", "tight_x1", "tight_y1", "tight_x2", "tight_y2",
               "person_x1", "person_y1", "person_x2", "person_y2"]
    return pd.DataFrame(rows, columns=columns)


PART_BOX = ["part_x1", "part_y1", "part_x2", "part_y2"]
HUMAN_BOX = ["human_x1", "human_y1", "human_x2", "human_y2"]


def test_part_boxes_cover_the_drawn_part(plans):
    """Annotation boxes are not tight, yet cover most of the part's drawn extent, and each holds its
    part's middle."""
    rows = _box_rows(plans)
    a = rows[PART_BOX].to_numpy(float)
    tight = rows[["tight_x1", "tight_y1", "tight_x2", "tight_y2"]].to_numpy(float)
    inter = (np.clip(np.minimum(a[:, 2], tight[:, 2]) - np.maximum(a[:, 0], tight[:, 0]), 0, None)
             * np.clip(np.minimum(a[:, 3], tight[:, 3]) - np.maximum(a[:, 1], tight[:, 1]), 0, None))
    coverage = inter / ((tight[:, 2] - tight[:, 0]) * (tight[:, 3] - tight[:, 1]))
    assert np.median(coverage) > 0.8 and np.quantile(coverage, 0.1) > 0.5
    middle = (tight[:, :2] + tight[:, 2:]) / 2
    inside = (a[:, :2] <= middle + 1.5) & (middle - 1.5 <= a[:, 2:])  # clipped at the frame edge: 1 px slack
    assert inside.all(axis=1).mean() > 0.98
    # near-square whatever the limb does: a tight box of a straight arm or leg is long and thin
    log_aspect = np.abs(np.log((a[:, 2] - a[:, 0] + 1) / (a[:, 3] - a[:, 1] + 1)))
    tight_log_aspect = np.abs(np.log((tight[:, 2] - tight[:, 0]) / (tight[:, 3] - tight[:, 1])))
    assert np.median(log_aspect) < 0.2 < np.median(tight_log_aspect)


@pytest.mark.slow
def test_box_geometry_tells_little_about_the_state(default_plans):
    """The shape and place of a part box within its person box hardly predict the part's state (the
    pixels must be read), while tight boxes of the drawn parts would give most states away.

    Slow (15 to 25 s: every video of the default preset, two boosted-tree fits on 19,000 boxes): the tight
    boxes beat the prior by 0.25 here (0.15 asked), by 0.16 on half the videos, so it needs them all. It
    runs in `make test`'s slow pass (``pytest -m slow``)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from tpslab.models.recognizer import box_geometry

    vocab = Vocab.default()
    rows = _box_rows(default_plans)
    tight = rows.copy()
    tight[PART_BOX] = rows[["tight_x1", "tight_y1", "tight_x2", "tight_y2"]].to_numpy()
    tight[HUMAN_BOX] = rows[["person_x1", "person_y1", "person_x2", "person_y2"]].to_numpy()
    held_out = (rows["index"] % 4 == 0).to_numpy()  # whole videos
    train = np.flatnonzero(~held_out)[::5]  # a sample keeps the test quick
    majority = rows.iloc[train].groupby("part")["state"].agg(lambda s: s.value_counts().index[0])
    truth = rows.loc[held_out, "state"].to_numpy()
    prior = float(np.mean(rows.loc[held_out, "part"].map(majority).to_numpy() == truth))

    def top1(table):
        x = np.hstack([box_geometry(table), np.eye(len(PARTS))[vocab.parts.ids(table["part"])]])
        model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x[train], table["state"].iloc[train])
        return float(np.mean(model.predict(x[held_out]) == truth))

    from_annotations, from_tight = top1(rows), top1(tight)
    assert from_tight > prior + 0.15, (from_tight, prior)
    assert from_annotations < min(prior + 0.08, 0.65), (from_annotations, prior)


# ----------------------------------------------------------------------------- pixels


def _pose(states, objects=None, seed=0):
    body = render.Body.draw(np.random.default_rng(seed), 110.0, 128.0, 180.0, lively=False)
    body.jitter = 0.0
    objects = objects or {p: None for p in PARTS}
    return render.pose(body, 0, states, objects, None, None, 1, (0, 0), np.random.default_rng(0))


def _picture(pose):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (256, 192), (128, 128, 128))
    look = render.Look((230, 180, 140), (40, 90, 200), (60, 60, 60), (20, 20, 20), (40, 30, 20))
    objs = render.object_instances(pose)
    draw = ImageDraw.Draw(im)
    for o in objs:
        render.draw_object(draw, o, behind=True)
    render.draw_person(draw, pose, look)
    for o in objs:
        render.draw_object(draw, o, behind=False)
    return np.asarray(im, np.int16)


BASE = {"head": "none", "hip": "none", "left_arm": "none", "right_arm": "none", "left_hand": "none",
        "right_hand": "none", "left_leg": "stand", "right_leg": "stand", "left_foot": "step_on",
        "right_foot": "step_on"}


@pytest.mark.parametrize("part", ["head", "hip", "left_arm", "right_hand", "left_leg", "right_foot"])
def test_each_state_of_a_part_looks_different(part):
    """Change one part's state, keep everything else: the pixels inside that part's box change."""
    kind = programs.part_kind(part)
    pictures = {}
    for state in programs.PART_STATES[kind]:
        states = dict(BASE, **{part: state})
        if kind == "hip" and state == "sit":
            objects = {p: ("none" if p == "hip" else None) for p in PARTS}
        else:
            objects = None
        p = _pose(states, objects)
        pictures[state] = (_picture(p), render.part_boxes(p)[part])
    for a in pictures:
        for b in pictures:
            if a < b:
                (ia, ba), (ib, bb) = pictures[a], pictures[b]
                x1, y1 = int(max(0, min(ba[0], bb[0]))), int(max(0, min(ba[1], bb[1])))
                x2, y2 = int(max(ba[2], bb[2])) + 1, int(max(ba[3], bb[3])) + 1
                diff = np.abs(ia[y1:y2, x1:x2] - ib[y1:y2, x1:x2]).max(axis=2) > 40
                assert diff.mean() > 0.05, (part, a, b, diff.mean())


def test_part_boxes_cover_drawn_pixels(plans):
    """Every exact part box, and every annotation box, holds figure pixels (boxes and drawing agree)."""
    plan = next(p for p in plans if len(p.people) == 2)
    w, h = plan.spec.size
    rng = np.random.default_rng(0)
    bg = render.background(w, h, 4, rng)
    noise = np.zeros((h + 16, w + 16, 3), np.int16)
    looks = [render.Look.draw(rng) for _ in plan.people]
    for t in (0, plan.spec.num_frames // 2):
        empty = render.render_frame(bg, 4, plan.camera[t], [], noise, (0, 0), 0).astype(int)
        for person, look in zip(plan.people, looks):
            full = render.render_frame(bg, 4, plan.camera[t], [(person.poses[t], look, [])], noise, (0, 0), 0)
            changed = np.abs(full.astype(int) - empty).max(axis=2) > 0
            for part, (x1, y1, x2, y2) in render.part_boxes(person.poses[t]).items():
                x1, y1 = max(0, int(x1)), max(0, int(y1))
                x2, y2 = min(w, int(x2) + 1), min(h, int(y2) + 1)
                if x2 - x1 > 2 and y2 - y1 > 2:
                    assert changed[y1:y2, x1:x2].mean() > 0.15, part
            for hu in plan.annotations.get(t, []):
                if plan.people[hu.person] is person:
                    for p in hu.parts:
                        x1, y1, x2, y2 = (round(v) for v in p.box)
                        assert changed[y1:y2 + 1, x1:x2 + 1].mean() > 0.1, p.name


def _orientation_histograms(grey: np.ndarray, cells: int = 4, bins: int = 8) -> np.ndarray:
    """A HOG-like descriptor: per cell of a ``cells`` x ``cells`` grid, the gradient magnitude summed
    per orientation bin; normalised."""
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    orientation = np.minimum((np.mod(np.arctan2(gy, gx), np.pi) / np.pi * bins).astype(int), bins - 1)
    n = grey.shape[0] // cells
    hist = [np.bincount(orientation[i:i + n, j:j + n].ravel(), magnitude[i:i + n, j:j + n].ravel(), bins)
            for i in range(0, cells * n, n) for j in range(0, cells * n, n)]
    f = np.concatenate(hist)
    return f / (np.linalg.norm(f) + 1e-6)


def _crop_features(parts, frames, size=24):
    """Orientation histograms of grey crops around each part box (a margin of context), with the states."""
    from PIL import Image

    feats, states = [], []
    for r in parts.itertuples():
        side = max(r.part_x2 - r.part_x1, r.part_y2 - r.part_y1) + 6
        cx, cy = (r.part_x1 + r.part_x2) / 2, (r.part_y1 + r.part_y2) / 2
        box = tuple(int(round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
        crop = Image.fromarray(frames[r.video][r.frame - 1]).crop(box).convert("L").resize((size, size))
        feats.append(_orientation_histograms(np.asarray(crop, np.float64)))
        states.append(str(r.state))
    return np.array(feats), np.array(states)


@pytest.mark.slow  # a statistical experiment on the generator (a classifier per kind of part)
@pytest.mark.parametrize("kind", ["arm", "hand", "leg"])
def test_states_can_be_read_from_video_crops(tiny, tiny_frames, kind):
    """A linear model on the shapes (gradient orientations) in pixel crops of the train videos reads the
    states of the (unseen) test videos far better than chance, every state weighing the same (the box
    alone tells little: see test_box_geometry_tells_little_about_the_state)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    frames = tiny_frames

    def of_kind(parts):
        return parts[parts["part"].isin([f"left_{kind}", f"right_{kind}"])]

    x_train, y_train = _crop_features(of_kind(tiny.parts), frames)
    x_test, y_test = _crop_features(of_kind(tiny.test_parts), frames)
    model = LogisticRegression(max_iter=3000, class_weight="balanced").fit(x_train, y_train)
    balanced = balanced_accuracy_score(y_test, model.predict(x_test))
    chance = 1 / len(set(y_test))
    assert balanced > chance + 0.15, (balanced, chance)


# ----------------------------------------------------------------------------- caching and atomicity


def test_ensure_mini_generates_once(monkeypatch):
    root = synthetic.ensure_mini(MICRO, seed=3, progress=False)
    assert root == synthetic.mini_path(MICRO, 3) and root.name == f"mini-micro-seed3-v{synthetic.GENERATOR_VERSION}"
    assert (root / "list" / "video_train_flist.csv").is_file()

    def fail(*a, **k):
        raise AssertionError("generated twice")

    monkeypatch.setattr(synthetic, "generate", fail)
    assert synthetic.ensure_mini(MICRO, seed=3, progress=False) == root


def _ensure(queue):
    queue.put(str(synthetic.ensure_mini(MICRO, seed=4, progress=False)))


def test_ensure_mini_from_two_processes_at_once():
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ensure, args=(queue,)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    root = synthetic.mini_path(MICRO, 4)
    assert results == [str(root)] * 2
    assert not list(root.parent.glob(f".{root.name}.partial-*"))
    n_train = sum(s.split == "train" for s in writer.video_specs(MICRO, 4))
    assert len(list((root / "train_videos").rglob("*.mp4"))) == n_train


def test_generate_leaves_nothing_when_interrupted(tmp_path, monkeypatch):
    calls = []
    real = writer.make_video

    def flaky(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(writer, "make_video", flaky)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate(tmp_path / "out", preset="tiny", progress=False, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_a_non_empty_folder_and_bad_presets(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        synthetic.generate(tmp_path / "full", preset="tiny", progress=False)
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        synthetic.generate(tmp_path / "new", preset="huge", progress=False)
    (tmp_path / "empty").mkdir()
    rec = synthetic.generate(tmp_path / "empty", preset=MICRO, progress=False)
    assert rec.root == tmp_path / "empty" and (rec.root / "train_videos").is_dir()


def test_cli_mini_writes_a_dataset(tmp_path, capsys, monkeypatch):
    from tpslab.cli import main

    use_micro_as_tiny(monkeypatch)
    assert main(["mini", str(tmp_path / "cli"), "--preset", "tiny", "--seed", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    assert (tmp_path / "cli" / "list" / "video_test_flist.csv").is_file()


def test_generate_or_reuse_takes_a_preset_object(tmp_path):
    from tiny_models import MICRO
    from tpslab.synthetic import generate_or_reuse

    root, reused = generate_or_reuse(tmp_path / "micro", preset=MICRO, seed=1, progress=False)
    assert not reused and len(list(root.glob("train_videos/*/*.mp4"))) == 4
    assert generate_or_reuse(tmp_path / "micro", preset=MICRO, seed=1, progress=False) == (root, True)
