"""Plan, render and write the mini dataset in the Kinetics-TPS release layout.

Each video is planned from its own random generators, seeded from ``(seed, video index)``: one stream
for what happens (timelines, poses, camera, annotations), one for how it looks (colours, background,
noise). Videos can therefore be made in any order, in parallel worker processes, and come out
identical; :func:`plan_video` alone (no pixels) reproduces every annotation.

Annotations vary as the real ones do: integer boxes in most videos and floats in some, "no object"
written as a missing key, ``null`` or ``""`` (the annotator's habit, per video), the object label
``"none"`` with a box, part boxes that are near-square boxes around each part sized by the person (not
the part's tight extent; each annotator draws them a little looser or tighter), person boxes with some
room around the figure, jittered boxes, parts left out (at random, and when out of the picture),
now and then a frame with ``"humans": []`` or a human with an empty parts list, and an irregular set of
annotated frames (runs and gaps, no fixed stride).
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tpslab.challenge import frame_key, index_to_frame_number
from tpslab.memory import worker_map
from tpslab.synthetic import programs, render
from tpslab.synthetic.presets import get_preset
from tpslab.vocab import PARTS

FLIST_HEADER = "class,video,frames"
_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
_CAMERA_MARGIN = 4
# How annotators draw boxes (see _Annotator): room left around a person on each side (up to this
# fraction of the figure scale); for part boxes, the spread (log-normal sigma) of each box's size and
# width/height ratio, and of its centre's shift (a fraction of the side) from the middle of the part.
HUMAN_BOX_SLACK = 0.1
PART_BOX_SIZE_SPREAD, PART_BOX_ASPECT_SPREAD, PART_BOX_SHIFT = 0.1, 0.15, 0.1
_GEOMETRY, _PIXELS = 0, 1  # generator streams per video


@dataclass(frozen=True)
class VideoSpec:
    """Everything a worker needs to make one video."""

    index: int
    seed: int
    video: str
    label: str
    split: str
    num_frames: int
    size: tuple[int, int]
    fps: int
    distractor: float
    crf: int

    @property
    def mp4(self) -> str:
        return f"{self.split}_videos/{self.label}/{self.video}.mp4"

    @property
    def annotation_dir(self) -> str:
        return f"train_annotations/{self.label}/{self.video}/{self.video}"

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.index, stream])


def video_specs(preset, seed: int) -> list[VideoSpec]:
    """The videos of a dataset, in a fixed order: per class, its train then its test videos."""
    p = get_preset(preset)
    rng = np.random.default_rng([seed, 0x5EED])
    specs, names = [], set()
    for label in p.classes:
        n_train = int(rng.integers(p.train_videos[0], p.train_videos[1] + 1))
        for split, count in (("train", n_train), ("test", p.test_videos)):
            for _ in range(count):
                name = None
                while name is None or name in names:
                    youtube_id = "".join(_ID_ALPHABET[i] for i in rng.integers(len(_ID_ALPHABET), size=11))
                    start = int(rng.integers(0, 600))
                    name = f"{youtube_id}_{start:06d}_{start + 10:06d}"
                names.add(name)
                n_frames = int(rng.integers(p.frames[0], p.frames[1] + 1))
                specs.append(VideoSpec(len(specs), seed, name, label, split, n_frames, p.size, p.fps,
                                       p.distractor, p.crf))
    return specs


# ----------------------------------------------------------------------------- planning


@dataclass
class PartAnn:
    name: str
    box: list
    state: str
    object: str | None
    object_box: list | None


@dataclass
class HumanAnn:
    box: list
    parts: list[PartAnn]
    person: int  # index of the annotated person in ``VideoPlan.people``


@dataclass
class Person:
    """One person of a video: their build, colours, timeline and per-frame poses."""

    body: render.Body
    timeline: programs.Timeline
    poses: list[render.Pose]
    objects: list[list[render.ObjectInstance]]
    is_main: bool
    annotate_prob: float  # chance the annotator includes this person in a frame
    drop_part_prob: float


@dataclass
class VideoPlan:
    spec: VideoSpec
    people: list[Person]
    camera: list[tuple[int, int]]
    annotated: list[int]  # 0-based frame indices that have an annotation (for test videos: the truth)
    annotations: dict[int, list[HumanAnn]]


def _annotated_frames(n: int, rng: np.random.Generator) -> list[int]:
    """Runs of annotated frames separated by gaps, covering roughly half to two thirds of the video."""
    out = []
    t = 0 if rng.random() < 0.85 else int(rng.integers(1, 4))
    while t < n:
        run = 1 + int(rng.geometric(0.3))
        out.extend(range(t, min(n, t + run)))
        gap = int(rng.geometric(0.55))
        if rng.random() < 0.08:
            gap += int(rng.integers(3, 8))
        t += run + gap
    return out


def _place_people(spec: VideoSpec, rng: np.random.Generator) -> list[tuple[render.Body, bool]]:
    """The main person (True) and maybe a smaller bystander (False) beside them, on the floor."""
    w, h = spec.size
    program = programs.PROGRAMS[spec.label]
    lively = program.lower in ("step_around", "hop", "kick") or program.torso == "hip_sway"
    scale = h * float(rng.uniform(0.56, 0.66))
    ground = h * float(rng.uniform(0.90, 0.95))
    with_distractor = rng.random() < spec.distractor
    if not with_distractor:
        return [(render.Body.draw(rng, scale, w * float(rng.uniform(0.36, 0.64)), ground, lively), True)]
    left = rng.random() < 0.5
    main_x = w * float(rng.uniform(0.52, 0.64) if left else rng.uniform(0.36, 0.48))
    other_x = w * float(rng.uniform(0.08, 0.24) if left else rng.uniform(0.76, 0.92))
    other_scale = scale * float(rng.uniform(0.68, 0.85))
    other_ground = ground - (scale - other_scale) * 0.35
    return [(render.Body.draw(rng, scale, main_x, ground, lively), True),
            (render.Body.draw(rng, other_scale, other_x, other_ground, False), False)]


def _camera_path(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    pos = np.zeros(2)
    out = []
    for _ in range(n):
        pos = np.clip(pos + rng.normal(0, 0.45, 2), -(_CAMERA_MARGIN - 1), _CAMERA_MARGIN - 1)
        out.append((int(round(pos[0])), int(round(pos[1]))))
    return out


def _clip_box(box, w: int, h: int):
    x1, y1, x2, y2 = box
    return max(0.0, x1), max(0.0, y1), min(w - 1.0, x2), min(h - 1.0, y2)


def _area(box) -> float:
    return max(0.0, box[2] - box[0] + 1) * max(0.0, box[3] - box[1] + 1)


class _Annotator:
    """Turns exact geometry into annotation boxes the way one annotator would write them."""

    def __init__(self, spec: VideoSpec, rng: np.random.Generator):
        self.w, self.h = spec.size
        self.rng = rng
        self.decimals = int(rng.integers(1, 3)) if rng.random() < 0.2 else None  # None: integer boxes
        # v3 annotators wrote "no object" three ways; the release always writes null. Their draws stay
        # (here and in skip_draw_of_v3) so that every other box and label is as in v3.
        rng.integers(3)
        self.main_first = rng.random() < 0.7
        self.box_size = float(rng.uniform(0.85, 1.2))  # some annotators draw looser boxes than others

    def human_box(self, tight, scale: float) -> list | None:
        """The box around a whole person: the figure's extent with some room on each side."""
        slack = self.rng.uniform(0.0, HUMAN_BOX_SLACK, 4) * scale
        return self.box((tight[0] - slack[0], tight[1] - slack[1], tight[2] + slack[2], tight[3] + slack[3]), 1.2)

    def part_box(self, tight, part: str, scale: float) -> list | None:
        """A near-square box around the part (see :func:`render.annotation_box`), jittered and rounded."""
        rng = self.rng
        size = self.box_size * float(rng.lognormal(0.0, PART_BOX_SIZE_SPREAD))
        aspect = float(rng.lognormal(0.0, PART_BOX_ASPECT_SPREAD))
        exact = render.annotation_box(tight, part, scale, size, aspect, tuple(rng.normal(0.0, PART_BOX_SHIFT, 2)))
        return self.box(exact, 1.0)

    def skip_draw_of_v3(self) -> None:
        """The draw v3 made per part for its way of writing "no object" (see ``__init__``)."""
        self.rng.random()

    def box(self, exact, sigma: float) -> list | None:
        """Jitter, clip and round a box; None when too little of it is in the picture."""
        rng = self.rng
        if rng.random() < 0.04:
            sigma *= 4  # now and then a sloppy box
        jittered = [v + float(rng.normal(0, sigma)) for v in exact]
        clipped = _clip_box(jittered, self.w, self.h)
        if _area(clipped) < 0.35 * _area(jittered) or clipped[2] < clipped[0] or clipped[3] < clipped[1]:
            return None
        if self.decimals is None:
            out = [int(round(v)) for v in clipped]
        else:
            out = [round(float(v), self.decimals) for v in clipped]
        return out


_GROUP_OF = {part: group for group, parts in programs.GROUPS.items() for part in parts}


def _posture(timeline: programs.Timeline, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per part, angle offsets (degrees) for each phase occurrence: how this person does this phase."""
    out = {}
    for part, group in _GROUP_OF.items():
        sd = render.POSTURE_SD[programs.part_kind(part)]
        out[part] = rng.normal(0.0, 1.0, (int(timeline.phase_index[group][-1]) + 1, len(sd))) * np.asarray(sd)
    return out


def plan_video(spec: VideoSpec) -> VideoPlan:
    """Everything about one video except its pixels: timelines, poses, objects, camera, annotations."""
    rng = spec.rng(_GEOMETRY)
    n = spec.num_frames
    w, h = spec.size
    people = []
    for body, is_main in _place_people(spec, rng):
        tl = programs.action_timeline(spec.label, n, rng) if is_main else programs.distractor_timeline(n, rng)
        people.append(Person(body, tl, [], [], is_main, 0.98 if is_main else 0.85, 0.05 if is_main else 0.25))
    camera = _camera_path(n, rng)
    for person in people:
        tl = person.timeline
        posture = _posture(tl, rng)
        for t in range(n):
            sway_sign = 1 if tl.phase_index["torso"][t] % 2 == 0 else -1
            p = render.pose(person.body, t, tl.states[t], tl.objects[t],
                            tl.states[t - 1] if t > 0 else None, tl.states[t + 1] if t + 1 < n else None,
                            sway_sign, camera[t], rng,
                            {part: posture[part][tl.phase_index[group][t]] for part, group in _GROUP_OF.items()})
            person.poses.append(p)
            person.objects.append(render.object_instances(p))
    annotated = _annotated_frames(n, rng)
    annotator = _Annotator(spec, rng)
    annotations = {}
    for t in annotated:
        humans = []
        if rng.random() < 0.012:  # a frame the annotator left empty
            annotations[t] = humans
            continue
        for k, person in enumerate(people):
            if rng.random() > person.annotate_prob:
                continue
            ann = _annotate_person(person, k, t, annotator, rng)
            if ann is not None:
                humans.append(ann)
        if not annotator.main_first:
            humans.sort(key=lambda hu: hu.box[0])
        annotations[t] = humans
    return VideoPlan(spec, people, camera, annotated, annotations)


def _annotate_person(person: Person, index: int, t: int, annotator: _Annotator, rng) -> HumanAnn | None:
    pose = person.poses[t]
    boxes = render.part_boxes(pose)
    union = (min(b[0] for b in boxes.values()), min(b[1] for b in boxes.values()),
             max(b[2] for b in boxes.values()), max(b[3] for b in boxes.values()))
    human_box = annotator.human_box(union, pose.scale)
    if human_box is None:
        return None
    by_part = {part: o for o in person.objects[t] for part in o.parts}
    parts = []
    if rng.random() >= 0.01:  # now and then a human with an empty parts list
        labels = person.timeline.labels[t]
        for name in PARTS:
            if rng.random() < person.drop_part_prob:
                continue
            box = annotator.part_box(boxes[name], name, pose.scale)
            if box is None:
                continue
            obj = person.timeline.objects[t].get(name)
            obj_box = None
            if obj is not None:
                inst = by_part.get(name)
                obj_box = annotator.box(inst.box, 0.8) if inst is not None else None
                if obj_box is None:  # the object is out of the picture: the annotator skips it
                    obj = None
            annotator.skip_draw_of_v3()
            parts.append(PartAnn(name, box, labels[name], obj, obj_box))
    return HumanAnn(human_box, parts, index)


def frame_json(humans: list[HumanAnn]) -> dict:
    """The raw release form of one frame file."""
    out = []
    for k, hu in enumerate(humans, 1):
        parts = []
        for p in hu.parts:
            # As the release: obj_class always present (null: no object), obj_bbox exactly with an object.
            d = {"name": p.name, "box": p.box, "verb": p.state, "obj_class": p.object}
            if p.object is not None:
                d["obj_bbox"] = p.object_box
            parts.append(d)
        out.append({"number": k, "box": hu.box, "parts": parts})
    return {"humans": out}


# ----------------------------------------------------------------------------- rows for the record


def plan_rows(plan: VideoPlan) -> dict[str, list]:
    """The frames/humans/parts rows of one video, in file order (columns as lists)."""
    rows = {k: [] for k in ("f_frame", "f_humans", "h_frame", "h_index", "h_box", "h_parts",
                            "p_frame", "p_human", "p_hbox", "p_part", "p_box", "p_state", "p_obj", "p_obox")}
    for t in plan.annotated:
        humans = plan.annotations[t]
        frame = index_to_frame_number(t)
        rows["f_frame"].append(frame)
        rows["f_humans"].append(len(humans))
        for k, hu in enumerate(humans):
            rows["h_frame"].append(frame)
            rows["h_index"].append(k)
            rows["h_box"].append(hu.box)
            rows["h_parts"].append(len(hu.parts))
            for p in hu.parts:
                rows["p_frame"].append(frame)
                rows["p_human"].append(k)
                rows["p_hbox"].append(hu.box)
                rows["p_part"].append(p.name)
                rows["p_box"].append(p.box)
                rows["p_state"].append(p.state)
                rows["p_obj"].append(p.object)
                rows["p_obox"].append(p.object_box)
    return rows


# ----------------------------------------------------------------------------- pixels and files


def render_video(plan: VideoPlan, path: Path) -> int:
    """Render and encode one video as H.264 (yuv420p) with PyAV; returns the number of frames."""
    import av

    spec = plan.spec
    w, h = spec.size
    rng = spec.rng(_PIXELS)
    bg = render.background(w, h, _CAMERA_MARGIN, rng)
    looks = [render.Look.draw(rng) for _ in plan.people]
    noise = np.round(rng.normal(0, 3.0, (h + 16, w + 16, 3))).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(spec.crf), "preset": "superfast"}
        stream.codec_context.gop_size = 2 * spec.fps
        stream.codec_context.thread_count = 1  # one thread: bit-exact output on every run
        for t in range(spec.num_frames):
            people = [(person.poses[t], look, person.objects[t]) for person, look in zip(plan.people, looks)]
            offset = (int(rng.integers(0, 16)), int(rng.integers(0, 16)))
            flicker = int(rng.integers(-2, 3))
            pixels = render.render_frame(bg, _CAMERA_MARGIN, plan.camera[t], people, noise, offset, flicker)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return spec.num_frames


def write_annotations(plan: VideoPlan, root: Path) -> None:
    d = root / plan.spec.annotation_dir
    d.mkdir(parents=True, exist_ok=True)
    for t in plan.annotated:
        text = json.dumps(frame_json(plan.annotations[t]))
        (d / frame_key(index_to_frame_number(t))).write_text(text, encoding="utf-8")


def make_video(task) -> tuple[int, dict[str, list]]:
    """Worker: plan, render and write one video under ``root``; returns its index and record rows."""
    spec, root = task
    plan = plan_video(spec)
    render_video(plan, Path(root) / spec.mp4)
    if spec.split == "train":
        write_annotations(plan, Path(root))
    return spec.index, plan_rows(plan)


def write_lists(root: Path, specs: list[VideoSpec]) -> None:
    """The list files of the release: vocabularies and the two flist CSVs (frames = decoded frames)."""
    from tpslab.vocab import Vocab

    Vocab.default().write_lists(root)
    for split in ("train", "test"):
        lines = [FLIST_HEADER] + [f"{s.label},{s.video},{s.num_frames}" for s in specs if s.split == split]
        (root / "list" / f"video_{split}_flist.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def default_workers(n_videos: int) -> int:
    """Worker processes for ``n_videos``: none for a handful (start-up would cost more)."""
    if n_videos < 24:
        return 1
    return max(1, min(os.cpu_count() or 1, n_videos // 8))


def run_videos(specs: list[VideoSpec], root: Path, workers: int, progress: bool) -> dict[int, dict]:
    """Make every video (in ``workers`` processes that die with this one, when more than one); returns
    rows by video index."""
    tasks = [(s, str(root)) for s in specs]
    made = worker_map(make_video, tasks, workers, desc="generating mini dataset", unit="video",
                      progress=progress, leave=False)
    return dict(made)

