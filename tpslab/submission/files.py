"""The challenge's files on disk: the two JSON files of the ground truth and of a submission, written
atomically and read back safely (a folder or a zip, bounded in size, as dicts or as columns)."""

from __future__ import annotations

import errno
import io
import math
import os
import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tpslab.challenge import (GT_PART, GT_VID, MAX_HUMANS, MAX_PROPOSALS, PRED_PART, PRED_VID, JsonObject,
                              PartColumns, ScoringError, check_mode, compiled_reader, decode_part_file, loads_json,
                              part_columns, repeated_in_part_file, repeated_keys)
from tpslab.errors import Problem
from tpslab.fileio import add_to_zip, atomic_write_bytes, check_written, write_with_record, zip_as_written
from tpslab.vocab import PARTS

#: The hidden record of the JSON files tpslab wrote into a folder, and who wrote them.
WRITTEN_RECORD, TOOL = ".tpslab-files.json", "tpslab"
#: The comment of the submission zips tpslab writes (so that only those are ever replaced).
SUBMISSION_ZIP_COMMENT = b"written by tpslab"
#: Videos of the test split, and scored frames per video (about 151 annotated frames / stride 5).
TEST_VIDEOS = 932
SCORED_FRAMES_PER_VIDEO = 30
#: Bytes of the default bound on a submission (its two JSON files together, as inflated from the zip):
#: the largest test-set submission the challenge's limits allow, written as compact JSON with room to
#: spare. 932 test videos x 30 scored frames (img_00001, img_00006, ... of ~151 annotated frames) x
#: 10 humans x 10 parts x 5 proposals; a proposal is a box of four numbers of up to 20 characters and
#: a verb (~112 bytes with brackets, quotes and commas), a part adds 48 bytes of keys, a human 128 (its
#: box and keys), a frame 32 (its key), a video 64 (its name and class). That is 1,736,711,168 bytes
#: (1.6 GiB; real submissions are far smaller). Override with ``read_submission(..., max_bytes=)`` or
#: ``tpslab evaluate --max-bytes``.
MAX_SUBMISSION_BYTES = TEST_VIDEOS * (64 + SCORED_FRAMES_PER_VIDEO * (32 + MAX_HUMANS * (
    128 + len(PARTS) * (48 + MAX_PROPOSALS * 112))))
#: Submissions (JSON of numbers and names) deflate 2-6 times; a zip whose files inflate more than this
#: many times their compressed size is refused as a zip bomb once they pass ``RATIO_FREE_BYTES``
#: (small files may compress as they like). A real one can be read unzipped, from its folder.
MAX_INFLATE_RATIO = 100
RATIO_FREE_BYTES = 64 << 20

class SubmissionError(ScoringError):
    """A submission or prediction table that cannot be used; ``problems`` lists every offending place."""


def _dumps(obj, name: str) -> bytes:
    """Compact JSON of ``obj`` (file ``name``). orjson writes NaN and infinity as null: a number JSON cannot
    hold is refused, naming its place, instead of reaching the file as a null."""
    import orjson

    data = orjson.dumps(obj)
    if b":null" in data or b",null" in data or b"[null" in data:  # orjson adds no spaces; None is null too
        where = _non_finite_place(obj)
        if where is not None:
            raise SubmissionError(f"{name}: {where[0]} is {where[1]}: JSON has no NaN or infinity (it would be "
                                  "written as null)")
    return data


def _non_finite_place(obj, where: str = "", level: int = 0):
    """``(place, value)`` of the first float that is not finite in ``obj`` (dicts and lists), else None; places
    are named as the validator names them: ``video/frame/humans[0].parts.head.box[0][2]``."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where, obj)
    if isinstance(obj, dict):  # the video, frame and "humans" levels are joined by "/", deeper keys by "."
        items = ((f"{where}{'/' if level < 3 else '.'}{k}" if where else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for place, value in items:
        found = _non_finite_place(value, place, level + 1)
        if found is not None:
            return found
    return None


def _loads(data: bytes, name: str) -> JsonObject:
    try:
        return JsonObject(loads_json(data, name), name)
    except ScoringError as e:
        raise SubmissionError(str(e)) from None


def _part_columns(data: bytes, name: str, form: str, label: str) -> PartColumns:
    try:
        return part_columns(data, name, form, label=label)
    except ScoringError as e:
        raise SubmissionError(str(e)) from None


def write_json_pair(out, vid_name: str, vid: dict, part_name: str, part: dict, *,
                    record: bool = True) -> tuple[Path, Path]:
    """Write two JSON files into folder ``out`` (atomically: each appears only when complete), beside a
    hidden record of what was written (``.tpslab-files.json``): a file of those names that tpslab did not
    write there, or that changed since, is refused with ``FileExistsError`` before anything is written.
    ``record=False``: no record and no check, for a new folder of tpslab's own (a bundle being built)."""
    out = Path(out)
    data = {part_name: _dumps(part, part_name), vid_name: _dumps(vid, vid_name)}
    if not record:
        for name, d in data.items():
            atomic_write_bytes(out / name, d)
    else:
        check_written(out, data, WRITTEN_RECORD, TOOL, new=data)
        write_with_record(out, data, WRITTEN_RECORD, TOOL)
    return out / vid_name, out / part_name


def _missing_or_not_a_file(path: Path) -> str:
    if path.is_dir():
        return "is a folder, not a file"
    return "is not a file" if path.exists() else _dangling(path) or "is missing"


def _dangling(path: Path) -> str | None:
    """How a link that leads nowhere is wrong (None for anything else): 'missing' would send the user
    looking for a file that is there."""
    if not path.is_symlink():
        return None
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python before 3.13
        return "is a symbolic link in a loop of links"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symbolic link in a loop of links"
        return f"is a symbolic link to {os.readlink(path)}, which does not exist"
    return None


def _ground_truth_bytes(gt_dir) -> tuple[bytes, bytes, tuple[str, str]]:
    gt_dir = Path(gt_dir)
    if gt_dir.exists() and not gt_dir.is_dir():
        raise SubmissionError(f"{gt_dir} is a file, not a folder (expected a folder with {GT_VID} and {GT_PART}; "
                              "tpslab export-gt writes one)")
    out = []
    for name in (GT_VID, GT_PART):
        path = gt_dir / name
        if not path.is_file():
            raise SubmissionError(f"{path} {_missing_or_not_a_file(path)} (expected {GT_VID} and {GT_PART} in "
                                  f"{gt_dir})")
        out.append(path.read_bytes())
    return out[0], out[1], (str(gt_dir / GT_VID), str(gt_dir / GT_PART))


def read_ground_truth(gt_dir) -> tuple[dict, dict]:
    """``(gt_vid, gt_part)`` from a folder holding ``gt_vid_result.json`` and ``gt_part_result.json``."""
    vid, part, names = _ground_truth_bytes(gt_dir)
    return _loads(vid, names[0]), _loads(part, names[1])


def open_ground_truth(gt_dir) -> tuple[dict, PartColumns]:
    """``(gt_vid, gt_part)`` like :func:`read_ground_truth`, the part file read straight into columns."""
    gt_vid, gt_part = _opening_ground_truth(gt_dir, background=False)
    return gt_vid, gt_part()


def _opening_ground_truth(gt_dir, background: bool):
    """``gt_vid`` and a function that returns the part file's columns; with ``background``, the strict
    decode runs meanwhile in a forked worker (:func:`tpslab.memory.in_background`). Either way the
    function gives the columns, or raises the error, that reading the file here gives."""
    vid, part, names = _ground_truth_bytes(gt_dir)
    gt_vid = _loads(vid, names[0])
    if background:
        from tpslab.memory import in_background

        decoded = in_background(decode_part_file, part, names[1], "single")  # None: not in the strict form
    else:
        def decoded():  # nothing decoded beforehand: _part_columns decodes, or walks, here
            return None

    def gt_part() -> PartColumns:
        columns = decoded()
        if columns is None:  # not in the strict form: read as it is, and refuse the other mode's form
            columns = _part_columns(part, "gt_part_result", "single", names[1])
            _refuse_list_form(columns, names[1])
        return columns

    return gt_vid, gt_part


def _refuse_list_form(columns: PartColumns, label: str) -> None:
    """A ground truth in the form of a mode 'list' submission (a submission given as the ground truth)
    scores 0 everywhere: refuse it."""
    values = columns.part_value
    if values and all(isinstance(v, dict) and isinstance(v.get("verb"), list) for v in values):
        raise SubmissionError(f"{label}: every part holds lists of boxes and verbs, as a mode 'list' submission "
                              "does; a ground-truth part has one box and one verb")


def write_prediction_files(out, pred_vid: dict, pred_part: dict) -> tuple[Path, Path]:
    """Write ``pred_vid_result.json`` and ``pred_part_result.json`` into folder ``out``."""
    return write_json_pair(out, PRED_VID, pred_vid, PRED_PART, pred_part)


def is_tpslab_submission_zip(path) -> bool:
    """Whether ``path`` is a zip :func:`write_submission_zip` wrote, as it wrote it: its two members and
    comment, nothing added (see :func:`tpslab.fileio.zip_as_written`)."""
    return zip_as_written(path, (PRED_VID, PRED_PART), SUBMISSION_ZIP_COMMENT)


def write_submission_zip(path, pred_vid: dict, pred_part: dict) -> Path:
    """Write the challenge zip: the two prediction files at its root, no folder (atomic). The same
    predictions always make the same bytes (members dated 1980-01-01, the zip format's first day), so a
    submission can be identified by its hash. An existing ``path`` is replaced only when it is a zip this
    function wrote (``FileExistsError`` otherwise, the file left untouched)."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not (path.is_file() and is_tpslab_submission_zip(path)):
        raise FileExistsError(f"{path}: exists and is not a submission zip written by tpslab; left untouched "
                              "(move it, or write to another name)")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.comment = SUBMISSION_ZIP_COMMENT
        for name, obj in ((PRED_VID, pred_vid), (PRED_PART, pred_part)):
            add_to_zip(z, name, _dumps(obj, name))
    atomic_write_bytes(path, buf.getvalue())
    return path


def _member_parts(name: str) -> tuple[str, ...] | None:
    """Path components of a zip member name, or None when it is unsafe (absolute, drive, ``..``)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return None
    parts = tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))
    if ".." in parts:
        return None
    return parts


def _read_bounded(f, limit: int, chunk: int = 1 << 20) -> bytearray:
    """At most ``limit + 1`` bytes of binary stream ``f``, read ``chunk`` bytes at a time.

    Memory stays within the bound whatever the stream holds: a result longer than ``limit`` means the
    stream holds more (the caller refuses it) and nothing past that was read."""
    data = bytearray()
    while len(data) <= limit:
        block = f.read(min(chunk, limit + 1 - len(data)))
        if not block:
            break
        data += block
    return data


def _folder_bytes(path: Path, max_bytes: int) -> tuple[list, list]:
    files = [path / name for name in (PRED_VID, PRED_PART)]
    for f in files:
        if not f.is_file():
            raise SubmissionError(f"{f} {_missing_or_not_a_file(f)} (expected {PRED_VID} and {PRED_PART} in {path})")
    total = sum(f.stat().st_size for f in files)
    if total > max_bytes:
        raise SubmissionError(f"{path}: the two files hold {total} bytes, more than {max_bytes} bytes "
                              "(raise max_bytes, --max-bytes in the commands, if the submission is real)")
    return [f.read_bytes() for f in files], [str(f) for f in files]


def _prediction_members(path: Path, infos: list) -> dict:
    """{file name: [(folder, member)]} of the two prediction files in the zip (other files ignored)."""
    unsafe = [i.filename for i in infos if _member_parts(i.filename) is None]
    if unsafe:
        raise SubmissionError(f"{path}: unsafe member names (absolute or with '..')",
                              [Problem(str(path), n, "unsafe name") for n in unsafe])
    found, cased = {}, []
    for info in infos:
        parts = _member_parts(info.filename)
        if info.is_dir() or not parts or parts[0] == "__MACOSX":
            continue
        if parts[-1] in (PRED_VID, PRED_PART):
            found.setdefault(parts[-1], []).append((parts[:-1], info))
        elif parts[-1].lower() in (PRED_VID, PRED_PART):
            cased.append(info.filename)
    for name in (PRED_VID, PRED_PART):
        if name not in found:
            raise SubmissionError(f"{path}: {name} not found in the zip")
    if cased:  # one file where names ignore case: unzipping keeps whichever comes last
        raise SubmissionError(f"{path}: holds {cased[0]} beside {PRED_VID} and {PRED_PART}: on macOS and Windows "
                              "names that differ only in case are one file, and unzipping keeps whichever comes "
                              "last; keep one of them")
    return found


def submission_zip_folder(path) -> str | None:
    """The folder inside a submission zip that holds its two files ("" at the zip's root; None when the
    zip cannot be read: reading it says why)."""
    try:
        with zipfile.ZipFile(path) as z:
            member = _zip_members(Path(path), z)[0]
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, SubmissionError):
        return None
    return "/".join(_member_parts(member.filename)[:-1])


def _the_folder(path: Path, found: dict) -> tuple:
    """The one folder (a tuple of names; () the root, at most one deep) that holds each of the two files
    once."""
    folders = {folder for entries in found.values() for folder, _ in entries}
    if len(folders) == 1:
        twice = next((n for n, entries in found.items() if len(entries) > 1), None)
        if twice:
            raise SubmissionError(f"{path}: holds {twice} {len(found[twice])} times in "
                                  f"{'/'.join(next(iter(folders))) or 'its root'}; keep one")
    else:
        raise SubmissionError(f"{path}: expected one {PRED_VID} and one {PRED_PART}, at the root or in one "
                              f"folder; found them in {sorted('/'.join(f) or '(root)' for f in folders)}")
    folder = next(iter(folders))
    if len(folder) > 1:
        raise SubmissionError(f"{path}: the files are nested {len(folder)} folders deep ({'/'.join(folder)}); "
                              "at most one folder is accepted")
    return folder


def _zip_members(path: Path, z: zipfile.ZipFile) -> list:
    """The two prediction files of the zip: at its root or in one folder, safe names, not encrypted."""
    found = _prediction_members(path, z.infolist())
    _the_folder(path, found)
    members = [found[n][0][1] for n in (PRED_VID, PRED_PART)]
    encrypted = [m.filename for m in members if m.flag_bits & 0x1]
    if encrypted:
        raise SubmissionError(f"{path}: {' and '.join(encrypted)} {'is' if len(encrypted) == 1 else 'are'} "
                              "encrypted (password-protected); zip the files without a password")
    return members


def _inflate(path: Path, z: zipfile.ZipFile, members: list, max_bytes: int, max_ratio) -> list:
    """The members' bytes, inflated in chunks within the size bound and the ratio bound."""
    declared = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members)
    limit = max_bytes if max_ratio is None else min(max_bytes, max(RATIO_FREE_BYTES, int(max_ratio * packed)))

    def too_big(inflated: int | None) -> SubmissionError:
        size = f"{inflated} bytes" if inflated is not None else f"more than {limit} bytes"
        if limit < max_bytes:  # the ratio was the tighter bound
            return SubmissionError(
                f"{path}: the two files inflate to {size} from {packed} compressed, over {max_ratio:g} times "
                "(JSON submissions deflate 2-6 times): refused as a zip bomb; if it is real, unzip it and "
                "pass the folder")
        return SubmissionError(f"{path}: the two files inflate to {size}, more than {max_bytes} bytes "
                               "(raise max_bytes, --max-bytes in the commands, if the submission is real)")

    if declared > limit:
        raise too_big(declared)
    out, budget = [], limit
    for name, member in zip((PRED_VID, PRED_PART), members):
        try:
            with z.open(member) as f:
                data = _read_bounded(f, budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise SubmissionError(f"{path}: cannot read {name} from the zip: {e}") from None
        if len(data) > budget:
            raise too_big(None)
        budget -= len(data)
        out.append(data)
    return out


def _submission_bytes(path, max_bytes: int, max_ratio) -> tuple[list, list]:
    """The two files' bytes and the names errors give them (see :func:`read_submission`)."""
    path = Path(path)
    max_bytes = int(max_bytes)
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if path.is_dir():
        return _folder_bytes(path, max_bytes)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, _dangling(path) or "no submission folder or zip here", str(path))
    if not zipfile.is_zipfile(path):
        raise SubmissionError(f"{path} is neither a folder nor a zip file")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise SubmissionError(f"{path}: not a readable zip file ({e})") from None
    with z:
        members = _zip_members(path, z)
        data = _inflate(path, z, members, max_bytes, max_ratio)
    return data, [f"{path}:{m.filename}" for m in members]  # as in the zip: sub/pred_part_result.json


def repeated_part_keys(data: bytes) -> list[str]:
    """Places of the keys held twice in the text of a part file (``pred_part_result.json`` or a detections
    file): videos, frames and their ``humans`` (:func:`tpslab.challenge.repeated_keys`), and inside the
    humans where the compiled reader reads the file (:func:`tpslab.challenge.repeated_in_part_file`)."""
    inside = repeated_in_part_file(data)  # all but the videos (None: the file was not looked at)
    # Where it was not, the frames and their humans too; a frame that is not an object (an error of its own):
    # down to the frames only.
    levels = (1,) if inside is not None else (3, 2, 1)
    return next((found for n in levels if (found := repeated_keys(data, n)) is not None), []) + (inside or [])


def file_warnings(path, max_bytes: int = MAX_SUBMISSION_BYTES,
                  max_ratio: float | None = MAX_INFLATE_RATIO) -> list[Problem]:
    """Warnings about a submission folder or zip as files, beyond what parsing them shows: keys held twice,
    of which JSON readers keep the last and drop the others without a word, and a zip whose files sit in a
    folder. Keys held twice: videos (both files), frames and their ``humans`` (``pred_part_result.json``,
    see :func:`tpslab.challenge.repeated_keys`); inside the humans (a part, or a ``box``, twice) where the
    compiled reader reads the file (:func:`tpslab.challenge.repeated_in_part_file`). Reads the files as
    :func:`read_submission` does."""
    data, names = _submission_bytes(path, max_bytes, max_ratio)
    places = [repeated_keys(data[0], 1) or [], repeated_part_keys(data[1])]
    out = [Problem(name, place, "appears more than once: JSON readers, the challenge's scorer included, keep the "
                                "last and drop the others", "warning")
           for name, found in zip(names, places) for place in found]
    folder = submission_zip_folder(path) if Path(path).is_file() else None
    if folder:
        out.append(Problem(str(path), "", f"the two files sit in the folder {folder}/ inside the zip: the challenge "
                                          "expects them at the zip's root (tpslab reads both)", "warning"))
    return out


def read_submission(path, max_bytes: int = MAX_SUBMISSION_BYTES,
                    max_ratio: float | None = MAX_INFLATE_RATIO) -> tuple[dict, dict]:
    """``(pred_vid, pred_part)`` from a submission folder or zip.

    A zip must hold ``pred_vid_result.json`` and ``pred_part_result.json`` at its root or inside one
    folder (``__MACOSX`` entries and other files are ignored). Absolute member names, drive letters and
    ``..`` are rejected, and so are encrypted members. The two files may not hold more than ``max_bytes``
    together (default :data:`MAX_SUBMISSION_BYTES`, the largest test-set submission the limits allow):
    checked on the sizes the zip declares, then on the bytes actually inflated, which are read in chunks
    and stop as soon as the bound is crossed, so a zip bomb costs at most ``max_bytes`` of memory.
    Beyond :data:`RATIO_FREE_BYTES` the files may also not inflate more than ``max_ratio`` times their
    compressed size (default :data:`MAX_INFLATE_RATIO`; ``None`` turns the check off): a 591 KB zip
    inflating to 600 MB is refused after 64 MiB, not parsed at 1.3 GB of memory. Nothing is extracted
    to disk. Each file must hold one JSON object; each comes back as a dict that keeps the name it was read
    under (:class:`tpslab.challenge.JsonObject`: ``sub.zip:pred_part_result.json``), which problems found
    in it then name.

    Raises :class:`SubmissionError` naming the file and the problem, ``FileNotFoundError`` when ``path``
    does not exist.
    """
    data, names = _submission_bytes(path, max_bytes, max_ratio)
    vid = _loads(data[0], names[0])
    return vid, _loads(data[1], names[1])


def open_submission(path, mode: str = "list", max_bytes: int = MAX_SUBMISSION_BYTES,
                    max_ratio: float | None = MAX_INFLATE_RATIO) -> tuple[dict, PartColumns]:
    """``(pred_vid, pred_part)`` like :func:`read_submission` (same checks and errors), the part file read
    straight into columns (decoded as ``mode`` writes it) for :func:`validate_submission` and the scorer."""
    data, names = _submission_bytes(path, max_bytes, max_ratio)
    vid = _loads(data[0], names[0])
    return vid, _part_columns(data[1], "pred_part_result", check_mode(mode), names[1])


def open_evaluation(gt_dir, pred, mode: str = "list", max_bytes: int = MAX_SUBMISSION_BYTES,
                    max_ratio: float | None = MAX_INFLATE_RATIO) -> tuple[tuple[dict, PartColumns],
                                                                          tuple[dict, PartColumns]]:
    """``(open_ground_truth(gt_dir), open_submission(pred, mode, ...))``, the two part files read at the same
    time. The compiled reader lets go of the GIL, so the ground truth's is read in a thread; msgspec's
    decode holds it, so without the compiled reader the ground truth's is decoded in a forked process
    (:func:`tpslab.memory.in_background`; where the platform cannot fork or one CPU is usable, one after
    the other). Same results, same errors, and the ground truth's first, as when read one after the other."""
    check_mode(mode)
    if compiled_reader() is None:
        gt_vid, gt_part = _opening_ground_truth(gt_dir, background=True)

        def ground_truth():
            return gt_vid, gt_part()
    else:
        from tpslab.memory import in_thread

        ground_truth = in_thread(open_ground_truth, gt_dir)
    try:
        submission = open_submission(pred, mode, max_bytes, max_ratio)
    except Exception:
        ground_truth()  # raises the ground truth's error, if it has one, before the submission's
        raise
    return ground_truth(), submission
