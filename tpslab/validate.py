"""Dataset-wide checks of a release -> a report of every problem, each naming its file.

Errors: annotation files that do not parse or break the format (see :mod:`tpslab.annotations`),
names missing from the list files, duplicate parts, annotations without a video and videos without
annotations or without a frame count, frames beyond the flist count, 0-based frame names, a video
filed under two classes or both splits, two files for one frame or one video, list files and flists
that cannot be read as they are (empty, repeated names, short rows, bad counts, bytes that are not
UTF-8), broken symbolic links and link loops. Warnings: boxes outside the image, a person annotated twice
in a frame (the same box), stray files, hidden
and system folders that are not classes (``.ipynb_checkpoints``, ``__MACOSX``), a video listed twice
with the same count. A folder that is not a release is refused (:class:`tpslab.errors.NotAReleaseError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tpslab.dataset import TPSDataset, load_dataset
from tpslab.layout import FLIST_FILES
from tpslab.errors import Problem

BOX_TABLES = {  # table -> (prefix of its box columns, what the box is)
    "humans": ("", "human box"),
    "parts": ("part_", "part box"),
    "objects": ("object_", "object box"),
}


@dataclass
class Report:
    """Problems found in a release, errors first."""

    root: Path
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    def __bool__(self) -> bool:  # truthy when clean
        return not self.errors

    def summary(self) -> str:
        if not self.problems:
            return f"{self.root}: no problems"
        return f"{self.root}: {len(self.errors)} errors, {len(self.warnings)} warnings"

    def __str__(self) -> str:
        return "\n".join([str(p) for p in self.problems] + [self.summary()])


def _frame_size(path: str) -> tuple[int, int] | str:
    """(width, height) of a video's frames, or why the file cannot be read."""
    from tpslab.video import VideoError, probe

    try:
        info = probe(path)
    except VideoError as err:
        return err.reason
    return info.width, info.height


def _annotation_file(ds: TPSDataset, video: str, frame: int) -> str:
    return str(ds.annotation_path(video, frame))


def check_videos_and_frames(ds: TPSDataset) -> list[Problem]:
    """Cross-checks of annotation folders, video files, flist counts and frame numbers."""
    problems = []
    v = ds.videos
    lists = {s: str(ds.root / f) for s, f in FLIST_FILES.items()}
    with_folder = {d.video for d in ds.index.dirs} if ds.index is not None else set()
    for row in v.itertuples(index=False):
        where = row.path if isinstance(row.path, str) else lists[row.split]
        if row.split == "train" and row.num_annotated_frames > 0 and not isinstance(row.path, str):
            problems.append(Problem(str(ds.annotation_path(row.video, 1).parent), "",
                                    f"annotations of {row.video} have no video file in train_videos/{row.label}/"))
        if row.split == "train" and row.num_annotated_frames == 0 and isinstance(row.path, str):
            what = "no readable annotation file" if row.video in with_folder else "no annotation folder"
            problems.append(Problem(row.path, "", f"train video {row.video} has {what}"))
        if pd.isna(row.num_frames):
            problems.append(Problem(lists[row.split], "", f"video {row.video} has no frame count in the flist "
                                                          "(missing, or its rows are unusable)"))
        elif not isinstance(row.path, str) and row.num_annotated_frames == 0:
            problems.append(Problem(where, "", f"flist entry {row.video} has no video file"))
    counts = v.set_index("video")["num_frames"]
    f = ds.frames
    if len(f):
        n = f["video"].astype(str).map(counts)
        beyond = f[n.notna().to_numpy() & (f["frame"].to_numpy() > n.fillna(0).to_numpy())]
        for r in beyond.itertuples(index=False):
            problems.append(Problem(_annotation_file(ds, r.video, r.frame), "",
                                    f"frame {r.frame} is beyond the video's {counts[r.video]} frames (flist)"))
        zero = f[f["frame"] == 0]
        for video in zero["video"].astype(str).unique():
            problems.append(Problem(_annotation_file(ds, video, 0), "",
                                    "0-based frame name: the release numbers frames from img_00001 "
                                    "(img_00001.json is decoded frame 0)"))
    return problems


def check_boxes_inside(ds: TPSDataset, sizes: dict[str, tuple[int, int]]) -> list[Problem]:
    """Warnings for human, part and object boxes reaching outside the video frame."""
    problems = []
    wh = pd.DataFrame.from_dict(sizes, orient="index", columns=["W", "H"])
    tables = {"humans": ds.humans, "parts": ds.parts, "objects": ds.parts[ds.parts["object"].notna()]}
    for name, (prefix, what) in BOX_TABLES.items():
        t = tables[name]
        if t.empty:
            continue
        size = wh.reindex(t["video"].astype(str))
        W, H = size["W"].to_numpy(float), size["H"].to_numpy(float)
        x1, y1, x2, y2 = (t[prefix + c].to_numpy() for c in ("x1", "y1", "x2", "y2"))
        bad = (x1 < 0) | (y1 < 0) | (x2 > W - 1) | (y2 > H - 1)  # inclusive pixel corners; NaN: unknown size
        for i in np.flatnonzero(bad):
            r = t.iloc[i]
            problems.append(Problem(
                _annotation_file(ds, r["video"], r["frame"]), f"humans[{r['human']}]" +
                ("" if name == "humans" else f" {r['part']}"),
                f"{what} [{x1[i]:g}, {y1[i]:g}, {x2[i]:g}, {y2[i]:g}] reaches outside the "
                f"{int(W[i])}x{int(H[i])} image", "warning"))
    return problems


def check_repeated_humans(ds: TPSDataset) -> list[Problem]:
    """Warnings for a person whose box repeats an earlier person's in the same frame (two people never
    share a box to the pixel: a copy, which the score counts as a person no prediction can match)."""
    h = ds.humans
    same = ["video", "frame", "x1", "y1", "x2", "y2"]
    repeated = h.duplicated(same).to_numpy()
    if not repeated.any():
        return []
    first = h.groupby(same, observed=True, sort=False, dropna=False)["human"].transform("first").to_numpy()
    return [Problem(_annotation_file(ds, r.video, r.frame), f"humans[{r.human}]",
                    f"the same box [{r.x1:g}, {r.y1:g}, {r.x2:g}, {r.y2:g}] as humans[{int(f)}]: one person "
                    "annotated twice?", "warning")
            for r, f in zip(h[repeated].itertuples(index=False), first[repeated])]


def validate(root=None, *, probe_videos: bool = True, progress: bool = True) -> Report:
    """Check a release; returns a :class:`Report` (``bool(report)`` is True when there are no errors).

    ``probe_videos`` reads each annotated video's header for its frame size, to check boxes against the
    image; an annotated video whose header cannot be read is an error (``tpslab check-videos`` decodes).
    """
    from tqdm.auto import tqdm

    ds = load_dataset(root, strict=False, progress=progress)
    problems = list(ds.problems) + check_videos_and_frames(ds) + check_repeated_humans(ds)
    if probe_videos:
        annotated = ds.videos[(ds.videos["num_annotated_frames"] > 0) & ds.videos["path"].notna()]
        sizes = {}
        for video, path in tqdm(list(zip(annotated["video"], annotated["path"])), desc="reading video headers",
                                unit="video", disable=not progress, leave=False):
            size = _frame_size(path)
            if isinstance(size, str):
                problems.append(Problem(path, "", f"cannot read the video ({size}), so its boxes are not checked "
                                                  "against the frame size; `tpslab check-videos` checks every file"))
            else:
                sizes[video] = size
        problems += check_boxes_inside(ds, sizes)
    problems.sort(key=lambda p: (p.severity != "error", p.path, p.field))
    return Report(ds.root, problems)
