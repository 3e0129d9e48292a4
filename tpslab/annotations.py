"""One Kinetics-TPS frame file -> humans and parts.

Both forms of ``parts`` are accepted: the raw release's list of dicts carrying a ``name``, and the
evaluation ground truth's dict keyed by part name. An object is absent when ``obj_class`` is null,
"" or missing; the label ``"none"`` names an object outside the vocabulary and keeps its box.
Boxes are ``[x1, y1, x2, y2]`` with inclusive corners, ints or floats. Extra keys are ignored.

Problems raise :class:`tpslab.AnnotationError` (file, field, what was expected) in strict mode; in
lenient mode they are appended to a problem list and the broken element (frame, human or part) is
skipped, while a name missing from the vocabulary is kept and reported.

The parsing core writes into a :class:`ColumnSink` so the index builder and :func:`read_frame` share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from tpslab.challenge import FRAME_FILE, file_frame_number, frame_key  # noqa: F401 (re-exported)
from tpslab.errors import AnnotationError, Problem
from tpslab.vocab import Vocab

_NUMBER_TYPES = (int, float)
#: The frame conventions live in :mod:`tpslab.challenge`; ``frame_number`` here is its lenient reader of
#: release file names (``img_6.json`` and paths are accepted).
frame_number = file_frame_number


class _Skip(Exception):
    """Raised inside the parser in lenient mode to drop the current element."""


class NameCodes:
    """Name -> integer code for one vocabulary, extended with unknown names met in lenient mode."""

    def __init__(self, vocabulary):
        self.vocabulary = vocabulary
        self.codes = {n: i for i, n in enumerate(vocabulary.names)}
        self.extra: list[str] = []

    def add_unknown(self, name: str) -> int:
        self.extra.append(name)
        code = len(self.codes)
        self.codes[name] = code
        return code

    @property
    def names(self) -> list[str]:
        return list(self.vocabulary.names) + self.extra


class ColumnSink:
    """Columnar accumulator for parsed frames; one per worker batch.

    Parts point to their human by row number (``part_human``); humans point to their frame the same
    way, so video/frame/human keys and human boxes are recovered with array takes, not copied per part.
    """

    def __init__(self, vocab: Vocab):
        self.parts_codes = NameCodes(vocab.parts)
        self.state_codes = NameCodes(vocab.states)
        self.object_codes = NameCodes(vocab.objects)
        self.frame_video: list[int] = []
        self.frame_number: list[int] = []
        self.frame_humans: list[int] = []
        self.human_frame: list[int] = []
        self.human_index: list[int] = []  # position in the file's humans list
        self.human_box: list[float] = []  # flat x1, y1, x2, y2 per human
        self.human_parts: list[int] = []
        self.part_human: list[int] = []
        self.part_name: list[int] = []
        self.part_box: list[float] = []
        self.part_state: list[int] = []
        self.part_object: list[int] = []  # -1: no object
        self.object_box: list[float] = []  # NaN x4 when no object
        self.problems: list[Problem] = []

    def arrays(self) -> dict:
        """The columns as numpy arrays (compact to pickle from a worker)."""
        return {
            "frame_video": np.asarray(self.frame_video, np.int32),
            "frame_number": np.asarray(self.frame_number, np.int32),
            "frame_humans": np.asarray(self.frame_humans, np.int16),
            "human_frame": np.asarray(self.human_frame, np.int64),
            "human_index": np.asarray(self.human_index, np.int16),
            "human_box": np.asarray(self.human_box, np.float64).reshape(-1, 4),
            "human_parts": np.asarray(self.human_parts, np.int16),
            "part_human": np.asarray(self.part_human, np.int64),
            "part_name": np.asarray(self.part_name, np.int32),
            "part_box": np.asarray(self.part_box, np.float64).reshape(-1, 4),
            "part_state": np.asarray(self.part_state, np.int32),
            "part_object": np.asarray(self.part_object, np.int32),
            "object_box": np.asarray(self.object_box, np.float64).reshape(-1, 4),
            "part_names": self.parts_codes.names,
            "state_names": self.state_codes.names,
            "object_names": self.object_codes.names,
        }


_NO_OBJECT_BOX = (float("nan"),) * 4


class _FrameParser:
    """Parses decoded JSON of one frame into a sink, reporting problems with file and field."""

    def __init__(self, sink: ColumnSink, strict: bool):
        self.sink = sink
        self.strict = strict

    def fail(self, path, fld: str, message: str):
        if self.strict:
            raise AnnotationError(path, fld, message)
        self.sink.problems.append(Problem(str(path), fld, message))
        raise _Skip

    def box(self, value, path, fld: str):
        if type(value) is not list or len(value) != 4:
            self.fail(path, fld, f"expected a box of 4 numbers [x1, y1, x2, y2], got {value!r:.80}")
        x1, y1, x2, y2 = value
        if not (type(x1) in _NUMBER_TYPES and type(y1) in _NUMBER_TYPES
                and type(x2) in _NUMBER_TYPES and type(y2) in _NUMBER_TYPES):
            self.fail(path, fld, f"expected 4 numbers, got {value!r:.80}")
        if x2 < x1 or y2 < y1:
            self.fail(path, fld, f"expected x1 <= x2 and y1 <= y2, got {value!r}")
        return value

    def code(self, codes: NameCodes, name, path, fld: str) -> int:
        c = codes.codes.get(name) if type(name) is str else None
        if c is not None:
            return c
        kind = codes.vocabulary.kind
        if type(name) is not str or not name:
            self.fail(path, fld, f"expected a {kind} name, got {name!r}")
        suggestions = codes.vocabulary.suggest(name)
        hint = f" (did you mean {', '.join(map(repr, suggestions))}?)" if suggestions else ""
        message = f"unknown {kind} {name!r}: not in the {kind} list{hint}"
        if self.strict:
            raise AnnotationError(path, fld, message)
        self.sink.problems.append(Problem(str(path), fld, message))
        return codes.add_unknown(name)

    def parse(self, raw: bytes, path, video_index: int, frame_no: int) -> None:
        """Parse one file's bytes; in lenient mode a broken frame is dropped and reported."""
        try:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                self.fail(path, "", f"malformed JSON: {e}")
            if type(data) is not dict or "humans" not in data:
                self.fail(path, "humans", "expected a top-level object with a 'humans' list")
            humans = data["humans"]
            if type(humans) is not list:
                self.fail(path, "humans", f"expected a list, got {type(humans).__name__}")
        except _Skip:
            return
        sink = self.sink
        frame_row = len(sink.frame_video)
        sink.frame_video.append(video_index)
        sink.frame_number.append(frame_no)
        kept = 0
        for h, human in enumerate(humans):
            try:
                self.human(human, path, f"humans[{h}]", frame_row, h)
                kept += 1
            except _Skip:
                pass
        sink.frame_humans.append(kept)

    def human(self, human, path, fld: str, frame_row: int, index: int) -> None:
        sink = self.sink
        if type(human) is not dict:
            self.fail(path, fld, f"expected an object, got {type(human).__name__}")
        box = self.box(human.get("box"), path, fld + ".box")
        parts = human.get("parts", [])
        if type(parts) is dict:
            items = parts.items()
            named = True
        elif type(parts) is list:
            items = enumerate(parts)
            named = False
        elif parts is None:
            items, named = (), False
        else:
            self.fail(path, fld + ".parts", "expected a list of parts or an object keyed by part name")
        human_row = len(sink.human_frame)
        seen: set = set()
        count = 0
        for key, part in items:
            pfld = f"{fld}.parts[{key!r}]" if named else f"{fld}.parts[{key}]"
            try:
                if type(part) is not dict:
                    self.fail(path, pfld, f"expected an object, got {type(part).__name__}")
                name = key if named else part.get("name")
                pcode = self.code(sink.parts_codes, name, path, pfld + ".name")
                if name in seen:
                    self.fail(path, pfld + ".name", f"duplicate part {name!r} in one human")
                pbox = self.box(part.get("box"), path, pfld + ".box")
                scode = self.code(sink.state_codes, part.get("verb"), path, pfld + ".verb")
                obj = part.get("obj_class")
                if obj is None or obj == "":
                    ocode, obox = -1, _NO_OBJECT_BOX
                else:
                    ocode = self.code(sink.object_codes, obj, path, pfld + ".obj_class")
                    obox = self.box(part.get("obj_bbox"), path, pfld + ".obj_bbox")
            except _Skip:
                continue
            seen.add(name)
            sink.part_human.append(human_row)
            sink.part_name.append(pcode)
            sink.part_box.extend(pbox)
            sink.part_state.append(scode)
            sink.part_object.append(ocode)
            sink.object_box.extend(obox)
            count += 1
        sink.human_frame.append(frame_row)
        sink.human_index.append(index)
        sink.human_box.extend(box)
        sink.human_parts.append(count)


def parse_frame_bytes(raw: bytes, path, sink: ColumnSink, *, video_index: int = 0,
                      frame: int | None = None, strict: bool = True) -> None:
    """Parse the bytes of one annotation file into ``sink`` (the index builder's entry point)."""
    if frame is None:
        frame = frame_number(str(path))
    _FrameParser(sink, strict).parse(raw, path, video_index, frame)


@dataclass
class Part:
    name: str
    box: tuple
    state: str
    object: str | None = None
    object_box: tuple | None = None


@dataclass
class Human:
    box: tuple
    parts: list[Part] = field(default_factory=list)


@dataclass
class Frame:
    """One annotation file, parsed. ``problems`` is empty in strict mode."""

    path: str
    frame: int
    humans: list[Human]
    problems: list[Problem]


def read_frame(path, vocab: Vocab | None = None, *, strict: bool = True) -> Frame:
    """Read one ``img_NNNNN.json`` file.

    ``vocab`` defaults to the built-in names. In strict mode any problem raises
    :class:`tpslab.AnnotationError`; otherwise broken elements are skipped and listed in ``problems``.
    """
    path = Path(path)
    try:
        frame = frame_number(path.name)
    except ValueError:
        frame = -1
    sink = ColumnSink(vocab or Vocab.default())
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AnnotationError(path, "", f"cannot read the file: {e.strerror or e}") from e
    parse_frame_bytes(raw, path, sink, frame=frame, strict=strict)
    cols = sink.arrays()
    humans = [Human(tuple(b.tolist())) for b in cols["human_box"]]
    for i in range(len(cols["part_human"])):
        obj = int(cols["part_object"][i])
        humans[cols["part_human"][i]].parts.append(Part(
            name=cols["part_names"][cols["part_name"][i]],
            box=tuple(cols["part_box"][i].tolist()),
            state=cols["state_names"][cols["part_state"][i]],
            object=None if obj < 0 else cols["object_names"][obj],
            object_box=None if obj < 0 else tuple(cols["object_box"][i].tolist()),
        ))
    return Frame(str(path), frame, humans, sink.problems)
