"""The Kinetics-TPS challenge's conventions, written once; every other module imports them from here.

- Frame keys: ``img_00001.json`` annotates frame 1 (1-based, at least 5 digits): :func:`frame_key`,
  :func:`frame_number` (the evaluation files' strict keys) and :func:`file_frame_number` (release file
  names, also ``img_6.json`` and paths); frame 1 is decoded index 0 (:func:`frame_number_to_index`,
  :func:`index_to_frame_number`) and its files are named ``img_00001.*`` (:func:`frame_stem`,
  :data:`FRAME_NAME`). Only every :data:`SCORED_STRIDE`-th frame is scored
  (:func:`is_scored`: 1, 6, 11, ...).
- Limits of a submission (:data:`MAX_HUMANS` per frame, :data:`MAX_PROPOSALS` per part), the file names,
  the scoring modes (:data:`MODES`) and human pairings (:data:`PAIRINGS`) with the public script revision
  each reproduces (:data:`SCRIPT_REVISIONS`).
- JSON loading (:func:`loads_json`, :func:`load_json`: every file holds one JSON object) and box checks
  (:func:`box_problem`: 4 finite numbers; ``true``/``false`` are not numbers).
- The one reader of the part files (``gt_part_result`` / ``pred_part_result``: video -> frame key ->
  humans -> parts, parts as a dict keyed by name or as the release's list with names, proposals as lists
  or single values): :func:`part_columns` flattens one into :class:`PartColumns`, with the video, frame,
  human and part of every element so that errors can name the place. Dicts are walked (tolerantly: what
  is malformed is marked, consumers decide whether it matters); JSON text in the plain strict form is read
  by the compiled reader (``tpslab/_partfile.c``, where it is built), else decoded with msgspec into
  typed columns, and walked only when it is not in the strict form.

The rules of the score, the script revisions and their quirks are in ``docs/scoring.md``.
"""

from __future__ import annotations

import math
import operator
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import chain, compress, repeat
from pathlib import Path
from typing import Literal, Mapping

import numpy as np

from tpslab.errors import Problem
from tpslab.memory import gc_paused
from tpslab.vocab import STATES

# ----------------------------------------------------------------------------------------------------
# Frames, limits, modes

#: The evaluation files' names.
GT_VID, GT_PART = "gt_vid_result.json", "gt_part_result.json"
PRED_VID, PRED_PART = "pred_vid_result.json", "pred_part_result.json"
#: Only every 5th frame is scored: img_00001, img_00006, img_00011, ...
SCORED_STRIDE = 5
#: At most 10 predicted humans in a scored frame and 5 proposals for a scored part.
MAX_HUMANS = 10
MAX_PROPOSALS = 5
#: ``list``: up to 5 box/verb proposals per part (2021 script); ``single``: one box and one verb (2022).
MODES = ("list", "single")
#: How GT humans are paired with predictions: ``matched`` (default; the scripts' current revisions) or
#: ``pre-fix-2021`` (the 2021 script before commit 4cd5815, 2021-06-13); see docs/scoring.md.
PAIRINGS = ("matched", "pre-fix-2021")
#: The public script revision that each (mode, pairing) reproduces, in words.
SCRIPT_REVISIONS = {
    ("list", "matched"): "xiadingZ/Kinetics-TPS-evaluation (2021) at 4cd5815 and later (current head)",
    ("list", "pre-fix-2021"): "xiadingZ/Kinetics-TPS-evaluation (2021) before 4cd5815 (before 2021-06-13)",
    ("single", "matched"): "Andy1621/Kinetics-TPS-evaluation (2022), its asserts off",
    ("single", "pre-fix-2021"): "no public script: the 2021 pre-fix pairing on the 2022 single format",
}

#: The stem of a frame's file name (annotation ``.json``, extracted ``.jpg``) from its 1-based number.
FRAME_STEM = "img_{:05d}"
_FRAME_KEY = re.compile(r"img_(\d{5,})\.json")
#: A release annotation file name (any number of digits).
FRAME_FILE = re.compile(r"^img_(\d+)\.json$")
#: Any frame file name: an annotation or an extracted image (any number of digits, any extension or none).
FRAME_NAME = re.compile(r"^img_(\d+)(?:\.[A-Za-z0-9]+)?$")


def frame_stem(frame) -> str:
    """The stem of 1-based frame ``frame``'s files: ``img_00001`` for frame 1."""
    return FRAME_STEM.format(int(frame))


def frame_key(frame) -> str:
    """The key (and annotation file name) of a 1-based frame number: ``img_00001.json`` for frame 1."""
    return frame_stem(frame) + ".json"


def frame_number_to_index(number):
    """1-based frame number (``img_00001`` -> 1) to 0-based decoded index; arrays work element-wise."""
    arr = np.asarray(number)
    if arr.dtype.kind not in "iu" or np.any(arr < 1):
        raise ValueError(f"frame numbers are integers that start at 1 (img_00001), got {_first_bad(arr, 1)}")
    return arr - 1 if arr.ndim else int(arr) - 1


def index_to_frame_number(index):
    """0-based decoded index to the release's 1-based frame number; arrays work element-wise."""
    arr = np.asarray(index)
    if arr.dtype.kind not in "iu" or np.any(arr < 0):
        raise ValueError(f"frame indices are integers that start at 0, got {_first_bad(arr, 0)}")
    return arr + 1 if arr.ndim else int(arr) + 1


def _first_bad(arr: np.ndarray, low: int):
    """The first value that is not an integer of at least ``low`` (a message names it, not the whole array)."""
    if arr.dtype.kind not in "iu":
        return repr(arr.reshape(-1)[0].item()) if arr.size else f"an empty {arr.dtype} array"
    return int(arr.reshape(-1)[np.argmax(arr.reshape(-1) < low)])


def frame_number(key: str) -> int:
    """The frame number of an evaluation key: 1 for ``img_00001.json``; ValueError for any other shape
    (``img_6.json``, paths)."""
    m = _FRAME_KEY.fullmatch(str(key))
    if not m:
        raise ValueError(f"not a frame key of the form img_00001.json: {key!r}")
    return int(m.group(1))


def frame_numbers(keys, other: int = 0) -> np.ndarray:
    """The frame number of each evaluation key (:func:`frame_number`), int64, ``other`` for a key of any
    other shape. Each distinct key is read once: a test-set file holds some 30 keys in 28,000 frames."""
    numbers = dict.fromkeys(keys, other)
    for key in numbers:
        try:
            numbers[key] = frame_number(key)
        except ValueError:
            pass
    return np.fromiter(map(numbers.__getitem__, keys), np.int64, len(keys))


def file_frame_number(filename) -> int:
    """The frame number of a release annotation file: 42 for ``img_00042.json``, ``img_42.json`` or
    ``.../img_00042.json``. Raises ValueError for other names."""
    m = FRAME_FILE.match(Path(filename).name)
    if not m:
        raise ValueError(f"{filename!r} is not an annotation file name (img_NNNNN.json)")
    return int(m.group(1))


def is_scored(frame):
    """Whether a 1-based frame number (or each of an array of them) is one the challenge scores."""
    arr = np.asarray(frame)
    result = (arr - 1) % SCORED_STRIDE == 0
    return result if arr.ndim else bool(result)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


# ----------------------------------------------------------------------------------------------------
# Errors and JSON

_MAX_LISTED = 20


class ScoringError(ValueError):
    """Input the scorer cannot score. ``problems`` lists each offending place (file, field, message)."""

    def __init__(self, summary: str, problems=()):
        self.problems = list(problems)
        lines = [summary] + [f"  {p.path}: {p.field}: {p.message}" for p in self.problems[:_MAX_LISTED]]
        if len(self.problems) > _MAX_LISTED:
            lines.append(f"  ... and {len(self.problems) - _MAX_LISTED} more")
        super().__init__("\n".join(lines))


def json_kind(obj) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true/false"
    if isinstance(obj, (int, float)):
        return "a number"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, (list, tuple)):
        return "a list"
    return type(obj).__name__


def expect_object(obj, name: str):
    """``obj`` when it is a JSON object (a mapping); else a ScoringError saying what it is."""
    if not isinstance(obj, Mapping):
        raise ScoringError(f"{name}: expected a JSON object {{...}}, got {json_kind(obj)}")
    return obj


def loads_json(data, name: str = "input"):
    """Parse JSON text (bytes, bytearray or str) with orjson, the garbage collector paused.

    Every file of the challenge holds one JSON object: anything else (a list, a number, ...) raises
    :class:`ScoringError` naming ``name`` and what it holds."""
    import orjson

    try:
        with gc_paused():
            obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ScoringError(f"{name} is not valid JSON: {_json_trouble(data) or e}") from None
    return expect_object(obj, name)


def _json_trouble(data) -> str | None:
    """What is wrong with text the parser refused, where its own words would mislead (it calls UTF-16
    "not valid UTF-8: surrogates", and white space "empty"); None otherwise."""
    head = bytes(data[:4]) if not isinstance(data, str) else b""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) == 4 and (head[1::2] == b"\0\0" or head[0::2] == b"\0\0")):
        return "it is UTF-16 text; JSON files are UTF-8 (save it as UTF-8)"
    if not data:
        return "it is empty (0 bytes)"
    if not (data.strip() if isinstance(data, (bytes, str)) else bytes(data).strip()):
        return f"it holds only white space ({len(data)} bytes)"
    return None


class _Pairs(list):
    """A JSON object as the list of its (key, value) pairs, repeats kept (json's object_pairs_hook)."""


def _repeats(pairs, levels: int, where: str, out: list) -> None:
    seen = set()
    for key, value in pairs:
        place = f"{where}/{key}" if where else key
        if key in seen and place not in out:
            out.append(place)
        seen.add(key)
        if levels > 1 and isinstance(value, _Pairs):
            _repeats(value, levels - 1, place, out)


def _colons_add_up(text: bytes, top, levels: int) -> bool:
    """Whether the colons of ``text`` are those of the keys of its top ``levels`` levels and of the raw
    values below them: then no key of those levels is held twice (a dropped value and its key hold at
    least one colon more). False where a colon may be written as an escape (a key's name would hold a
    colon its text does not)."""
    if b"\\u003a" in text or b"\\u003A" in text:
        return False
    keys, values = list(top), list(top.values())
    for _ in range(levels - 1):
        keys += [key for value in values for key in value]
        values = [leaf for value in values for leaf in value.values()]
    inside = sum(memoryview(value).tobytes().count(b":") for value in values)
    return text.count(b":") - inside == len(keys) + sum(key.count(":") for key in keys)


def _raw_objects(data, levels: int):
    """``data`` decoded as objects ``levels`` deep, their values below kept as raw text (None when it is not
    objects to that depth)."""
    import msgspec

    kind = msgspec.Raw
    for _ in range(levels):
        kind = dict[str, kind]
    try:
        return msgspec.json.Decoder(kind).decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def _named_repeats(text: bytes, levels: int, where: str) -> list[str]:
    """:func:`repeated_keys` named: an object whose colons do not add up is parsed whole (json, repeats
    kept); the others are looked into one level down."""
    top = _raw_objects(text, 1)
    if top is None:
        return []
    if not _colons_add_up(text, top, 1):
        import json

        out: list[str] = []
        _repeats(json.loads(text, object_pairs_hook=_Pairs), levels, where, out)
        return out
    if levels == 1:
        return []
    return [place for key, value in top.items()
            for place in _named_repeats(memoryview(value).tobytes(), levels - 1, f"{where}/{key}" if where else key)]


def repeated_keys(data: bytes, levels: int) -> list[str] | None:
    """Places (``video``, ``video/frame``) of the keys that an object of the top ``levels`` levels of the
    JSON text ``data`` holds more than once. JSON readers (json.load, the challenge's scorers, tpslab)
    keep the last value of such a key: the others are dropped without a word. ``[]`` when there are none;
    None when the text is not objects to that depth (reading it says what is wrong).

    Fast where there are none (0.2 s for a test-set-sized prediction): see :func:`_colons_add_up`. Where
    there are, the objects that hold them are parsed whole to name them (a video held twice in such a
    file: 9 s)."""
    top = _raw_objects(data, levels)
    if top is None:
        return None
    if _colons_add_up(data, top, levels):
        return []
    return _named_repeats(data, levels, "")


def repeated_in_part_file(data) -> list[str] | None:
    """Places of the keys held twice in a part file as the compiled reader finds them, at every level it
    reads: frame keys, ``humans``, a human's ``box`` and ``parts``, a part's name, ``box`` and ``verb``
    (``video/img_00001.json/humans[0].parts.head``; videos are :func:`repeated_keys`'s). None where the
    reader is not built or the text holds what it leaves to msgspec (escapes, non-ASCII text, ...)."""
    reader = compiled_reader()
    found = None
    for list_form in (True, False) if reader is not None else ():
        found = reader.parse(data, list_form, repeats=True)
        if found is not None:
            break
    return None if found is None else [_repeat_place(*place) for place in found]


def _repeat_place(video: str, frame: str, human: int, part: str | None, field: str | None) -> str:
    if human < 0:
        return f"{video}/{frame}" + (f"/{field}" if field else "")
    inside = f".parts.{part}" if part is not None else ""
    return f"{video}/{frame}/humans[{human}]{inside}" + (f".{field}" if field else "")


def read_json_bytes(path, name: str) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as e:
        raise ScoringError(f"cannot read {name} from {path}: {e}") from e


class JsonObject(dict):
    """A JSON object read from a file: a dict that knows the label it was read under (``file``: a path, or
    ``zip:member``), so that problems found in it name the file as the user gave it."""

    def __init__(self, items, file: str):
        super().__init__(items)
        self.file = file


def file_label(obj, default: str) -> str:
    """The label ``obj`` was read under (a :class:`JsonObject`), else ``default`` (a dict made in memory)."""
    return obj.file if isinstance(obj, JsonObject) else default


def load_json(obj, name: str = "input"):
    """``obj`` itself when it is a mapping, else the JSON file at path ``obj`` (which must hold an object).

    A JSON value that is not an object (a list, a number, ``None``, ...) raises :class:`ScoringError`."""
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, (str, Path)):
        return JsonObject(loads_json(read_json_bytes(obj, name), f"{name} ({Path(obj)})"), str(Path(obj)))
    if obj is None or isinstance(obj, (list, tuple, int, float)):
        return expect_object(obj, name)
    raise TypeError(f"{name} must be a dict (as loaded from JSON) or a path, got {type(obj).__name__}")


# ----------------------------------------------------------------------------------------------------
# Boxes

# Items per block when converting boxes: each block is read in several C-level passes (map, chain,
# fromiter), and a block small enough to stay in cache makes the later passes cheap.
_CHUNK = 4096
_JSON_NUMBERS = frozenset((int, float))


def is_number(v) -> bool:
    """A finite int or float; not a bool (JSON ``true`` is not a coordinate, though bool subclasses int)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def box_problem(box) -> str | None:
    """What is wrong with one box (it must be a list of 4 finite numbers), or None."""
    if not isinstance(box, (list, tuple)):
        return f"expected a box [x1, y1, x2, y2], got {type(box).__name__}"
    if len(box) != 4:
        return f"expected 4 numbers, got {len(box)}"
    if not all(is_number(v) for v in box):
        return f"expected 4 finite numbers, got {box!r}"
    return None


def _boxes_fast(boxes: list):
    """(n, 4) float64 array when every box is a list of 4 finite JSON numbers, else None (look closer).

    Only ``int`` and ``float`` pass: ``bool``, ``str`` and ``None``, which ``np.fromiter`` would silently
    convert, do not (nor tuples or NumPy scalars, which :func:`box_problem` then accepts)."""
    n = len(boxes)
    try:
        lengths = np.fromiter(map(list.__len__, boxes), np.int64, n)  # TypeError for anything but lists
    except TypeError:
        return None
    if n and (lengths.min() != 4 or lengths.max() != 4):
        return None
    flat = list(chain.from_iterable(boxes))
    if not _JSON_NUMBERS.issuperset(map(type, flat)):
        return None
    try:
        arr = np.fromiter(flat, np.float64, 4 * n).reshape(n, 4)
    except OverflowError:  # an int beyond the float range
        return None
    return arr if np.isfinite(arr).all() else None


def box_problems(boxes: list) -> list:
    """``(index, what is wrong)`` for every malformed box of ``boxes`` (see :func:`box_problem`).

    The check the scorer makes, in blocks: quick when every box is well formed."""
    found = []
    for s in range(0, len(boxes), _CHUNK):
        block = boxes[s:s + _CHUNK]
        if _boxes_fast(block) is None:
            found += [(s + i, msg) for i, msg in enumerate(map(box_problem, block)) if msg]
    return found


def box_array(boxes: list, where, file: str) -> np.ndarray:
    """(n, 4) float64 array of a list of boxes; on any malformed box, a ScoringError listing each
    (``where(i)`` names the i-th box)."""
    blocks = [_boxes_fast(boxes[s:s + _CHUNK]) for s in range(0, len(boxes), _CHUNK)]
    if all(b is not None for b in blocks):
        return np.concatenate(blocks) if blocks else np.zeros((0, 4))
    problems = [Problem(file, where(i), msg) for i, msg in box_problems(boxes)]
    if problems:
        raise ScoringError(f"{len(problems)} malformed box(es) in {file}", problems)
    # Well-formed boxes the fast path does not take (tuples, NumPy numbers, from Python callers).
    return np.array([[float(v) for v in box] for box in boxes], dtype=np.float64).reshape(len(boxes), 4)


# ----------------------------------------------------------------------------------------------------
# Parts: the two forms


def parts_problem(parts):
    """``(field suffix, message)`` of the first thing that keeps ``parts`` from being read as
    ``{name: part}``, or None: a dict (the evaluation form) is read as is, a list (the release form) needs
    objects with a string ``name``."""
    if isinstance(parts, dict):
        return None
    if isinstance(parts, list):
        for k, p in enumerate(parts):
            if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                return f".parts[{k}]", "expected an object with a 'name' string"
        return None
    return ".parts", f"expected an object or a list, got {json_kind(parts)}"


def parts_dict(parts, file: str, where: str) -> dict:
    """Parts as {name: part}: the evaluation form (a dict) as is, the raw form (a list with names)
    converted (a repeated name keeps its first place and its last value, as a JSON object would).

    A ScoringError names the first part that is not an object with a string ``name``, or ``parts``
    itself when it is neither an object nor a list."""
    problem = parts_problem(parts)
    if problem is not None:
        raise ScoringError(f"malformed parts in {file}", [Problem(file, where + problem[0], problem[1])])
    if isinstance(parts, dict):
        return parts
    return {p["name"]: p for p in parts}


# ----------------------------------------------------------------------------------------------------
# The part files as columns


class _Missing:
    """A key that is absent (or a container that is not an object)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()

#: ``PartColumns.part_kind``: the part's value is an object, null, or something else.
PART_OBJECT, PART_NULL, PART_OTHER = 0, 1, 2
#: ``PartColumns.human_parts`` below zero: no ``parts`` key (or the human is not an object), or parts
#: that cannot be read (see ``PartColumns.parts_problems``).
NO_PARTS, BAD_PARTS = -1, -2

_get_box = operator.itemgetter("box")
_get_verb = operator.itemgetter("verb")
_get_parts = operator.itemgetter("parts")
_get_humans = operator.itemgetter("humans")


def has_missing(values: list) -> bool:
    """Whether some value is :data:`MISSING` (by identity, in one C-level pass)."""
    return not all(map(operator.is_not, values, repeat(MISSING)))


def segments(counts):
    """(group index, position within group) for each item of consecutive groups of sizes ``counts``."""
    counts = np.asarray(counts, dtype=np.int64)
    group = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return group, np.arange(int(counts.sum())) - starts[group]


def starts_of(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    return np.cumsum(counts) - counts


class BuiltOnFirstRead:
    """A field that may be given as a zero-argument function making its value, called on first read."""

    def __set_name__(self, owner, name):
        self.attr = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError(self.attr[1:])  # a field without a default
        value = obj.__dict__[self.attr]
        if callable(value):
            value = obj.__dict__[self.attr] = value()
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.attr] = value


@dataclass(eq=False)
class PartColumns:
    """One part file (``gt_part_result`` or ``pred_part_result``) as flat columns, in file order.

    Levels point up by counts: ``video_frames`` frames per video, ``frame_humans`` humans per frame,
    ``human_parts`` parts per human; a negative count marks a container that cannot be read (a video
    whose value is not an object of frames, a frame that is not ``{'humans': [...]}``, a human without
    ``parts`` (:data:`NO_PARTS`) or with parts that are neither an object nor a list of named objects
    (:data:`BAD_PARTS`, the place in ``parts_problems``)); it has no children. ``where_*`` name the place
    of any element (``video/img_00001.json/humans[0].parts.head``).

    The walked columns keep the frames, humans and parts as given (``frame_value``, ``human_value``,
    ``parts_dicts`` per human;
    ``part_name`` and ``part_value`` are flattened on first read): their ``box`` and ``verb`` are read
    when asked for (:meth:`human_box_values`, :meth:`part_verb_values`, :meth:`part_box_values`,
    :class:`PartsView`; :data:`MISSING` for an absent key or a value that is not an object), so what is
    wrong with them matters only where a consumer reads them. Columns decoded from JSON text in the
    strict form (``form`` "list" or "single") hold them parsed instead: ``human_box_array``, and
    ``part_verb`` with ``part_box_array`` (single), or ``part_nverb`` with ``proposal_verb`` and
    ``part_nbox`` with ``proposal_box_array`` (list); every box there is 4 finite numbers and every verb
    a string.
    """

    file: str
    videos: list
    video_frames: np.ndarray
    frame_key: list
    frame_humans: np.ndarray
    human_parts: np.ndarray
    part_name: list = BuiltOnFirstRead()
    part_value: list | None = BuiltOnFirstRead()
    frame_value: list | None = None
    human_value: list | None = None
    parts_dicts: list | None = None
    parts_problems: dict = field(default_factory=dict)  # human -> (field suffix, message)
    form: str | None = None
    human_box_array: np.ndarray | None = None
    part_verb: list | None = None
    part_box_array: np.ndarray | None = None
    part_nverb: np.ndarray | None = None
    proposal_verb: list | None = None
    part_nbox: np.ndarray | None = None
    proposal_box_array: np.ndarray | None = None

    # -- structure --------------------------------------------------------------------------------

    @cached_property
    def video_index(self) -> dict:
        return dict(zip(self.videos, range(len(self.videos))))

    @cached_property
    def frame_start(self) -> np.ndarray:
        return starts_of(np.maximum(self.video_frames, 0))

    @cached_property
    def frame_video(self) -> np.ndarray:
        return segments(np.maximum(self.video_frames, 0))[0]

    @cached_property
    def human_start(self) -> np.ndarray:
        return starts_of(np.maximum(self.frame_humans, 0))

    @cached_property
    def human_frame(self) -> np.ndarray:
        return segments(np.maximum(self.frame_humans, 0))[0]

    @cached_property
    def part_start(self) -> np.ndarray:
        return starts_of(np.maximum(self.human_parts, 0))

    @cached_property
    def part_human(self) -> np.ndarray:
        return segments(np.maximum(self.human_parts, 0))[0]

    def where_frame(self, f: int) -> str:
        return f"{self.videos[self.frame_video[f]]}/{self.frame_key[f]}"

    def where_human(self, h: int) -> str:
        f = int(self.human_frame[h])
        return f"{self.where_frame(f)}/humans[{h - self.human_start[f]}]"

    def where_part(self, p: int) -> str:
        return f"{self.where_human(int(self.part_human[p]))}.parts.{self.part_name[p]}"

    def humans_of(self, frames: np.ndarray) -> np.ndarray:
        """Indices of the humans of ``frames`` (readable frames), in order."""
        return ranges(self.human_start[frames], np.maximum(self.frame_humans[frames], 0))

    def parts_of(self, humans: np.ndarray) -> np.ndarray:
        """Indices of the parts of ``humans``, in order."""
        return ranges(self.part_start[humans], np.maximum(self.human_parts[humans], 0))

    # -- values -----------------------------------------------------------------------------------

    @cached_property
    def human_is_object(self) -> np.ndarray:
        if self.human_value is None:
            return np.ones(len(self.human_parts), bool)
        return np.fromiter(map(isinstance, self.human_value, repeat(dict)), bool, len(self.human_value))

    @cached_property
    def part_kind(self) -> np.ndarray:
        """Per part: :data:`PART_OBJECT`, :data:`PART_NULL` or :data:`PART_OTHER` (its value)."""
        if self.part_value is None:
            return np.zeros(len(self.part_name), np.int8)
        values = self.part_value
        kind = np.fromiter(map(isinstance, values, repeat(dict)), bool, len(values))
        out = np.where(kind, PART_OBJECT, PART_OTHER).astype(np.int8)
        if not kind.all():
            out[[v is None for v in values]] = PART_NULL
        return out

    def clean_human_boxes(self, humans) -> np.ndarray | None:
        """(n, 4) float64 boxes of ``humans`` when each is a list of 4 finite JSON numbers, else None
        (read them with :meth:`human_box_values` to see which are not). Read in cache-sized blocks."""
        humans = np.asarray(humans)
        if self.human_value is None:
            return self.human_box_array[humans]
        # Usually the humans are a run of the file's (all of them): read them without an index.
        run = len(humans) and humans[-1] - humans[0] == len(humans) - 1 and (np.diff(humans) == 1).all()
        blocks = []
        for s in range(0, len(humans), _CHUNK):
            if run:
                start = int(humans[0]) + s
                boxes = _items(self.human_value[start:start + min(_CHUNK, len(humans) - s)], _get_box, "box")
            else:
                boxes = self.human_box_values(humans[s:s + _CHUNK])
            blocks.append(_boxes_fast(boxes))  # None: a box MISSING, or not 4 finite numbers
            if blocks[-1] is None:
                return None
        return np.concatenate(blocks) if blocks else np.zeros((0, 4))

    def human_box_values(self, humans) -> list:
        """The ``box`` values of ``humans`` as given (:data:`MISSING` where absent)."""
        humans = np.asarray(humans)
        if self.human_value is None:
            return self.human_box_array[humans].tolist()
        return _items(self.human_value, _get_box, "box", humans.tolist())

    @cached_property
    def verb_start(self) -> np.ndarray:
        return starts_of(self.part_nverb)

    @cached_property
    def proposal_start(self) -> np.ndarray:
        return starts_of(self.part_nbox)

    def part_verb_values(self, parts) -> list:
        """The ``verb`` values of ``parts`` as given: one verb, or a list of proposal verbs."""
        parts = np.asarray(parts).tolist()
        if self.part_value is not None:
            return _items(self.part_value, _get_verb, "verb", parts)
        if self.part_verb is not None:
            return list(map(self.part_verb.__getitem__, parts))
        verbs, start, n = self.proposal_verb, self.verb_start, self.part_nverb
        return [verbs[start[i]:start[i] + n[i]] for i in parts]

    def part_box_values(self, parts) -> list:
        """The ``box`` values of ``parts`` as given: one box, or a list of proposal boxes."""
        parts = np.asarray(parts)
        if self.part_value is not None:
            return _items(self.part_value, _get_box, "box", parts.tolist())
        if self.form == "single":
            return self.part_box_array[parts].tolist()
        return [self.proposal_box_array[s:s + n].tolist() for s, n in zip(self.proposal_start[parts].tolist(),
                                                                        self.part_nbox[parts].tolist())]


class PartsView:
    """Some parts of a :class:`PartColumns`, in order: ``index`` (their indices in the columns), ``names``
    (when known) and their values read by position in the view (:meth:`verbs`, :meth:`boxes`). Parts of
    walked columns are read from the humans' own dicts, a few thousand at a time while in the cache."""

    def __init__(self, cols: PartColumns, index: np.ndarray | None, names: list | None = None,
                 values: list | None = None):
        self.cols, self.index, self.names, self.values = cols, index, names, values

    @classmethod
    def of_humans(cls, cols: PartColumns, humans: np.ndarray) -> "PartsView":
        """The parts of ``humans`` (which have readable parts), in order, with their names."""
        index = cols.parts_of(humans)
        if cols.parts_dicts is None:
            return cls(cols, index, list(map(cols.part_name.__getitem__, index.tolist())))
        dicts = list(map(cols.parts_dicts.__getitem__, humans.tolist()))
        return cls(cols, index, list(chain.from_iterable(dicts)), list(chain.from_iterable(map(dict.values, dicts))))

    def verbs(self, at: np.ndarray) -> list:
        if self.values is None:
            return self.cols.part_verb_values(self.index[at])
        return _items(self.values, _get_verb, "verb", at.tolist())

    def boxes(self, at: np.ndarray) -> list:
        if self.values is None:
            return self.cols.part_box_values(self.index[at])
        return _items(self.values, _get_box, "box", at.tolist())


def find_parts(cols: PartColumns, humans: np.ndarray, owner: np.ndarray, names: list) -> tuple:
    """For each name, the part of that name of the human ``humans[owner[i]]`` (humans with readable
    parts; a part that is JSON null is no part, as ``dict.get`` sees it): ``(found, view)``, the positions
    i that have one and a :class:`PartsView` of those parts, in order."""
    if cols.parts_dicts is not None:
        dicts = list(map(cols.parts_dicts.__getitem__, humans.tolist()))
        values = list(map(dict.get, map(dicts.__getitem__, owner.tolist()), names))
        present = np.fromiter(map(operator.is_not, values, repeat(None)), bool, len(values))
        return np.nonzero(present)[0], PartsView(cols, None, values=list(compress(values, present)))
    parts = cols.parts_of(humans)
    index = defaultdict()
    index.default_factory = index.__len__  # a new name takes the next code
    gcode = np.fromiter(map(index.__getitem__, names), np.int64, len(names))
    pcode = np.fromiter(map(index.__getitem__, map(cols.part_name.__getitem__, parts.tolist())), np.int64, len(parts))
    # (human, name) as one integer key; names are unique within a human.
    gkey, pkey = owner * len(index) + gcode, segments(cols.human_parts[humans])[0] * len(index) + pcode
    if not len(pkey):
        return np.zeros(0, np.int64), PartsView(cols, np.zeros(0, np.int64))
    order = np.argsort(pkey, kind="stable")
    at = order[np.minimum(np.searchsorted(pkey[order], gkey), len(pkey) - 1)]
    found = np.nonzero(pkey[at] == gkey)[0]
    return found, PartsView(cols, parts[at[found]])


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``range(start, start + count)`` for each pair."""
    group, pos = segments(counts)
    return np.asarray(starts, dtype=np.int64)[group] + pos


# -- walking decoded JSON (dicts and lists) ----------------------------------------------------------


def _counts(containers: list, length) -> np.ndarray | None:
    """Lengths of ``containers`` when every one is of the type ``length`` measures, else None."""
    try:
        return np.fromiter(map(length, containers), np.int64, len(containers))
    except TypeError:
        return None


def _item_or_missing(key: str):
    def get(value):
        try:
            return value[key]
        except (KeyError, TypeError, IndexError):
            return MISSING
    return get


def _items(values: list, getter, key: str, at: list | None = None) -> list:
    """``value[key]`` of every value (of ``values[i]`` for i in ``at``; :data:`MISSING` where it cannot
    be read), in one C-level pass when all can be read."""
    chosen = values if at is None else map(values.__getitem__, at)
    try:
        return list(map(getter, chosen))
    except (KeyError, TypeError, IndexError):
        chosen = values if at is None else map(values.__getitem__, at)
        return list(map(_item_or_missing(key), chosen))


def _walk_videos(obj: Mapping):
    values = list(obj.values())
    counts = _counts(values, dict.__len__)
    if counts is None:
        counts = np.array([len(v) if isinstance(v, dict) else -1 for v in values], dtype=np.int64)
        values = [v for v in values if isinstance(v, dict)]
    keys = list(chain.from_iterable(values))
    frames = list(chain.from_iterable(map(dict.values, values)))
    return list(obj), counts, keys, frames


def _walk_frames(frames: list):
    humans = _items(frames, _get_humans, "humans")
    counts = _counts(humans, list.__len__)
    if counts is None:  # the scorer's and validator's judgement: {'humans': [...]} in an object
        ok = [isinstance(fr, dict) and isinstance(h, list) for fr, h in zip(frames, humans)]
        counts = np.array([len(h) if k else -1 for h, k in zip(humans, ok)], dtype=np.int64)
        humans = list(compress(humans, ok))
    return counts, list(chain.from_iterable(humans))


def _walk_parts(humans: list):
    """Counts, problems and the parts as {name: part} of every human (None where they cannot be read)."""
    parts = _items(humans, _get_parts, "parts")
    counts = _counts(parts, dict.__len__)
    if counts is not None:
        return counts, {}, parts
    counts = np.zeros(len(parts), dtype=np.int64)
    problems, dicts = {}, []
    for h, p in enumerate(parts):
        problem = None if p is MISSING else parts_problem(p)
        dicts.append(None if p is MISSING or problem else parts_dict(p, "", ""))
        counts[h] = NO_PARTS if p is MISSING else BAD_PARTS if problem else len(dicts[-1])
        if problem:
            problems[h] = problem
    return counts, problems, dicts


def _flat(dicts: list, each) -> list:
    """Names (``each=iter``) or values (``dict.values``) of the readable dicts, in blocks that stay in the
    cache while they are read."""
    out = []
    for s in range(0, len(dicts), _CHUNK):
        out += chain.from_iterable(map(each, filter(None, dicts[s:s + _CHUNK])))
    return out


def walk_part_file(obj: Mapping, file: str) -> PartColumns:
    """:class:`PartColumns` of a decoded part file (dicts and lists as ``json.load`` gives them).

    Nothing raises here: what is malformed is marked, and each consumer (the scorer, the validator)
    decides where it matters and how to say so."""
    with gc_paused():
        videos, video_frames, keys, frames = _walk_videos(obj)
        frame_humans, humans = _walk_frames(frames)
        human_parts, problems, dicts = _walk_parts(humans)
        return PartColumns(file=file, videos=videos, video_frames=video_frames, frame_key=keys,
                           frame_humans=frame_humans, human_parts=human_parts,
                           part_name=lambda: _flat(dicts, iter), part_value=lambda: _flat(dicts, dict.values),
                           frame_value=frames, human_value=humans, parts_dicts=dicts, parts_problems=problems)


# -- decoding JSON text (msgspec) ---------------------------------------------------------------------


@lru_cache(maxsize=None)
def _decoder(form: str, verbs: tuple | None = None):
    """msgspec decoders of a part file in the strict ``form`` (every human with ``box`` and ``parts``,
    every part with ``box`` and a string ``verb``, a list of strings in ``list`` form), boxes kept as raw
    JSON text (:func:`_parse_boxes` reads them all at once), and of a flat list of numbers. With ``verbs``
    (names), only those verbs are accepted and each comes back as the one string object of its name."""
    import msgspec

    verb = str if verbs is None else Literal[verbs]
    fields = [("box", msgspec.Raw), ("verb", list[verb] if form == "list" else verb)]
    part = msgspec.defstruct(f"Part_{form}", fields, gc=False)
    named = msgspec.defstruct(f"NamedPart_{form}", [("name", str), *fields], gc=False)
    human = msgspec.defstruct(f"Human_{form}", [("box", msgspec.Raw), ("parts", dict[str, part] | list[named])],
                              gc=False)
    frame = msgspec.defstruct(f"Frame_{form}", [("humans", list[human])], gc=False)
    return (msgspec.json.Decoder(dict[str, dict[str, frame]]), msgspec.json.Decoder(list[float]),
            msgspec.DecodeError)


_get_struct_humans = operator.attrgetter("humans")
_get_struct_box = operator.attrgetter("box")
_get_struct_verb = operator.attrgetter("verb")
_get_struct_parts = operator.attrgetter("parts")
_get_struct_name = operator.attrgetter("name")
# A box's JSON text without its numbers (digits, signs, points, exponents) and spaces: "[,,,]".
_SPACES = b" \t\r\n"
_NUMBER_TEXT = b"0123456789.+-eE" + _SPACES
_TO_NUMBER_LIST = bytes.maketrans(b"[]|", b"  ,")  # brackets out, the separator "|" to a comma
_BOX_SHAPE = b"[,,,]"


def _struct_parts(parts: list) -> list:
    """Each human's parts as {name: part}: the list form converted as a JSON object would hold it."""
    if set(map(type, parts)) <= {dict}:
        return parts
    return [p if type(p) is dict else dict(zip(map(_get_struct_name, p), p)) for p in parts]


def _numbers(text: bytes, n: int) -> np.ndarray | None:
    """The numbers of ``text`` (JSON arrays of numbers, or of arrays of them, separated by commas or "|")
    in one flat float64 array, or None unless there are ``n``, all within the float range."""
    flat, error = _decoder("single")[1:]
    try:
        numbers = flat.decode(b"[%b]" % text.translate(_TO_NUMBER_LIST))  # one pass, one copy
    except error:
        return None
    return np.array(numbers, dtype=np.float64).reshape(-1) if len(numbers) == n else None


def _parse_boxes(texts: list) -> np.ndarray | None:
    """(n, 4) boxes from their JSON text when each is 4 numbers, else None."""
    text = b",".join(texts)
    if text.translate(None, _NUMBER_TEXT) != b",".join([_BOX_SHAPE] * len(texts)):
        return None
    numbers = _numbers(text, 4 * len(texts))
    return None if numbers is None else numbers.reshape(-1, 4)


def _parse_box_lists(texts: list):
    """``(boxes per text, (m, 4) boxes)`` from the JSON text of lists of boxes (each 4 numbers), else None."""
    if not texts:
        return np.zeros(0, np.int64), np.zeros((0, 4))
    text = b"|".join(texts)
    shapes = text.translate(None, _NUMBER_TEXT)
    ends = np.append(np.flatnonzero(np.frombuffer(shapes, np.uint8) == ord("|")), len(shapes))
    if len(ends) != len(texts):  # a "|" in a string
        return None
    count = (np.diff(ends, prepend=-1) - 2) // 6  # "[" + 6 per box + "]", without the separator
    lists = {k: b"[" + b",".join([_BOX_SHAPE] * k) + b"]" for k in np.unique(count).tolist()}
    if shapes != b"|".join(map(lists.__getitem__, count.tolist())):
        return None
    empty = count == 0
    if empty.any():
        # Without its numbers "[5]" looks like "[]": an empty list must be brackets and white space only.
        # The numbers are read from the other lists.
        if any(bytes(texts[i]).translate(None, _SPACES) != b"[]" for i in np.flatnonzero(empty).tolist()):
            return None
        text = b"|".join(compress(texts, (~empty).tolist()))
    numbers = _numbers(text, 4 * int(count.sum()))
    return None if numbers is None else (count, numbers.reshape(-1, 4))


def _decoded_parts(humans: list, form: str) -> dict | None:
    """The part columns of decoded humans: names, counts, verbs and parsed boxes (None: a box that is
    not 4 numbers within the float range)."""
    parts = _struct_parts(list(map(_get_struct_parts, humans)))
    values = list(chain.from_iterable(map(dict.values, parts)))
    boxes, verbs = list(map(_get_struct_box, values)), list(map(_get_struct_verb, values))
    out = {"human_parts": np.fromiter(map(len, parts), np.int64, len(parts)),
           "part_name": list(chain.from_iterable(parts)), "part_value": None}
    if form == "single":
        out.update(part_verb=verbs, part_box_array=_parse_boxes(boxes))
        return out if out["part_box_array"] is not None else None
    lists = _parse_box_lists(boxes)
    if lists is None:
        return None
    return dict(out, part_nbox=lists[0], proposal_box_array=lists[1],
                part_nverb=np.fromiter(map(len, verbs), np.int64, len(verbs)),
                proposal_verb=list(chain.from_iterable(verbs)))


def _decode_strict(data, form: str):
    """The part file's text decoded in the strict ``form``, or None. Verbs that are all states of the
    vocabulary come back as shared strings (a test-set prediction holds over a million verbs: making and
    freeing a string for each took 0.2 s); any other verbs are decoded too, in a second pass."""
    for verbs in (STATES, None):
        decoder, _, error = _decoder(form, verbs)
        try:
            return decoder.decode(data)
        except (error, UnicodeDecodeError, RecursionError):
            continue
    return None


#: The interface of tpslab/_partfile.c this code calls (its ``API``).
PARTFILE_API = 2


@lru_cache(maxsize=None)
def compiled_reader():
    """The compiled reader of part files (the module ``tpslab._partfile``), or None where it was not built
    (no C compiler at install time: msgspec then reads every file, with the same results) or was built
    from another version of its source (a source tree updated without ``pip install -e .``: rebuild)."""
    try:
        from tpslab import _partfile
    except ImportError:
        return None
    return _partfile if getattr(_partfile, "API", None) == PARTFILE_API else None


def _compiled_columns(data, file: str, form: str) -> PartColumns | None:
    """:class:`PartColumns` from the compiled reader, or None where it is not built or leaves the text to
    msgspec (anything but the plain strict form; a video held twice, which it does not look for)."""
    reader = compiled_reader()
    # The vocabulary's states come back as its own strings, as from the msgspec reader.
    cols = reader.parse(data, form == "list", STATES) if reader is not None else None
    if cols is None or len(set(cols["videos"])) != len(cols["videos"]):
        return None
    counts = {k: np.frombuffer(cols[k], np.int64) for k in ("video_frames", "frame_humans", "human_parts")}
    boxes = "proposal_box" if form == "list" else "part_box"
    parts = ({"part_nbox": np.frombuffer(cols["part_nbox"], np.int64), "proposal_verb": cols["proposal_verb"],
              "part_nverb": np.frombuffer(cols["part_nverb"], np.int64)} if form == "list"
             else {"part_verb": cols["part_verb"]})
    return PartColumns(file=file, videos=cols["videos"], frame_key=cols["frame_key"], part_name=cols["part_name"],
                       part_value=None, human_box_array=np.frombuffer(cols["human_box"], np.float64).reshape(-1, 4),
                       form=form, **{f"{boxes}_array": np.frombuffer(cols[boxes], np.float64).reshape(-1, 4)},
                       **counts, **parts)


def decode_part_file(data, file: str, form: str) -> PartColumns | None:
    """:class:`PartColumns` straight from the JSON text of a part file in the strict ``form`` ("list":
    proposal lists, "single": one box and one verb per part), or None when the text is not in that form
    (then :func:`walk_part_file` reads it and the consumers say what is wrong). The compiled reader reads
    the plain form; msgspec what it leaves."""
    columns = _compiled_columns(data, file, form)
    if columns is not None:
        return columns
    with gc_paused():  # the decoded objects are freed before the collector resumes: it never walks them
        top = _decode_strict(data, form)
        if top is None:
            return None
        fdicts = list(top.values())
        hlists = list(map(_get_struct_humans, chain.from_iterable(map(dict.values, fdicts))))
        humans = list(chain.from_iterable(hlists))
        human_box = _parse_boxes(list(map(_get_struct_box, humans)))
        parts = _decoded_parts(humans, form) if human_box is not None else None
        if parts is None:
            return None
        columns = PartColumns(
            file=file, videos=list(top), video_frames=np.fromiter(map(len, fdicts), np.int64, len(fdicts)),
            frame_key=list(chain.from_iterable(fdicts)), frame_humans=np.fromiter(map(len, hlists), np.int64,
                                                                                 len(hlists)),
            human_box_array=human_box, form=form, **parts)
        del top, fdicts, hlists, humans
    return columns


def part_columns(source, name: str, form: str = "single", label: str | None = None) -> PartColumns:
    """:class:`PartColumns` of a part file given as a dict (as loaded from JSON), a path, JSON text
    (bytes) or columns already made (returned as they are).

    ``name`` (``gt_part_result``/``pred_part_result``) and ``label`` say where the input came from: errors
    about the whole file name ``label`` (default: ``name``, with the path for a path), and the problems
    inside it (a malformed box, ...) name ``label`` too, else the path (or the file a :class:`JsonObject`
    was read from), else ``{name}.json``. Text in the strict ``form`` is decoded into typed columns
    directly; any other text is parsed (errors: not JSON, not an object) and walked."""
    file = label or file_label(source, f"{name}.json")
    if isinstance(source, PartColumns):
        return source
    if isinstance(source, (str, Path)):
        file = label or str(source)
        label = label or f"{name} ({Path(source)})"
        source = read_json_bytes(source, name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_part_file(source, file, form) or walk_part_file(loads_json(source, label or name), file)
    return walk_part_file(load_json(source, label or name), file)
