"""Action programs of the mini dataset: which part does what, and when.

Every action is a composition of three *motifs* that run side by side, one per body group:

- upper body: ``left_arm, right_arm, left_hand, right_hand`` (and what the hands hold),
- lower body: ``left_leg, right_leg, left_foot, right_foot``,
- torso: ``hip, head``.

A motif is a cycle of phases; each phase sets a state (and maybe an object role) for each part of its
group and lasts a random number of frames, between 8 and 25 (:data:`PHASE_FRAMES`): as in the real
annotations, states hold over stretches of frames, so smoothing predictions along time pays. Each motif is shared by at least two actions, so no single
part (not even a whole group) decides the action: only the combination of the three motifs does, and
several actions share two of their three motifs (e.g. ``belly_dancing`` and ``salsa_dancing`` differ only
by the hip and head). Asymmetric motifs name their sides ``lead_`` and ``other_``; each video draws
which body side leads (mostly the right) and may switch sides between cycles, so ``left_leg`` alone
is a mixture of two behaviours.

Objects are action parameters filled into the motif's roles (``held``, ``target``, ``board``, ``seat``),
so actions that share a motif's states may still hold different objects (``juggling_balls`` holds a
``ball`` where ``skipping_rope`` holds the rope handles, an object outside the vocabulary: ``none``).

Per video, :func:`sample_timeline` draws the lead sides, the phase durations and start, occasional
performance *slips* (a part takes a neighbouring state for a whole phase, shown in the pixels) and
per-frame annotator *label noise* (the label names a neighbouring state, the pixels do not change).
All names are real Kinetics-TPS action, part, state and object names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tpslab.vocab import PARTS, mirror_part

GROUPS = {
    "upper": ("left_arm", "right_arm", "left_hand", "right_hand"),
    "lower": ("left_leg", "right_leg", "left_foot", "right_foot"),
    "torso": ("hip", "head"),
}

# The states each part can take in the mini dataset; the renderer draws each one differently.
PART_STATES = {
    "head": ("none", "nod", "turn"),
    "hip": ("none", "bend", "sway", "sit"),
    "arm": ("none", "bend", "unbend", "lift", "swing"),
    "hand": ("none", "hold", "grab", "press", "clap"),
    "leg": ("stand", "step", "bend", "kick"),
    "foot": ("step_on", "tiptoe", "none"),
}

# Neighbouring states: what a slip (performance variation) or a label-noise flip turns a state into.
NEIGHBOURS = {
    "head": {"none": ("nod", "turn"), "nod": ("none",), "turn": ("none",)},
    "hip": {"none": ("sway",), "bend": ("none",), "sway": ("none",), "sit": ("sit",)},  # seated stays seated
    "arm": {"none": ("bend", "swing"), "bend": ("unbend", "none"), "unbend": ("bend", "lift"),
            "lift": ("unbend",), "swing": ("unbend", "none")},
    "hand": {"none": ("clap", "grab"), "hold": ("grab",), "grab": ("hold",), "press": ("none",),
             "clap": ("none",)},
    "leg": {"stand": ("step", "bend"), "step": ("stand",), "bend": ("stand",), "kick": ("bend",)},
    "foot": {"step_on": ("tiptoe",), "tiptoe": ("step_on",), "none": ("tiptoe",)},
}

# Every phase lasts between these numbers of frames (inclusive).
PHASE_FRAMES = (8, 25)

# Probabilities of the two kinds of variation.
SLIP_PROBABILITY = 0.03  # per phase occurrence and part (phases are long: a slip lasts 8-25 frames)
LABEL_NOISE = 0.02  # per annotated part
# Most people lead with their right side; legs change sides between cycles more often than arms
# (walking lunges alternate, a thrower keeps the throwing hand).
RIGHT_LEAD = 0.65
SIDE_SWITCH = {"upper": 0.2, "lower": 0.6, "torso": 0.0}


def part_kind(part: str) -> str:
    """``left_hand`` -> ``hand``; ``head`` -> ``head``."""
    return part.split("_", 1)[1] if part.startswith(("left_", "right_")) else part


# ----------------------------------------------------------------------------- motifs


@dataclass(frozen=True)
class Phase:
    """One step of a motif: ``slots`` maps a slot (``lead_arm``, ``hip``...) to ``(state, role)``,
    where ``role`` names the object the part touches (filled per action) or is None."""

    slots: tuple[tuple[str, tuple[str, str | None]], ...]
    frames: tuple[int, int]  # duration range, inclusive


def _phase(frames: tuple[int, int], **spec) -> Phase:
    """Shorthands: ``arms=`` sets both arms, ``hands=``, ``legs=``, ``feet=`` likewise; a value is a
    state or a ``(state, role)`` pair."""
    slots: dict[str, tuple[str, str | None]] = {}
    for key, value in spec.items():
        state_role = value if isinstance(value, tuple) else (value, None)
        if key in ("arms", "hands", "legs", "feet"):
            singular = {"arms": "arm", "hands": "hand", "legs": "leg", "feet": "foot"}[key]
            slots[f"lead_{singular}"] = slots[f"other_{singular}"] = state_role
        else:
            slots[key] = state_role
    return Phase(tuple(sorted(slots.items())), frames)


@dataclass(frozen=True)
class Motif:
    """A cyclic sequence of phases for one body group."""

    name: str
    group: str
    phases: tuple[Phase, ...]


def _motif(name: str, group: str, *phases: Phase) -> Motif:
    return Motif(name, group, phases)


H, T, B, S = ("hold", "held"), ("grab", "held"), ("step_on", "board"), ("sit", "seat")

MOTIFS = {m.name: m for m in (
    # upper body ----------------------------------------------------------------------------
    _motif("lift_overhead", "upper",
           _phase((11, 18), arms="unbend", hands=T),
           _phase((11, 18), arms="bend", hands=H),
           _phase((13, 20), arms="lift", hands=H)),
    _motif("raise_weights", "upper",
           _phase((13, 20), arms="none", hands=H),
           _phase((13, 20), arms="unbend", hands=H)),
    _motif("dance_arms", "upper",
           _phase((9, 16), lead_arm="lift", other_arm="bend", hands="none"),
           _phase((9, 16), lead_arm="bend", other_arm="lift", hands="none"),
           _phase((8, 14), arms="bend", hands="clap")),
    _motif("relaxed_arms", "upper",
           _phase((16, 24), arms="none", hands="none"),
           _phase((9, 14), arms="bend", hands="clap")),
    _motif("balance_arms", "upper",
           _phase((13, 20), arms="unbend", hands="none"),
           _phase((9, 16), lead_arm="lift", other_arm="unbend", hands="none"),
           _phase((8, 14), arms="swing", hands="none")),
    _motif("swing_stick", "upper",
           _phase((11, 18), arms="bend", hands=H),
           _phase((8, 14), arms="swing", hands=H),
           _phase((9, 16), arms="unbend", hands=H)),
    _motif("guard_and_strike", "upper",
           _phase((9, 16), lead_arm="unbend", lead_hand=("none", "target"), other_arm="bend", other_hand="none"),
           _phase((9, 16), lead_arm="bend", lead_hand="none", other_arm="unbend", other_hand=("none", "target"))),
    _motif("floor_support", "upper",
           _phase((13, 20), arms="unbend", hands="press"),
           _phase((13, 20), arms="bend", hands="press")),
    _motif("hang_from_above", "upper",
           _phase((13, 20), arms="lift", hands=T),
           _phase((13, 20), arms="bend", hands=T)),
    _motif("throw_one_hand", "upper",
           _phase((11, 18), lead_arm="swing", lead_hand=H, other_arm="unbend", other_hand="none"),
           _phase((9, 16), lead_arm="unbend", lead_hand=H, other_arm="none", other_hand="none"),
           _phase((8, 12), lead_arm="lift", lead_hand="none", other_arm="none", other_hand="none")),
    _motif("grip_and_wave", "upper",
           _phase((15, 22), arms="unbend", hands=H),
           _phase((9, 16), lead_arm="lift", lead_hand="none", other_arm="unbend", other_hand=H)),
    _motif("toss_between_hands", "upper",
           _phase((8, 14), arms="bend", lead_hand=H, other_hand="none"),
           _phase((8, 14), arms="bend", lead_hand="none", other_hand=H)),
    # lower body ----------------------------------------------------------------------------
    _motif("stand_still", "lower",
           _phase((18, 25), legs="stand", feet=B),
           _phase((8, 12), legs="stand", lead_foot="tiptoe", other_foot=B)),
    _motif("squat", "lower",
           _phase((11, 18), legs="bend", feet=B),
           _phase((11, 18), legs="stand", feet=B)),
    _motif("step_around", "lower",
           _phase((9, 14), lead_leg="step", lead_foot="tiptoe", other_leg="stand", other_foot=B),
           _phase((8, 12), legs="stand", feet=B),
           _phase((9, 14), lead_leg="stand", lead_foot=B, other_leg="step", other_foot="tiptoe")),
    _motif("kick", "lower",
           _phase((9, 14), lead_leg="kick", lead_foot="none", other_leg="bend", other_foot=B),
           _phase((11, 18), legs="stand", feet=B)),
    _motif("hop", "lower",
           _phase((9, 14), lead_leg="bend", lead_foot="none", other_leg="stand", other_foot="tiptoe"),
           _phase((8, 12), legs="stand", feet="tiptoe"),
           _phase((9, 14), legs="stand", feet=B)),
    _motif("folded_legs", "lower",
           _phase((20, 25), legs="bend", feet="none")),
    _motif("lunge_step", "lower",
           _phase((15, 22), lead_leg="step", lead_foot=B, other_leg="bend", other_foot="tiptoe"),
           _phase((8, 12), legs="stand", feet=B)),
    # torso ---------------------------------------------------------------------------------
    _motif("upright", "torso",
           _phase((20, 25), hip="none", head="none")),
    _motif("hip_sway", "torso",
           _phase((11, 18), hip="sway", head="none"),
           _phase((9, 14), hip="none", head="none")),
    _motif("look_around", "torso",
           _phase((13, 20), hip="none", head="none"),
           _phase((9, 16), hip="none", head="turn")),
    _motif("bow", "torso",
           _phase((11, 18), hip="bend", head="nod"),
           _phase((11, 18), hip="none", head="none")),
    _motif("lying_forward", "torso",
           _phase((16, 24), hip="bend", head="none"),
           _phase((8, 12), hip="bend", head="nod")),
    _motif("seated", "torso",
           _phase((16, 24), hip=S, head="none"),
           _phase((9, 14), hip=S, head="turn")),
)}


@dataclass(frozen=True)
class ActionProgram:
    """An action: one motif per body group plus the objects that fill the motifs' roles."""

    action: str
    upper: str
    lower: str
    torso: str
    objects: dict = field(default_factory=dict)  # role -> object name

    def motifs(self) -> dict[str, Motif]:
        return {"upper": MOTIFS[self.upper], "lower": MOTIFS[self.lower], "torso": MOTIFS[self.torso]}


def _program(action, upper, lower, torso, **objects) -> ActionProgram:
    return ActionProgram(action, upper, lower, torso, objects)


PROGRAMS = {p.action: p for p in (
    _program("clean_and_jerk", "lift_overhead", "lunge_step", "upright", held="dumbbell"),
    _program("snatch_weight_lifting", "lift_overhead", "squat", "bow", held="dumbbell"),
    _program("deadlifting", "raise_weights", "squat", "bow", held="dumbbell"),
    _program("front_raises", "raise_weights", "stand_still", "upright", held="dumbbell"),
    _program("belly_dancing", "dance_arms", "step_around", "hip_sway"),
    _program("salsa_dancing", "dance_arms", "step_around", "look_around"),
    _program("country_line_dancing", "relaxed_arms", "step_around", "hip_sway"),
    _program("hopscotch", "relaxed_arms", "hop", "bow"),
    _program("skateboarding", "balance_arms", "squat", "look_around", board="skateboard"),
    _program("capoeira", "balance_arms", "kick", "hip_sway"),
    _program("hitting_baseball", "swing_stick", "lunge_step", "look_around", held="baseball_bat"),
    _program("hurling_(sport)", "swing_stick", "step_around", "upright", held="none"),
    _program("punching_bag", "guard_and_strike", "step_around", "upright", target="none"),
    _program("lunge", "guard_and_strike", "lunge_step", "upright"),
    _program("push_up", "floor_support", "stand_still", "lying_forward"),
    _program("crawling_baby", "floor_support", "folded_legs", "lying_forward"),
    _program("pull_ups", "hang_from_above", "folded_legs", "upright", held="none"),
    _program("surfing_crowd", "hang_from_above", "kick", "look_around", held="body"),
    _program("hammer_throw", "throw_one_hand", "step_around", "hip_sway", held="hammer"),
    _program("throwing_discus", "throw_one_hand", "lunge_step", "hip_sway", held="none"),
    _program("riding_mechanical_bull", "grip_and_wave", "kick", "seated", held="none", seat="none"),
    _program("tobogganing", "grip_and_wave", "folded_legs", "seated", held="none", seat="none"),
    _program("juggling_balls", "toss_between_hands", "stand_still", "look_around", held="ball"),
    _program("skipping_rope", "toss_between_hands", "hop", "upright", held="none"),
)}

# The second person of a video does something generic, drawn from these motifs.
DISTRACTOR_MOTIFS = {
    "upper": ("relaxed_arms",),
    "lower": ("stand_still", "step_around"),
    "torso": ("upright", "look_around"),
}

# ----------------------------------------------------------------------------- sampling


@dataclass
class Timeline:
    """What one person does in every frame of a video.

    ``states[t][part]`` and ``objects[t][part]`` (None: no object) are what is shown (the pose);
    ``labels[t][part]`` is what an annotator writes (the state, flipped to a neighbour by label noise).
    ``phase_index[group][t]`` is the index of the phase occurrence per group, so the renderer can
    blend poses at phase boundaries and alternate directions (sway left, then right).
    """

    states: list[dict[str, str]]
    objects: list[dict[str, str | None]]
    labels: list[dict[str, str]]
    phase_index: dict[str, np.ndarray]
    lead: dict[str, str]  # group -> the side that leads at the start, "left" or "right"


def _slot_part(slot: str, lead: str) -> str:
    """``lead_arm`` with lead side ``right`` -> ``right_arm``; ``hip`` -> ``hip``."""
    if slot.startswith("lead_"):
        return f"{lead}_{slot[5:]}"
    if slot.startswith("other_"):
        return mirror_part(f"{lead}_{slot[6:]}")
    return slot


def _neighbour(part: str, state: str, rng: np.random.Generator) -> str:
    options = NEIGHBOURS[part_kind(part)][state]
    return options[int(rng.integers(len(options)))]


def _sample_group(motif: Motif, objects: dict, n_frames: int, lead: str, switch: float,
                  rng: np.random.Generator):
    """Per frame states/objects of one group, and the phase-occurrence index of each frame.

    At the start of each new cycle the lead side changes with probability ``switch``."""
    n = len(motif.phases)
    phase = int(rng.integers(n))
    # Start part-way into the first phase, so videos do not all begin at a phase boundary.
    lo, hi = motif.phases[phase].frames
    remaining = int(rng.integers(1, hi + 1))
    states, objs = [], []
    occurrence = np.zeros(n_frames, np.int32)
    k = 0
    current = None
    for t in range(n_frames):
        if current is None or remaining == 0:
            if current is not None:
                phase = (phase + 1) % n
                if phase == 0 and rng.random() < switch:
                    lead = "left" if lead == "right" else "right"
                lo, hi = motif.phases[phase].frames
                remaining = int(rng.integers(lo, hi + 1))
                k += 1
            current = {}
            for slot, (state, role) in motif.phases[phase].slots:
                part = _slot_part(slot, lead)
                if rng.random() < SLIP_PROBABILITY:
                    state = _neighbour(part, state, rng)
                current[part] = (state, objects.get(role) if role else None)
        states.append({p: s for p, (s, _) in current.items()})
        objs.append({p: o for p, (_, o) in current.items()})
        occurrence[t] = k
        remaining -= 1
    return states, objs, occurrence


def sample_timeline(motifs: dict[str, Motif], objects: dict, n_frames: int,
                    rng: np.random.Generator) -> Timeline:
    """Draw one person's per-frame part states for ``n_frames`` frames (see :class:`Timeline`)."""
    frames_states = [dict() for _ in range(n_frames)]
    frames_objects = [dict() for _ in range(n_frames)]
    phase_index, lead = {}, {}
    for group in ("upper", "lower", "torso"):
        lead[group] = "right" if rng.random() < RIGHT_LEAD else "left"
        st, ob, occ = _sample_group(motifs[group], objects, n_frames, lead[group], SIDE_SWITCH[group], rng)
        for t in range(n_frames):
            frames_states[t].update(st[t])
            frames_objects[t].update(ob[t])
        phase_index[group] = occ
    order = {p: i for i, p in enumerate(PARTS)}
    frames_states = [dict(sorted(s.items(), key=lambda kv: order[kv[0]])) for s in frames_states]
    frames_objects = [dict(sorted(o.items(), key=lambda kv: order[kv[0]])) for o in frames_objects]
    labels = [{p: (_neighbour(p, s, rng) if rng.random() < LABEL_NOISE else s) for p, s in st.items()}
              for st in frames_states]
    return Timeline(frames_states, frames_objects, labels, phase_index, lead)


def action_timeline(action: str, n_frames: int, rng: np.random.Generator) -> Timeline:
    """The main person's timeline for one video of ``action``."""
    try:
        program = PROGRAMS[action]
    except KeyError:
        raise KeyError(f"no program for action {action!r}; known: {sorted(PROGRAMS)}") from None
    return sample_timeline(program.motifs(), program.objects, n_frames, rng)


def distractor_timeline(n_frames: int, rng: np.random.Generator) -> Timeline:
    """A bystander's timeline: generic motifs, no objects."""
    motifs = {g: MOTIFS[names[int(rng.integers(len(names)))]] for g, names in DISTRACTOR_MOTIFS.items()}
    return sample_timeline(motifs, {}, n_frames, rng)


def used_names() -> tuple[set[str], set[str]]:
    """Every state and object name that a program, the distractor or the noise can produce."""
    states = {s for kind in PART_STATES.values() for s in kind}
    states |= {s for table in NEIGHBOURS.values() for opts in table.values() for s in opts}
    objects = {o for p in PROGRAMS.values() for o in p.objects.values()}
    return states, objects
