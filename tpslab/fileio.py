"""Writing files and folders so that a crash or an interrupt never leaves a half-written one in place.

Written files and folders get the permissions the user's umask gives (as ``open(path, "w")`` and
``mkdir`` would), and problems with the target folder raise an ``OSError`` that names the folder.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path


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
    ``path`` meanwhile. With ``replace``, whatever stands at ``path`` is removed first instead.
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
