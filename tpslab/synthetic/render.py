"""The renderer of the mini dataset: part states -> a posed limb figure -> pixels.

Geometry and drawing are separate. :func:`pose` turns one person's part states in one frame into
joint positions (every state of a part has its own joint angles, so a bent arm is bent, a lifted arm
points up, a kicking leg is raised; each person, each phase occurrence (:data:`POSTURE_SD`) and each
frame add their own variation). :func:`part_boxes` gives the tight extent of every drawn part and
:func:`object_instances` the objects; annotation boxes are not tight: :func:`annotation_box` draws a
near-square box around the part, sized by the person, as annotators do (a tight box's shape would
give the joint angles away without a look at the pixels). :func:`draw_person` and :func:`draw_object`
paint with Pillow, and :func:`render_frame` composes a frame over a textured background with camera noise.

The figure faces the camera: the person's left side is on the image's right. Angles are in degrees,
measured from straight down and turning *outward* (away from the body's midline), in image
coordinates (y grows downward). Hands and heads show their state by shape: an open hand (``none``),
a fist with its object (``hold``), spread fingers (``grab``), a flat hand on a surface (``press``), a
hand with a burst (``clap``); a head looks ahead (``none``), down (``nod``) or sideways (``turn``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tpslab.synthetic.programs import part_kind

# Joint angles per state: arm (upper arm, forearm), leg (thigh, shin), foot, hip (torso lean).
ARM_ANGLES = {"none": (12.0, 6.0), "bend": (30.0, 160.0), "unbend": (88.0, 92.0),
              "lift": (165.0, 172.0), "swing": (-35.0, -55.0)}
LEG_ANGLES = {"stand": (4.0, 2.0), "step": (28.0, 26.0), "bend": (58.0, 4.0), "kick": (82.0, 96.0)}
FOOT_ANGLES = {"step_on": 92.0, "tiptoe": 10.0, "none": 140.0}
HIP_ANGLES = {"none": 0.0, "bend": 50.0, "sway": 22.0, "sit": 0.0}

# How much a person's pose varies between occurrences of a phase (standard deviations, degrees, of the
# angles above; hands and the head have none).
POSTURE_SD = {"arm": (25.0, 25.0), "leg": (10.0, 10.0), "foot": (15.0,), "hip": (4.0,), "hand": (), "head": ()}

# Body proportions as fractions of the figure scale (about the standing height).
LENGTHS = {"torso": 0.30, "shoulder": 0.085, "hip": 0.06, "neck": 0.035, "head": 0.07,
           "upper_arm": 0.165, "forearm": 0.15, "hand": 0.042, "thigh": 0.22, "shin": 0.21,
           "foot": 0.075, "limb": 0.045, "torso_width": 0.085, "board": 0.035}

OBJECT_COLOURS = {
    "none": (150, 60, 170), "dumbbell": (125, 125, 132), "baseball_bat": (176, 124, 62),
    "ball": (235, 85, 30), "hammer": (60, 60, 66), "body": (205, 165, 135), "skateboard": (55, 42, 36),
}
OUTLINE = (20, 20, 24)
BURST = (250, 225, 40)
SURFACE = (70, 70, 78)

Point = tuple[float, float]


def direction(side: int, angle: float) -> Point:
    """Unit vector at ``angle`` degrees from straight down, turned outward for ``side`` (+1 left, -1 right)."""
    a = math.radians(angle)
    return side * math.sin(a), math.cos(a)


def _add(p: Point, v: Point, k: float = 1.0) -> Point:
    return p[0] + k * v[0], p[1] + k * v[1]


# ----------------------------------------------------------------------------- bodies and poses


@dataclass
class Body:
    """One person's build and placement in a video (drawn from the video's geometry generator)."""

    scale: float  # figure size in pixels
    x0: float  # pelvis x at rest
    ground: float  # y of the floor under this person
    facing: int  # +1: leans toward the image's right when bending
    lengths: dict[str, float]  # in pixels
    offsets: dict[tuple[str, str], tuple[float, float]]  # personal angle offsets per (kind, state)
    drift: tuple[float, float, float]  # amplitude (px), period (frames), phase (radians)
    jitter: float = 4.0  # per-frame angle noise, degrees

    @classmethod
    def draw(cls, rng: np.random.Generator, scale: float, x0: float, ground: float, lively: bool) -> "Body":
        lengths = {k: v * scale * float(rng.uniform(0.93, 1.07)) for k, v in LENGTHS.items()}
        offsets = {}
        for kind, table in (("arm", ARM_ANGLES), ("leg", LEG_ANGLES), ("foot", FOOT_ANGLES), ("hip", HIP_ANGLES)):
            for state in table:
                offsets[(kind, state)] = tuple(float(x) for x in rng.normal(0.0, 7.0, 2))
        amplitude = float(rng.uniform(4, 10) if lively else rng.uniform(0, 2)) * scale / 100
        drift = (amplitude, float(rng.uniform(18, 40)), float(rng.uniform(0, 2 * math.pi)))
        return cls(scale, x0, ground, 1 if rng.random() < 0.5 else -1, lengths, offsets, drift)


@dataclass
class Pose:
    """Joint positions of one person in one frame, with the states and objects it shows."""

    points: dict[str, Point]
    states: dict[str, str]
    objects: dict[str, str | None]
    lengths: dict[str, float]
    facing: int
    scale: float  # the figure scale of the person, in pixels
    extras: dict = field(default_factory=dict)  # seat box, board line

    def hand_centre(self, side: str) -> Point:
        wrist, elbow = self.points[f"{side}_wrist"], self.points[f"{side}_elbow"]
        d = _unit((wrist[0] - elbow[0], wrist[1] - elbow[1]))
        return _add(wrist, d, 0.8 * self.lengths["hand"])

    def forearm_dir(self, side: str) -> Point:
        wrist, elbow = self.points[f"{side}_wrist"], self.points[f"{side}_elbow"]
        return _unit((wrist[0] - elbow[0], wrist[1] - elbow[1]))


def _unit(v: Point) -> Point:
    n = math.hypot(v[0], v[1]) or 1.0
    return v[0] / n, v[1] / n


def _blend(a: tuple, b: tuple, w: float) -> tuple:
    return tuple((1 - w) * x + w * y for x, y in zip(a, b))


def _angles(table, kind, state, body, prev, nxt, wprev, wnext):
    """The state's angles with the person's offsets, blended toward the neighbouring frames' states."""
    def of(s):
        base = table[s]
        base = base if isinstance(base, tuple) else (base,)
        off = body.offsets.get((kind, s), (0.0, 0.0))
        return tuple(x + o for x, o in zip(base, off))
    value = of(state)
    if prev is not None and prev != state:
        value = _blend(value, of(prev), wprev)
    if nxt is not None and nxt != state:
        value = _blend(value, of(nxt), wnext)
    return value


def pose(body: Body, t: int, states: dict[str, str], objects: dict[str, str | None],
         prev_states: dict[str, str] | None, next_states: dict[str, str] | None,
         sway_sign: int, camera: Point, rng: np.random.Generator,
         posture: dict[str, tuple[float, ...]] | None = None) -> Pose:
    """Place one person's joints for frame ``t``.

    At a phase boundary the pose is blended a third of the way toward the neighbouring frame's
    state, as real motion is continuous while the label switches at once. ``sway_sign`` alternates the
    side of a hip sway between phase occurrences. ``posture`` adds per-part angle offsets (degrees, in
    the order of the part's angle table), how this person does the current phase. ``rng`` adds the
    per-frame angle noise.
    """
    L = body.lengths
    prev_states = prev_states or {}
    next_states = next_states or {}

    def jit(values):
        return tuple(v + float(rng.normal(0.0, body.jitter)) for v in values)

    def angles(part, kind, table):
        st = states[part]
        value = _angles(table, kind, st, body, prev_states.get(part), next_states.get(part), 0.35, 0.35)
        if posture and part in posture:
            value = tuple(v + o for v, o in zip(value, posture[part]))
        return jit(value)

    hip_state = states["hip"]
    (lean,) = angles("hip", "hip", HIP_ANGLES)
    lean *= body.facing * (sway_sign if hip_state == "sway" else 1)
    up = (math.sin(math.radians(lean)), -math.cos(math.radians(lean)))
    perp = (-up[1], up[0])  # toward the person's left (image right) when upright

    amp, period, phase = body.drift
    pelvis = (body.x0 + amp * math.sin(2 * math.pi * t / period + phase), 0.0)
    pts: dict[str, Point] = {"pelvis": pelvis}
    neck = _add(pelvis, up, L["torso"])
    pts["neck"] = neck
    pts["torso_low"] = _add(pelvis, up, 0.35 * L["torso"])
    head = _add(neck, up, L["neck"] + L["head"])
    if states["head"] == "nod":
        head = _add(_add(head, up, -0.3 * L["head"]), perp, 0.25 * L["head"] * body.facing)
    pts["head"] = head
    for side_name, s in (("left", 1), ("right", -1)):
        shoulder = _add(neck, perp, s * L["shoulder"])
        a1, a2 = angles(f"{side_name}_arm", "arm", ARM_ANGLES)
        elbow = _add(shoulder, direction(s, a1), L["upper_arm"])
        wrist = _add(elbow, direction(s, a2), L["forearm"])
        hip = _add(pelvis, perp, s * L["hip"])
        b1, b2 = angles(f"{side_name}_leg", "leg", LEG_ANGLES)
        knee = _add(hip, direction(s, b1), L["thigh"])
        ankle = _add(knee, direction(s, b2), L["shin"])
        (c,) = angles(f"{side_name}_foot", "foot", FOOT_ANGLES)
        toe = _add(ankle, direction(s, c), L["foot"])
        pts.update({f"{side_name}_shoulder": shoulder, f"{side_name}_elbow": elbow,
                    f"{side_name}_wrist": wrist, f"{side_name}_hip": hip, f"{side_name}_knee": knee,
                    f"{side_name}_ankle": ankle, f"{side_name}_toe": toe})

    # Stand on the ground: the lowest foot point touches it (a board lifts the person; both feet
    # on tiptoe is a small jump).
    foot_pad = 0.5 * L["limb"]
    lowest = max(pts[k][1] for k in ("left_ankle", "left_toe", "right_ankle", "right_toe")) + foot_pad
    on_board = any(objects.get(f) == "skateboard" for f in ("left_foot", "right_foot"))
    ground = body.ground - (L["board"] if on_board else 0.0)
    if states["left_foot"] == "tiptoe" and states["right_foot"] == "tiptoe":
        ground -= 0.05 * body.scale
    dy = ground - lowest
    pts = {k: (x + camera[0], y + dy + camera[1]) for k, (x, y) in pts.items()}
    p = Pose(pts, dict(states), dict(objects), L, body.facing, body.scale)
    if objects.get("hip") is not None:  # a seat under the pelvis, down to the floor
        px, py = pts["pelvis"]
        w = 0.14 * body.scale
        p.extras["seat"] = (px - w, py + 0.3 * L["limb"], px + w, body.ground + camera[1])
    if on_board:
        xs = [pts[k][0] for k in ("left_ankle", "left_toe", "right_ankle", "right_toe")]
        y = body.ground + camera[1] - 0.6 * L["board"]
        p.extras["board"] = (min(xs) - 0.04 * body.scale, y, max(xs) + 0.04 * body.scale, y)
    return p


# ----------------------------------------------------------------------------- boxes


def _bbox(points, pad: float) -> tuple[float, float, float, float]:
    xs = [q[0] for q in points]
    ys = [q[1] for q in points]
    return min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad


def hand_reach(state: str, r: float) -> float:
    """How far a hand drawing extends from its centre."""
    return {"grab": 1.8 * r, "clap": 2.0 * r, "press": 1.3 * r}.get(state, 1.05 * r)


def part_boxes(p: Pose) -> dict[str, tuple[float, float, float, float]]:
    """The tight box of every drawn part, in pixels (floats): what a person's box is made of, and
    where :func:`annotation_box` centres a part's box."""
    L, pts = p.lengths, p.points
    half = 0.5 * L["limb"] + 1.0
    r = L["head"]
    boxes = {"head": _bbox([pts["head"]], r + 1.0)}
    if p.states["head"] == "turn":  # the nose sticks out sideways
        hx, hy = pts["head"]
        x1, y1, x2, y2 = boxes["head"]
        boxes["head"] = (min(x1, hx - 1.35 * r), y1, max(x2, hx + 1.35 * r), y2)
    boxes["hip"] = _bbox([pts["left_hip"], pts["right_hip"], pts["pelvis"], pts["torso_low"]],
                         0.5 * L["torso_width"] + 1.0)
    for side in ("left", "right"):
        boxes[f"{side}_arm"] = _bbox([pts[f"{side}_shoulder"], pts[f"{side}_elbow"], pts[f"{side}_wrist"]], half)
        reach = hand_reach(p.states[f"{side}_hand"], L["hand"])
        boxes[f"{side}_hand"] = _bbox([p.hand_centre(side)], reach + 1.0)
        boxes[f"{side}_leg"] = _bbox([pts[f"{side}_hip"], pts[f"{side}_knee"], pts[f"{side}_ankle"]], half)
        boxes[f"{side}_foot"] = _bbox([pts[f"{side}_ankle"], pts[f"{side}_toe"]], 0.6 * L["limb"] + 1.0)
    return boxes


# Annotators draw a roughly square box around each part, sized by the person rather than by the drawn
# limb (whose extent would give the joint angles away): the side of each kind's box as a fraction of
# the figure scale, before the annotator's own habits and jitter (see :func:`annotation_box`).
PART_BOX_SIDE = {"head": 0.2, "hip": 0.2, "arm": 0.3, "hand": 0.13, "leg": 0.36, "foot": 0.14}


def annotation_box(tight: tuple[float, float, float, float], part: str, scale: float, size: float,
                   aspect: float, shift: Point) -> tuple[float, float, float, float]:
    """The box an annotator draws around a part whose drawn extent is ``tight``.

    Centred on the middle of the drawn part, moved by ``shift`` (fractions of the side), with a side of
    ``PART_BOX_SIDE[kind] * scale * size`` and a width/height ratio of ``aspect``.
    """
    side = PART_BOX_SIDE[part_kind(part)] * scale * size
    w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
    cx = (tight[0] + tight[2]) / 2 + shift[0] * side
    cy = (tight[1] + tight[3]) / 2 + shift[1] * side
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


@dataclass
class ObjectInstance:
    """One drawn object: its label, the parts touching it, its shape and its box."""

    label: str
    parts: tuple[str, ...]
    shape: str  # "bar", "stick", "blob", "chain", "seat", "board"
    geometry: tuple
    box: tuple[float, float, float, float]


def object_instances(p: Pose) -> list[ObjectInstance]:
    """The objects one person touches: both hands on one object make a single bar-like object."""
    L = p.lengths
    r = L["hand"]
    out: list[ObjectInstance] = []
    hands = {s: p.objects.get(f"{s}_hand") for s in ("left", "right")}
    both = hands["left"] is not None and hands["left"] == hands["right"]
    if both and hands["left"] in ("dumbbell", "none", "body", "baseball_bat"):
        label = hands["left"]
        a, b = p.hand_centre("left"), p.hand_centre("right")
        if label == "baseball_bat":
            mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
            d = _unit(_add(p.forearm_dir("left"), p.forearm_dir("right")))
            end = _add(mid, d, 0.34 * p.lengths["torso"] / LENGTHS["torso"])
            out.append(_stick(label, ("left_hand", "right_hand"), mid, end, r))
        elif label == "body":
            out.append(_blob(label, ("left_hand", "right_hand"), ((a[0] + b[0]) / 2, min(a[1], b[1]) - 2.2 * r),
                             3.2 * r, 1.3 * r))
        else:
            d = _unit((b[0] - a[0], b[1] - a[1]))
            a2, b2 = _add(a, d, -1.6 * r), _add(b, d, 1.6 * r)
            thick = 0.9 * r if label == "dumbbell" else 1.1 * r
            disc = 1.5 * r if label == "dumbbell" else 0.0
            pad = max(thick / 2, disc) + 1
            out.append(ObjectInstance(label, ("left_hand", "right_hand"), "bar", (a2, b2, thick, disc),
                                      _bbox([a2, b2], pad)))
    else:
        for side in ("left", "right"):
            label = hands[side]
            if label is None:
                continue
            part = f"{side}_hand"
            c, d = p.hand_centre(side), p.forearm_dir(side)
            if label == "baseball_bat":
                out.append(_stick(label, (part,), c, _add(c, d, 0.34 * p.lengths["torso"] / LENGTHS["torso"]), r))
            elif label == "hammer":
                end = _add(c, d, 6.0 * r)
                out.append(ObjectInstance(label, (part,), "chain", (c, end, 1.4 * r), _bbox([c, end], 1.4 * r + 1)))
            elif label == "ball":
                out.append(_blob(label, (part,), _add(c, d, 1.5 * r), 0.95 * r, 0.95 * r))
            elif label == "body":
                out.append(_blob(label, (part,), _add(c, d, 2.4 * r), 2.6 * r, 1.2 * r))
            elif label == "dumbbell":
                n = (-d[1], d[0])
                a2, b2 = _add(c, n, -2.0 * r), _add(c, n, 2.0 * r)
                out.append(ObjectInstance(label, (part,), "bar", (a2, b2, 0.8 * r, 1.1 * r),
                                          _bbox([a2, b2], 1.1 * r + 1)))
            else:  # an object outside the vocabulary: a purple block at the hand
                centre = _add(c, d, 1.7 * r)
                out.append(_blob(label, (part,), centre, 1.4 * r, 1.4 * r, shape="block"))
    if "seat" in p.extras:
        x1, y1, x2, y2 = p.extras["seat"]
        out.append(ObjectInstance(p.objects["hip"], ("hip",), "seat", (x1, y1, x2, y2), (x1, y1, x2, y2)))
    if "board" in p.extras:
        x1, y, x2, _ = p.extras["board"]
        feet = tuple(f for f in ("left_foot", "right_foot") if p.objects.get(f) == "skateboard")
        t = L["board"]
        out.append(ObjectInstance("skateboard", feet, "board", (x1, y, x2, t), (x1, y - t / 2, x2, y + t)))
    return out


def _stick(label, parts, a: Point, b: Point, r: float) -> ObjectInstance:
    return ObjectInstance(label, parts, "stick", (a, b, 0.7 * r), _bbox([a, b], 0.8 * r + 1))


def _blob(label, parts, c: Point, rx: float, ry: float, shape: str = "blob") -> ObjectInstance:
    box = (c[0] - rx - 1, c[1] - ry - 1, c[0] + rx + 1, c[1] + ry + 1)
    return ObjectInstance(label, parts, shape, (c, rx, ry), box)


# ----------------------------------------------------------------------------- drawing


@dataclass
class Look:
    """Colours of one person (drawn from the video's pixel generator)."""

    skin: tuple[int, int, int]
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    shoes: tuple[int, int, int]
    hair: tuple[int, int, int]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Look":
        skins = [(241, 194, 160), (224, 172, 128), (198, 134, 90), (141, 85, 50), (255, 214, 186)]
        skin = skins[int(rng.integers(len(skins)))]

        def vivid():
            hsv_h = float(rng.uniform(0, 1))
            return _hsv(hsv_h, float(rng.uniform(0.55, 0.95)), float(rng.uniform(0.5, 0.95)))
        hair = tuple(int(x) for x in rng.integers(10, 90, 3))
        return cls(skin, vivid(), vivid(), (30, 30, 36), hair)


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


def _darker(c, k=0.7):
    return tuple(int(x * k) for x in c)


def _segment(draw, a: Point, b: Point, colour, width: float) -> None:
    """A limb segment with a dark outline and rounded ends."""
    w = max(2, int(round(width)))
    draw.line([a, b], fill=OUTLINE, width=w + 2)
    for q in (a, b):
        draw.ellipse([q[0] - (w + 2) / 2, q[1] - (w + 2) / 2, q[0] + (w + 2) / 2, q[1] + (w + 2) / 2], fill=OUTLINE)
    draw.line([a, b], fill=colour, width=w)
    for q in (a, b):
        draw.ellipse([q[0] - w / 2, q[1] - w / 2, q[0] + w / 2, q[1] + w / 2], fill=colour)


def _disc(draw, c: Point, r: float, fill, outline=OUTLINE) -> None:
    draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fill, outline=outline)


def draw_object(draw, obj: ObjectInstance, behind: bool) -> None:
    """Paint one object; seats and boards go behind the figure (``behind=True``), the rest in front."""
    if (obj.shape in ("seat", "board")) != behind:
        return
    colour = OBJECT_COLOURS.get(obj.label, OBJECT_COLOURS["none"])
    light = tuple(min(255, int(x * 1.45) + 30) for x in colour)
    g = obj.geometry
    if obj.shape == "bar":
        a, b, thick, disc = g
        _segment(draw, a, b, colour, thick)
        if obj.label == "none":  # stripes mark the out-of-vocabulary object
            for k in (0.2, 0.4, 0.6, 0.8):
                _disc(draw, (a[0] + k * (b[0] - a[0]), a[1] + k * (b[1] - a[1])), max(1.0, thick / 3), light, None)
        if disc:
            for q in (a, b):
                _disc(draw, q, disc, _darker(colour, 0.45))
    elif obj.shape == "stick":
        a, b, thick = g
        _segment(draw, a, b, colour, thick)
        _disc(draw, b, 1.1 * thick, colour)
    elif obj.shape == "chain":
        a, b, ball = g
        draw.line([a, b], fill=(150, 150, 155), width=1)
        _disc(draw, b, ball, colour)
    elif obj.shape in ("blob", "block"):
        c, rx, ry = g
        box = [c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry]
        if obj.shape == "block":
            draw.rectangle(box, fill=colour, outline=OUTLINE)
            draw.line([(box[0] + 1, box[3] - 1), (box[2] - 1, box[1] + 1)], fill=light, width=1)
        else:
            draw.ellipse(box, fill=colour, outline=OUTLINE)
    elif obj.shape == "seat":
        x1, y1, x2, y2 = g
        draw.rectangle([x1, y1, x2, y2], fill=colour, outline=OUTLINE)
        step = max(3.0, (x2 - x1) / 6)
        x = x1 + step / 2
        while x < x2:
            draw.line([(x, y1 + 1), (x, y2 - 1)], fill=light, width=1)
            x += step
    elif obj.shape == "board":
        x1, y, x2, t = g
        draw.line([(x1, y), (x2, y)], fill=colour, width=max(2, int(round(t * 0.6))))
        for x in (x1 + 0.2 * (x2 - x1), x1 + 0.8 * (x2 - x1)):
            _disc(draw, (x, y + 0.55 * t), max(1.5, 0.35 * t), (215, 215, 205))


def _draw_hand(draw, p: Pose, side: str, look: Look) -> None:
    state = p.states[f"{side}_hand"]
    r = p.lengths["hand"]
    c = p.hand_centre(side)
    d = p.forearm_dir(side)
    if state == "none":
        _disc(draw, c, r, look.skin)
        _disc(draw, c, 0.45 * r, tuple(min(255, x + 25) for x in look.skin), None)
    elif state == "hold":
        _disc(draw, c, r, _darker(look.skin, 0.75))
    elif state == "grab":
        for ang in (-40.0, 0.0, 40.0):
            a = math.radians(ang)
            fd = (d[0] * math.cos(a) - d[1] * math.sin(a), d[0] * math.sin(a) + d[1] * math.cos(a))
            draw.line([c, _add(c, fd, 1.75 * r)], fill=OUTLINE, width=max(1, int(round(0.5 * r))))
        _disc(draw, c, 0.8 * r, look.skin)
    elif state == "press":
        draw.line([(c[0] - 1.3 * r, c[1] + 0.7 * r), (c[0] + 1.3 * r, c[1] + 0.7 * r)], fill=SURFACE,
                  width=max(1, int(round(0.4 * r))))
        draw.ellipse([c[0] - 1.25 * r, c[1] - 0.5 * r, c[0] + 1.25 * r, c[1] + 0.5 * r], fill=look.skin,
                     outline=OUTLINE)
    elif state == "clap":
        for k in range(8):
            a = k * math.pi / 4
            u = (math.cos(a), math.sin(a))
            draw.line([_add(c, u, 1.1 * r), _add(c, u, 2.0 * r)], fill=BURST, width=1)
        _disc(draw, c, 0.9 * r, look.skin)
    else:
        raise ValueError(f"no drawing for hand state {state!r}")


def _draw_head(draw, p: Pose, look: Look) -> None:
    state = p.states["head"]
    r = p.lengths["head"]
    hx, hy = p.points["head"]
    eye = max(1.0, 0.13 * r)
    if state == "turn":  # a nose to the side the head turns to
        s = p.facing
        draw.polygon([(hx + s * 0.7 * r, hy - 0.25 * r), (hx + s * 1.35 * r, hy + 0.15 * r),
                      (hx + s * 0.7 * r, hy + 0.35 * r)], fill=look.skin, outline=OUTLINE)
    _disc(draw, (hx, hy), r, look.skin)
    draw.chord([hx - r, hy - r, hx + r, hy + r], 180, 360, fill=look.hair, outline=OUTLINE)
    if state == "none":
        for ex in (-0.38, 0.38):
            _disc(draw, (hx + ex * r, hy + 0.2 * r), eye, OUTLINE, None)
        draw.line([(hx - 0.3 * r, hy + 0.6 * r), (hx + 0.3 * r, hy + 0.6 * r)], fill=OUTLINE, width=1)
    elif state == "nod":  # looking down: closed eyes low on the face, more hair showing
        draw.chord([hx - r, hy - r, hx + r, hy + r], 150, 390, fill=look.hair, outline=OUTLINE)
        for ex in (-0.38, 0.38):
            draw.line([(hx + ex * r - eye, hy + 0.62 * r), (hx + ex * r + eye, hy + 0.62 * r)], fill=OUTLINE, width=1)
    elif state == "turn":
        s = p.facing
        for ex in (0.15, 0.6):
            _disc(draw, (hx + s * ex * r, hy + 0.2 * r), eye, OUTLINE, None)
    else:
        raise ValueError(f"no drawing for head state {state!r}")


def draw_person(draw, p: Pose, look: Look) -> None:
    """Paint one posed figure: legs and feet, torso and hip, head, arms and hands (front to back)."""
    L, pts = p.lengths, p.points
    w = L["limb"]
    for side in ("left", "right"):
        if p.states[f"{side}_foot"] == "step_on":  # a contact shadow under a planted foot
            ax, ay = pts[f"{side}_ankle"]
            tx, ty = pts[f"{side}_toe"]
            y = max(ay, ty) + 0.6 * w
            draw.ellipse([min(ax, tx) - w, y - 0.35 * w, max(ax, tx) + w, y + 0.35 * w], fill=(35, 35, 40))
    for side in ("left", "right"):
        _segment(draw, pts[f"{side}_hip"], pts[f"{side}_knee"], look.pants, w)
        _segment(draw, pts[f"{side}_knee"], pts[f"{side}_ankle"], _darker(look.pants, 0.8), w)
        _segment(draw, pts[f"{side}_ankle"], pts[f"{side}_toe"], look.shoes, 1.1 * w)
    _segment(draw, pts["pelvis"], pts["neck"], look.shirt, L["torso_width"])
    _segment(draw, pts["left_hip"], pts["right_hip"], _darker(look.pants, 0.6), 1.3 * w)
    _draw_head(draw, p, look)
    for side in ("left", "right"):
        _segment(draw, pts[f"{side}_shoulder"], pts[f"{side}_elbow"], look.shirt, w)
        _segment(draw, pts[f"{side}_elbow"], pts[f"{side}_wrist"], look.skin, 0.9 * w)
        _draw_hand(draw, p, side, look)


# ----------------------------------------------------------------------------- frames


def background(width: int, height: int, margin: int, rng: np.random.Generator) -> np.ndarray:
    """A textured scene (wall and floor with blotches, planks and grain), ``margin`` px larger each side."""
    from PIL import Image

    h, w = height + 2 * margin, width + 2 * margin
    horizon = int(h * rng.uniform(0.45, 0.62))
    wall, floor = (np.array(_hsv(float(rng.uniform(0, 1)), float(rng.uniform(0.1, 0.45)),
                                 float(rng.uniform(0.45, 0.85))), np.float32) for _ in range(2))
    img = np.empty((h, w, 3), np.float32)
    img[:horizon] = wall
    img[horizon:] = floor * 0.85
    # blotches: mostly brightness, a little colour
    coarse = rng.normal(0, 1, (6, 8, 1)) + 0.35 * rng.normal(0, 1, (6, 8, 3))
    small = Image.fromarray(np.uint8(np.clip(128 + 40 * coarse, 0, 255)))
    blotch = np.asarray(small.resize((w, h), Image.BICUBIC), np.float32) - 128
    img += 0.6 * blotch
    plank = max(6, int(h * rng.uniform(0.04, 0.08)))
    img[horizon::plank] *= 0.75  # floor planks
    stripe = int(rng.integers(8, 20))
    if rng.random() < 0.5:
        img[:horizon, ::stripe] *= 0.88  # wall pattern
    img += rng.normal(0, 6, (h, w, 1)).astype(np.float32)  # grain
    return np.clip(img, 0, 255).astype(np.uint8)


def render_frame(bg: np.ndarray, margin: int, camera: Point, people: list[tuple[Pose, Look, list[ObjectInstance]]],
                 noise: np.ndarray, noise_offset: tuple[int, int], brightness: int) -> np.ndarray:
    """Compose one RGB frame: the background seen through the shaken camera, objects and figures,
    then sensor noise (a window of the int16 ``noise`` field) and a brightness flicker."""
    from PIL import Image, ImageDraw

    h, w = bg.shape[0] - 2 * margin, bg.shape[1] - 2 * margin
    cx, cy = int(round(camera[0])), int(round(camera[1]))
    view = np.ascontiguousarray(bg[margin - cy:margin - cy + h, margin - cx:margin - cx + w])
    im = Image.fromarray(view)
    draw = ImageDraw.Draw(im)
    for p, look, objs in people:
        for o in objs:
            draw_object(draw, o, behind=True)
        draw_person(draw, p, look)
        for o in objs:
            draw_object(draw, o, behind=False)
    frame = np.asarray(im, dtype=np.int16)
    oy, ox = noise_offset
    frame += noise[oy:oy + h, ox:ox + w]
    if brightness:
        frame += np.int16(brightness)
    np.clip(frame, 0, 255, out=frame)
    return frame.astype(np.uint8)
