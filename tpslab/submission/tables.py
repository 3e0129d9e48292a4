"""Challenge files from tables: the evaluation ground truth of a loaded dataset, and the prediction
files from prediction tables (the long format of :mod:`tpslab.submission`)."""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from tpslab.challenge import GT_PART, GT_VID, MAX_HUMANS, MAX_PROPOSALS, check_mode, frame_key, is_scored
from tpslab.errors import Problem
from tpslab.memory import gc_paused
from tpslab.submission.files import SubmissionError, write_json_pair

_BOX_COLS = ("x1", "y1", "x2", "y2")

def _number(v):
    """A float that is an integer becomes an int (as annotations usually store pixels); floats stay floats."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2 ** 53 else f


def _box(values) -> list:
    return [_number(v) for v in values]


def _chosen_videos(vt, videos) -> list:
    """The videos to export (default: the train split), checked against the videos table."""
    labels = dict(zip(vt["video"].astype(str), vt["label"].astype(object)))
    if videos is None:
        return [v for v, s in zip(vt["video"].astype(str), vt["split"].astype(str)) if s == "train"]
    chosen = [str(v) for v in videos]
    unknown = [v for v in chosen if v not in labels]
    if unknown:
        raise SubmissionError(f"{len(unknown)} unknown video(s)",
                              [Problem("videos", v, "not in the dataset") for v in unknown])
    splits = dict(zip(vt["video"].astype(str), vt["split"].astype(str)))
    test = [v for v in chosen if splits[v] != "train"]
    if test:
        raise SubmissionError(f"{len(test)} video(s) of the test split have no released annotations",
                              [Problem("videos", v, "test split") for v in test])
    return list(dict.fromkeys(chosen))


def _gt_humans(gt_part: dict, humans) -> dict:
    """Every human of the scored frames as ``{"box": ..., "parts": {}}`` in its frame (file order);
    returns them by (video, frame, human)."""
    people = {}
    order = np.lexsort((humans["human"].to_numpy(), humans["frame"].to_numpy()))
    h = humans.iloc[order]
    for video, frame, human, *box in zip(h["video"].astype(str), h["frame"].astype(int), h["human"].astype(int),
                                         *(h[c].to_numpy(dtype=float) for c in _BOX_COLS)):
        person = {"box": _box(box), "parts": {}}
        people[(video, frame, human)] = person
        gt_part[video].setdefault(frame_key(frame), {"humans": []})["humans"].append(person)
    return people


def _gt_parts(people: dict, parts) -> None:
    """Each part into its human's ``parts`` (keyed by name, file order)."""
    duplicates = []
    cols = [parts[f"part_{c}"].to_numpy(dtype=float) for c in _BOX_COLS]
    for video, frame, human, name, state, *box in zip(parts["video"].astype(str), parts["frame"].astype(int),
                                                      parts["human"].astype(int), parts["part"].astype(str),
                                                      parts["state"].astype(str), *cols):
        person = people.get((video, frame, human))
        if person is None:
            raise SubmissionError("parts table refers to a human missing from the humans table",
                                  [Problem(GT_PART, f"{video}/{frame_key(frame)}/humans[{human}]", "no such human")])
        if name in person["parts"]:
            duplicates.append(Problem(GT_PART, f"{video}/{frame_key(frame)}/humans[{human}].parts.{name}",
                                      "part name repeated in one human"))
            continue
        person["parts"][name] = {"box": _box(box), "verb": state}
    if duplicates:
        raise SubmissionError(f"{len(duplicates)} repeated part name(s): the ground truth keys parts by name",
                              duplicates)


@gc_paused()  # builds or walks millions of small objects
def export_ground_truth(dataset, out=None, videos: Iterable[str] | None = None):
    """The evaluation ground truth of ``videos`` (default: every train-split video) of a loaded dataset.

    ``dataset`` is a :class:`tpslab.dataset.TPSDataset` (or any object with its ``videos``, ``frames``,
    ``humans`` and ``parts`` tables). Returns ``(gt_vid, gt_part)``: ``{video: label}`` and
    ``{video: {"img_00001.json": {"humans": [{"box": [...], "parts": {name: {"box": [...], "verb": s}}}]}}}``
    with the scored frames only (1, 6, 11, ...), in frame order, humans in file order, parts keyed by name
    in file order. Frames without humans and humans without parts are kept (both matter to the score).
    With ``out``, also writes ``gt_vid_result.json`` and ``gt_part_result.json`` into that folder.

    Raises :class:`SubmissionError` for unknown videos, test-split videos (no released annotations) and
    humans that repeat a part name (a dict keyed by name cannot hold both).
    """
    vt = dataset.videos
    chosen = _chosen_videos(vt, videos)
    keep = set(chosen)

    def rows(table):
        return table[table["video"].astype(str).isin(keep) & is_scored(table["frame"].to_numpy())]

    frames = rows(dataset.frames)
    gt_part = {v: {} for v in chosen}
    for video, frame in sorted(zip(frames["video"].astype(str), frames["frame"].astype(int)),
                               key=lambda x: (x[0], x[1])):
        gt_part[video][frame_key(frame)] = {"humans": []}
    _gt_parts(_gt_humans(gt_part, rows(dataset.humans)), rows(dataset.parts))
    labels = dict(zip(vt["video"].astype(str), vt["label"].astype(object)))
    gt_vid = {v: str(labels[v]) for v in chosen}
    if out is not None:
        write_json_pair(out, GT_VID, gt_vid, GT_PART, gt_part)
    return gt_vid, gt_part


def _label_pairs(videos):
    import pandas as pd

    if isinstance(videos, pd.DataFrame):
        col = "label" if "label" in videos.columns else "predicted" if "predicted" in videos.columns else None
        if "video" not in videos.columns or col is None:
            raise SubmissionError("the videos table needs columns 'video' and 'label' (or 'predicted')")
        return zip(videos["video"], videos[col])
    if isinstance(videos, (pd.Series, Mapping)):
        return videos.items()
    raise TypeError(f"videos must be a mapping, a Series or a DataFrame, got {type(videos).__name__}")


def _video_labels(videos) -> dict:
    import pandas as pd

    out, bad = {}, []
    for video, label in _label_pairs(videos):
        if isinstance(label, (list, dict, tuple)) or pd.isna(label):
            bad.append(Problem("videos", str(video), f"no predicted label ({label!r})"))
        elif str(video) in out and out[str(video)] != str(label):
            bad.append(Problem("videos", str(video), "two different labels"))
        else:
            out[str(video)] = str(label)
    if bad:
        raise SubmissionError(f"{len(bad)} bad video label(s)", bad)
    return out


class _TableBuilder:
    """The prediction structures from the long table, collecting every problem on the way."""

    NEED = ["video", "frame", "human", *(f"human_{c}" for c in _BOX_COLS), "part",
            *(f"part_{c}" for c in _BOX_COLS), "state"]

    def __init__(self, parts, pred_vid: dict, mode: str):
        missing = [c for c in self.NEED if c not in parts.columns]
        if missing:
            raise SubmissionError(f"the parts table lacks columns {missing}")
        t = parts.reset_index(drop=True)
        if "proposal" in t.columns:
            t = t.iloc[np.argsort(t["proposal"].to_numpy(), kind="stable")]
        self.t = t.sort_values(["video", "frame", "human"], kind="stable")
        self.pred_vid, self.mode = pred_vid, mode
        self.problems = []
        self.pred_part = {v: {} for v in pred_vid}

    def where(self, i: int) -> str:
        row = self.t.iloc[i]
        return f"{row['video']}/{frame_key(row['frame'])}/human {row['human']}"

    def check_values(self) -> None:
        """Boxes that are not 4 finite numbers, parts without a state, videos without a label."""
        t = self.t
        self.hbox = t[[f"human_{c}" for c in _BOX_COLS]].to_numpy(dtype=float)
        self.has_part = t["part"].notna().to_numpy()
        self.pbox = t[[f"part_{c}" for c in _BOX_COLS]].to_numpy(dtype=float)
        for i in np.nonzero(~np.isfinite(self.hbox).all(axis=1))[0]:
            self.problems.append(Problem("parts table", self.where(i), "human box is not 4 finite numbers"))
        for i in np.nonzero(self.has_part & ~np.isfinite(self.pbox).all(axis=1))[0]:
            self.problems.append(Problem("parts table", f"{self.where(i)} part {t['part'].iloc[i]}",
                                         "part box is not 4 finite numbers"))
        for i in np.nonzero(self.has_part & t["state"].isna().to_numpy())[0]:
            self.problems.append(Problem("parts table", f"{self.where(i)} part {t['part'].iloc[i]}", "no state"))
        for v in sorted(set(t["video"].astype(str)) - set(self.pred_vid)):
            self.problems.append(Problem("parts table", v, "video has parts but no predicted label"))

    def add_rows(self) -> None:
        t, humans_seen = self.t, {}
        for i, (video, frame, human, part, state) in enumerate(zip(t["video"].astype(str), t["frame"].astype(int),
                                                                  t["human"], t["part"], t["state"])):
            frame_dict = self.pred_part.setdefault(video, {}).setdefault(frame_key(frame), {"humans": []})
            person = humans_seen.get((video, frame, human))
            box = _box(self.hbox[i])
            if person is None:
                person = humans_seen[(video, frame, human)] = {"box": box, "parts": {}}
                frame_dict["humans"].append(person)
            elif person["box"] != box:
                self.problems.append(Problem("parts table", self.where(i),
                                             f"human box {box} differs from {person['box']}"))
            if self.has_part[i]:
                self.add_part(i, person["parts"], part, _box(self.pbox[i]), str(state))

    def add_part(self, i: int, parts: dict, name, box: list, state: str) -> None:
        entry = parts.get(name)
        if self.mode == "single":
            if entry is not None:
                self.problems.append(Problem("parts table", f"{self.where(i)} part {name}",
                                             "more than one row in mode 'single'"))
            else:
                parts[name] = {"box": box, "verb": state}
            return
        if entry is None:
            entry = parts[name] = {"box": [], "verb": []}
        entry["box"].append(box)
        entry["verb"].append(state)

    def check_limits(self) -> None:
        for video, frames_of in self.pred_part.items():
            for key, fr in frames_of.items():
                if len(fr["humans"]) > MAX_HUMANS:
                    self.problems.append(Problem("parts table", f"{video}/{key}",
                                                 f"{len(fr['humans'])} humans, at most {MAX_HUMANS} allowed"))
                for h, person in enumerate(fr["humans"] if self.mode == "list" else ()):
                    for name, entry in person["parts"].items():
                        if len(entry["verb"]) > MAX_PROPOSALS:
                            self.problems.append(Problem(
                                "parts table", f"{video}/{key}/humans[{h}].parts.{name}",
                                f"{len(entry['verb'])} proposals, at most {MAX_PROPOSALS}"))

    def add_frames(self, frames) -> None:
        import pandas as pd

        pairs = zip(frames["video"], frames["frame"]) if isinstance(frames, pd.DataFrame) else frames
        for video, frame in pairs:
            if str(video) not in self.pred_vid:
                self.problems.append(Problem("frames", str(video), "video has frames but no predicted label"))
                continue
            self.pred_part[str(video)].setdefault(frame_key(frame), {"humans": []})


@gc_paused()  # builds or walks millions of small objects
def build_predictions(parts, videos, frames=None, mode: str = "list"):
    """``(pred_vid, pred_part)`` from prediction tables (see the module docstring for the long format).

    ``mode="list"`` writes every part as ``{"box": [b, ...], "verb": [s, ...]}`` (proposals in ``proposal``
    order, at most 5); ``mode="single"`` writes ``{"box": b, "verb": s}`` and allows one row per part.
    ``frames``: (video, frame) pairs (a DataFrame with those columns or an iterable of pairs) to write even
    without predicted humans. It matters: a ground-truth frame absent from the prediction scores 0, and a
    ground-truth frame whose humans have no annotated parts is dropped from the score only when the
    prediction contains it. Videos of ``videos`` without rows get an empty ``{}``.

    Raises :class:`SubmissionError` listing every problem: missing columns, a human whose box differs
    between rows, non-finite boxes, too many humans in a frame (over 10) or proposals for a part (over 5),
    repeated parts in ``single`` mode.
    """
    check_mode(mode)
    builder = _TableBuilder(parts, _video_labels(videos), mode)
    builder.check_values()
    builder.add_rows()
    builder.check_limits()
    if frames is not None:
        builder.add_frames(frames)
    if builder.problems:
        raise SubmissionError(f"{len(builder.problems)} problem(s) in the prediction tables", builder.problems)
    pred_part = builder.pred_part
    for video, frames_of in pred_part.items():
        pred_part[video] = dict(sorted(frames_of.items()))
    return builder.pred_vid, pred_part
