"""The release's folder layout, once: where classes, videos, annotations and lists live, and which
entries of a folder are data.

```
ROOT/train_videos/<class>/<video>.mp4      ROOT/test_videos/<class>/<video>.mp4
ROOT/train_annotations/<class>/<video>/<video>/img_00001.json ...
ROOT/list/body_part.txt, part_stat.txt, object.txt, video_train_flist.csv, video_test_flist.csv
```

Only data entries count: hidden entries (``.ipynb_checkpoints`` made by JupyterLab, ``.DS_Store``,
``._x.mp4`` resource forks, tpslab's own ``.tpslab`` cache) and ``__MACOSX`` (left by unzipping on a Mac)
are never classes, videos or frames. :func:`scan` reports every entry it leaves out, so that a folder
that is skipped is never skipped silently, and :func:`check_release_root` refuses a folder that is not
a release before anything is read from it or written into it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from tpslab.errors import NotAReleaseError, Problem

VIDEO_TOPS = {"train": "train_videos", "test": "test_videos"}
ANNOTATION_TOP = "train_annotations"
CLASS_TOPS = (*VIDEO_TOPS.values(), ANNOTATION_TOP)
LIST_DIR = "list"
FLIST_FILES = {"train": f"{LIST_DIR}/video_train_flist.csv", "test": f"{LIST_DIR}/video_test_flist.csv"}
#: tpslab's own cache folder beside the data (hidden, so never read as data).
CACHE_DIR = ".tpslab"


def rawframes_folder(split: str, label: str, video: str) -> PurePosixPath:
    """A video's folder of extracted frames relative to the frames root, as ``tpslab extract-frames``
    writes it (mmaction2's rawframes layout): ``<split>/<class>/<video>/img_00001.jpg ...``."""
    return PurePosixPath(str(split), str(label), str(video))


def is_data_name(name: str) -> bool:
    """Whether a folder entry may be data: not hidden (``.name``) and not ``__MACOSX``."""
    return not name.startswith(".") and name != "__MACOSX"


def _unreadable(path: str, err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links); ignored"
    if os.path.islink(path) and err.errno == errno.ENOENT:
        return f"broken symbolic link to {os.readlink(path)!r}; ignored"
    return f"cannot read it ({err.strerror or err}); ignored"


def scan(folder, kind: str, problems: list | None = None, what: str = "entry") -> list[os.DirEntry]:
    """The data entries of ``folder`` that are folders (``kind="dir"``) or files (``"file"``), by name.

    Symbolic links are followed. Hidden and system entries are left out with a warning naming them
    (``what`` says what they would have been, e.g. "class folder"); broken links, link loops and
    unreadable entries are left out with an error. Problems go to ``problems`` when given.
    """
    if kind not in ("dir", "file"):
        raise ValueError(f"kind must be 'dir' or 'file', got {kind!r}")
    report = problems if problems is not None else []
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as err:
        report.append(Problem(str(folder), "", f"cannot list the folder ({err.strerror or err})"))
        return []
    found = []
    for entry in entries:
        try:
            mode = os.stat(entry.path).st_mode  # follows links: a loop or a dangling link raises
        except OSError as err:
            if is_data_name(entry.name):
                report.append(Problem(entry.path, "", _unreadable(entry.path, err)))
            continue
        is_dir = stat.S_ISDIR(mode)
        if (kind == "dir") != is_dir:
            continue
        if not is_data_name(entry.name):
            if is_dir:
                report.append(Problem(entry.path, "", f"hidden or system folder, not a {what}; ignored", "warning"))
            continue
        found.append(entry)
    return found


def class_folder_names(root) -> list[str]:
    """Names of the class folders under ``train_videos/``, ``test_videos/`` and ``train_annotations/``."""
    names = set()
    for top in CLASS_TOPS:
        path = Path(root) / top
        if path.is_dir():
            names.update(e.name for e in scan(path, "dir"))
    return sorted(names)


def check_release_root(root) -> Path:
    """``root`` as a Path when it looks like a release: at least one class folder under one of
    ``train_videos/``, ``test_videos/``, ``train_annotations/``. Else :class:`NotAReleaseError`."""
    root = Path(root)
    if not root.is_dir():
        raise NotAReleaseError(f"Kinetics-TPS root {root} is not a folder")
    if class_folder_names(root):
        return root
    tops = [t for t in CLASS_TOPS if (root / t).is_dir()]
    found = f"found {', '.join(t + '/' for t in tops)} without class folders" if tops else \
        f"no {', '.join(t + '/' for t in CLASS_TOPS)}"
    lists = " (a list/ folder alone is not a release)" if (root / LIST_DIR).is_dir() else ""
    raise NotAReleaseError(f"{root} is not a Kinetics-TPS release: {found}{lists}. Point tpslab at the "
                           "folder that holds train_videos/, test_videos/, train_annotations/ and list/")
