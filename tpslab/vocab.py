"""The four Kinetics-TPS vocabularies (actions, body parts, part states, objects), name <-> id.

Part, state and object names are read at run time from ``list/body_part.txt``, ``list/part_stat.txt``
and ``list/object.txt``; the names known from the public release are the built-in default when a
file is absent. Actions come from the class folders of the release, with the 24 known names as default.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

ACTIONS = (
    "belly_dancing", "capoeira", "clean_and_jerk", "country_line_dancing", "crawling_baby",
    "deadlifting", "front_raises", "hammer_throw", "hitting_baseball", "hopscotch", "hurling_(sport)",
    "juggling_balls", "lunge", "pull_ups", "punching_bag", "push_up", "riding_mechanical_bull",
    "salsa_dancing", "skateboarding", "skipping_rope", "snatch_weight_lifting", "surfing_crowd",
    "throwing_discus", "tobogganing",
)
PARTS = (
    "head", "hip", "left_arm", "right_arm", "left_hand", "right_hand",
    "left_leg", "right_leg", "left_foot", "right_foot",
)
# 66 of the release's 74 state names are known; list/part_stat.txt supplies the rest at run time.
STATES = (
    "none", "others", "applaud", "bend", "bind", "bleed", "brush", "carry", "catch", "clap", "claw",
    "close", "draw", "drink", "feed", "flip", "fold", "grab", "heft", "hold", "hug", "jump", "kick",
    "lift", "loosen", "lug", "nip", "nod", "package", "pat", "peg", "plug", "press", "prick", "pull",
    "push", "put_down", "raise", "scratch", "shake", "shift", "sit", "slice", "slide", "smack", "smear",
    "snatch", "sprinkle", "stand", "step", "step_on", "stir", "stoop", "strike", "strum", "sway",
    "sweep", "swing", "take", "throw", "tie", "tiptoe", "turn", "unbend", "upturn", "wave",
)
# 69 of 75 object names are known; "none" names an object outside the vocabulary (it has a box).
OBJECTS = (
    "accordion", "arm", "arrow", "backpack", "ball", "balloon", "banana", "baseball", "baseball_bat",
    "baseball_glove", "basketball", "bed", "beer", "bench", "bicycle", "body", "book", "bottle",
    "camera", "cat", "cello", "chainsaw", "couch", "dice", "dog", "doll", "door", "drink", "drum",
    "dumbbell", "eye", "face", "finger", "flute", "foot", "footwear", "fruit", "glove", "guitar",
    "hammer", "hand", "handbag", "hat", "head", "helmet", "knife", "leg", "mobile_phone", "motorcycle",
    "musical_keyboard", "paddle", "pen", "plant", "plastic_bag", "remote_control", "scarf", "shirt",
    "skateboard", "ski", "snowboard", "surfboard", "table", "toilet_paper", "towel", "violin",
    "volleyball", "waist", "wheelchair", "none",
)

LIST_FILES = {"parts": "body_part.txt", "states": "part_stat.txt", "objects": "object.txt"}


class UnknownNameError(KeyError):
    """A name that is not in a vocabulary; the message suggests the nearest known names."""

    def __init__(self, kind: str, name, suggestions: Sequence[str]):
        self.kind, self.name, self.suggestions = kind, name, list(suggestions)
        hint = f"; did you mean {', '.join(map(repr, self.suggestions))}?" if self.suggestions else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


class Vocabulary:
    """An ordered list of names with ids 0..n-1."""

    def __init__(self, kind: str, names: Iterable[str]):
        self.kind = kind
        self.names: tuple[str, ...] = tuple(names)
        self._ids = {n: i for i, n in enumerate(self.names)}
        if len(self._ids) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise ValueError(f"{kind} vocabulary repeats {dup}")

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return iter(self.names)

    def __contains__(self, name) -> bool:
        return name in self._ids

    def __repr__(self) -> str:
        return f"Vocabulary({self.kind!r}, {len(self)} names)"

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and (self.kind, self.names) == (other.kind, other.names)

    def __hash__(self) -> int:  # equal vocabularies hash alike, so a Vocab can key a dict or a cache
        return hash((self.kind, self.names))

    def suggest(self, name, n: int = 3) -> list[str]:
        return difflib.get_close_matches(str(name), self.names, n=n, cutoff=0.5)

    def id(self, name: str) -> int:
        try:
            return self._ids[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.kind, name, self.suggest(name)) from None

    def name(self, i: int) -> str:
        if not 0 <= int(i) < len(self.names):
            raise IndexError(f"{self.kind} id {i} is outside 0..{len(self.names) - 1}")
        return self.names[int(i)]

    def ids(self, names: Iterable[str]) -> np.ndarray:
        return np.fromiter((self.id(n) for n in names), dtype=np.int64)

    def codes(self, values) -> np.ndarray:
        """Ids of a column of names (a Series, categorical or not, or any sequence), -1 for NA.

        Vectorised for table columns; names outside the vocabulary raise a ValueError listing them.
        """
        codes = name_codes(values, self.names, unknown=-2)
        if (codes == -2).any():
            values = np.asarray(values, dtype=object)
            unknown = sorted({str(v) for v in values[codes == -2]})
            raise ValueError(f"{self.kind} names not in the vocabulary: {unknown[:10]}"
                             + (f" (did you mean {self.suggest(unknown[0])}?)" if self.suggest(unknown[0]) else ""))
        return codes


def name_codes(values, names: Sequence[str], *, unknown: int = -1) -> np.ndarray:
    """The position of each value in ``names``: -1 for NA, ``unknown`` for a value not in ``names``.

    A categorical column is translated once per category, so large tables need no per-row lookups.
    """
    import pandas as pd

    index = {str(n): i for i, n in enumerate(names)}
    cat = values.array if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype) \
        else pd.Categorical(values)
    per_category = np.array([index.get(str(c), unknown) for c in cat.categories] + [-1], np.int64)
    return per_category[cat.codes]  # code -1 (NA) picks the trailing -1


def read_list_file(path, problems: list | None = None, default: Sequence[str] = ()) -> list[str]:
    """Names from a ``list/*.txt`` file: one per line; an index column (``3 bend``, ``bend,3``) is dropped.

    Raises :class:`tpslab.AnnotationError` naming the file (and line) when a line holds more than one
    name, a name repeats, the file holds no names or is not UTF-8. With a ``problems`` list, each problem
    is appended there instead: the line is skipped, a repeated name keeps its first line, and a file
    that yields no names gives ``default``.
    """
    from tpslab.errors import AnnotationError, Problem

    path = Path(path)

    fallback = "the built-in names are used" if default else "no names are used"

    def fail(field: str, message: str, then: str) -> None:
        """Raise, or (lenient) note the problem with what is done about it (``then``)."""
        if problems is None:
            raise AnnotationError(path, field, message)
        problems.append(Problem(str(path), field, f"{message}; {then}"))

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        fail("", f"not UTF-8 text (byte {e.start})", fallback)
        return list(default)
    names, first_line = [], {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = [t for t in re.split(r"[\s,;]+", line) if t]
        words = [t for t in tokens if not t.isdigit()]
        if len(words) != 1:
            fail(f"line {lineno}", f"expected one name per line, got {raw!r}", "line skipped")
            continue
        if words[0] in first_line:
            fail(f"line {lineno}", f"name {words[0]!r} repeats line {first_line[words[0]]}", "the first is kept")
            continue
        first_line[words[0]] = lineno
        names.append(words[0])
    if not names:
        fail("", "no names in the file", fallback)
        return list(default)
    return names


def mirror_part(part: str) -> str:
    """The part on the other side of the body (``left_hand`` <-> ``right_hand``); others map to themselves."""
    if part.startswith("left_"):
        return "right_" + part[5:]
    if part.startswith("right_"):
        return "left_" + part[6:]
    return part


def mirror_permutation(parts: Sequence[str]) -> list[int]:
    """For each part of ``parts``, the position of its :func:`mirror_part` in ``parts``: what a left-right
    flip does to a per-part axis. A sided part whose other side is not in ``parts`` is a ``ValueError``
    (after a flip its label would be wrong)."""
    parts = list(parts)
    position = {p: i for i, p in enumerate(parts)}
    unpaired = [p for p in parts if mirror_part(p) not in position]
    if unpaired:
        raise ValueError(f"cannot mirror {unpaired}: the other side ({[mirror_part(p) for p in unpaired]}) "
                         "is not in the part list")
    return [position[mirror_part(p)] for p in parts]


def part_groups(parts: Iterable[str]) -> dict[str, list[str]]:
    """Group left/right pairs under their common name (``hand``: [left_hand, right_hand]); others alone."""
    groups: dict[str, list[str]] = {}
    for p in parts:
        groups.setdefault(p.split("_", 1)[1] if p.startswith(("left_", "right_")) else p, []).append(p)
    return groups


@dataclass(frozen=True, eq=True)
class Vocab:
    """The four vocabularies of a release."""

    actions: Vocabulary
    parts: Vocabulary
    states: Vocabulary
    objects: Vocabulary

    @classmethod
    def default(cls) -> "Vocab":
        return cls(Vocabulary("action", ACTIONS), Vocabulary("part", PARTS),
                   Vocabulary("part state", STATES), Vocabulary("object", OBJECTS))

    @classmethod
    def from_root(cls, root, problems: list | None = None) -> "Vocab":
        """Read ``root/list/*.txt`` (built-in names for absent files, a warning in ``problems``) and the
        action class folders.

        A list file with no names or a repeated name raises :class:`tpslab.AnnotationError` naming the
        file; with a ``problems`` list the problem is appended there instead, and the built-in names
        (empty file) or the first of each repeated name are used.
        """
        from tpslab.errors import Problem
        from tpslab.layout import LIST_DIR, class_folder_names

        root = Path(root)
        lists = {}
        for attr, fname in LIST_FILES.items():
            f = root / LIST_DIR / fname
            default = list(getattr(cls.default(), attr))
            if f.is_file():
                lists[attr] = read_list_file(f, problems, default)
            else:
                lists[attr] = default
                if problems is not None:  # a release without it: said, not silent
                    problems.append(Problem(str(f), "", "missing: the built-in names are used", "warning"))
        actions = class_folder_names(root)
        return cls(Vocabulary("action", actions or ACTIONS), Vocabulary("part", lists["parts"]),
                   Vocabulary("part state", lists["states"]), Vocabulary("object", lists["objects"]))

    def write_lists(self, root) -> None:
        """Write the three list files into ``root/list`` (one name per line, as the release)."""
        d = Path(root) / "list"
        d.mkdir(parents=True, exist_ok=True)
        for attr, fname in LIST_FILES.items():
            (d / fname).write_text("\n".join(getattr(self, attr).names) + "\n", encoding="utf-8")
