"""Writing files and folders so that a crash or an interrupt never leaves a half-written one in place.

Written files and folders get the permissions the user's umask gives (as ``open(path, "w")`` and
``mkdir`` would), and problems with the target folder raise an ``OSError`` that names the folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path


def need_folder(path, missing: str = "no such folder") -> Path:
    """``path`` when it is a folder; else an OSError whose ``filename`` is ``path``: NotADirectoryError when
    something else stands there, FileNotFoundError (saying ``missing``) when nothing does."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.exists():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(path))
    raise FileNotFoundError(errno.ENOENT, missing, str(path))


def _folder_for(path: Path) -> Path:
    """The folder ``path`` goes into, created when missing; an OSError naming it when it cannot be."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(folder)) from None
    except NotADirectoryError:
        above = next((p for p in folder.parents if p.exists()), folder)
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(above)) from None
    return folder


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, else removed.

    ``with atomic_path(out) as tmp: torch.save(obj, tmp)`` writes ``out`` whole or not at all. The
    temporary file is created with mode 0666 less the umask, as a plain ``open(path, "w")`` creates
    files (``tempfile.mkstemp`` would make them 0600, readable by the owner only). Missing folders are
    created; a folder that is a file, or one this process may not write into, raises an ``OSError``
    whose ``filename`` is that folder.
    """
    path = Path(path)
    folder = _folder_for(path)
    while True:
        tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise type(e)(e.errno, f"cannot create a file in this folder ({e.strerror})", str(folder)) from None
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)



@contextmanager
def atomic_folder(path, *, prefix: str | None = None, replace: bool = False):
    """Yield a new hidden folder beside ``path``; on success it is renamed onto ``path``, else removed.

    ``with atomic_folder(out) as tmp: fill(tmp)`` makes ``out`` whole or not at all. The temporary
    folder is named ``prefix`` (default ``.<name>.partial-<pid>-``) and 8 random hex digits, so that a
    later run can find a killed run's leftovers by the prefix. It is created as ``mkdir`` creates
    folders (mode 0777 less the umask), the folder above ``path`` too when missing. When the block
    ends, ``path`` must be missing or an empty folder: an empty folder is removed first (an ``OSError``
    if another process filled it meanwhile), and a ``FileExistsError`` says that another process made
    ``path`` meanwhile. With ``replace``, whatever stands at ``path`` is removed first instead. A folder
    above ``path`` that is a file, or one this process may not write into, raises an ``OSError`` whose
    ``filename`` is that folder.
    """
    path = Path(path)
    folder = _folder_for(path)
    prefix = f".{path.name}.partial-{os.getpid()}-" if prefix is None else prefix
    while True:
        tmp = folder / f"{prefix}{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            break
        except FileExistsError:
            continue
        except OSError as e:  # named after the folder the user can act on, not the hidden name chosen in it
            raise type(e)(e.errno, f"cannot create a folder in this folder ({e.strerror})", str(folder)) from None
    try:
        yield tmp
        if replace and path.exists():
            shutil.rmtree(path)
        elif path.is_dir():
            path.rmdir()  # fails if someone filled it meanwhile
        try:
            os.replace(tmp, path)
        except OSError as e:
            if not replace and e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(f"{path} was created by another process meanwhile") from e
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: What :func:`add_to_zip` gives every member (and :func:`zip_as_written` checks): dated 1980-01-01, readable
#: by all, no extra field, no comment.
_ZIP_ATTRIBUTES = {"date_time": (1980, 1, 1, 0, 0, 0), "external_attr": 0o644 << 16, "extra": b"", "comment": b""}


def add_to_zip(z, name: str, data: bytes) -> None:
    """Add ``data`` to the open zip ``z`` as member ``name``, deflated, dated 1980-01-01 (the zip format's
    first day) and readable by all: the same members make the same bytes, on any day and machine."""
    import zipfile

    info = zipfile.ZipInfo(name, date_time=_ZIP_ATTRIBUTES["date_time"])
    info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, _ZIP_ATTRIBUTES["external_attr"]
    z.writestr(info, data)


def zip_as_written(path, names, comment: bytes) -> bool:
    """Whether the file at ``path`` is a zip of exactly the members ``names``, in that order, each as
    :func:`add_to_zip` writes it, with ``comment``, and nothing before, between or after them: a zip
    tpslab wrote and nobody added to. (The comment alone can be copied onto any zip.)"""
    import struct
    import zipfile

    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as z, open(path, "rb") as f:
            infos = z.infolist()
            if z.comment != comment or [i.filename for i in infos] != list(names):
                return False
            offset, central = 0, 0
            for info in infos:
                if (info.header_offset != offset or info.compress_type != zipfile.ZIP_DEFLATED
                        or info.flag_bits & 0x08 or any(getattr(info, k) != v for k, v in _ZIP_ATTRIBUTES.items())):
                    return False
                f.seek(offset)
                header = f.read(30)  # the local header: its name and extra lengths are its last two fields
                if len(header) != 30 or header[:4] != b"PK\x03\x04":
                    return False
                name_len, extra_len = struct.unpack("<HH", header[26:30])
                offset += 30 + name_len + extra_len + info.compress_size
                central += 46 + len(info.filename.encode("utf-8")) + len(info.extra) + len(info.comment)
            return z.start_dir == offset and size == offset + central + 22 + len(comment)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, struct.error):
        return False


# -- files tpslab wrote into a folder it shares with the user ----------------------------------------------
# A hidden record in the folder keeps the SHA-256 of each file as written, so that a later run replaces only
# files that tpslab wrote and nobody changed since, and refuses (FileExistsError, one line) any other.


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_written_record(folder, record: str, tool: str) -> dict[str, list[str]]:
    """{file name: digests} from ``folder``'s record written by ``tool`` (empty when there is none)."""
    try:
        data = json.loads((Path(folder) / record).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("tool") == tool else None
    if not isinstance(files, dict):
        return {}
    # a digest, or while a run replaces the files, the old and the new digest
    return {k: [v] if isinstance(v, str) else v for k, v in files.items()
            if isinstance(k, str) and (isinstance(v, str) or (isinstance(v, list)
                                                              and all(isinstance(d, str) for d in v)))}


def check_written(folder, names, record: str, tool: str, new: dict[str, bytes] | None = None) -> None:
    """Refuse (``FileExistsError``) a file of ``names`` in ``folder`` that ``tool`` did not write there, or
    that changed since; one that already holds exactly its ``new`` bytes is no loss and passes."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    written = read_written_record(folder, record, tool)
    for name in names:
        f = folder / name
        if not f.exists() and not f.is_symlink():
            continue
        if f.is_file() and not f.is_symlink():
            digest = file_digest(f)
            if digest in written.get(name, ()) or (new is not None and name in new
                                                   and digest == hashlib.sha256(new[name]).hexdigest()):
                continue
        why = "was not written by tpslab" if name not in written else "was changed since tpslab wrote it"
        raise FileExistsError(f"{f}: exists and {why}; left untouched (move it, or write to another folder)")


def write_with_record(folder, data: dict[str, bytes], record: str, tool: str, managed=()) -> None:
    """Write ``data`` ({file name: bytes}) into ``folder`` atomically, with the record of what was written
    (call :func:`check_written` first). Files of ``managed`` that an earlier run wrote and this one does
    not are removed when unchanged since."""
    folder = Path(folder)
    digests = {name: hashlib.sha256(d).hexdigest() for name, d in data.items()}
    previous = read_written_record(folder, record, tool)

    def write_record(files):
        atomic_write_bytes(folder / record, json.dumps({"tool": tool, "files": files}, indent=1).encode())

    # first claim the new contents beside the old ones, so that an interrupted run is resumed, not refused
    write_record({**previous, **{k: previous.get(k, []) + [d] for k, d in digests.items()}})
    for name, d in data.items():
        atomic_write_bytes(folder / name, d)
    for name, old in previous.items():
        f = folder / name
        if name not in digests and name in managed and f.is_file() and file_digest(f) in old:
            f.unlink()
    write_record(digests)
