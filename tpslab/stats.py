"""Dataset statistics as plain pandas tables: what :mod:`tpslab.viz` draws and the tutorials check.

Every function takes the tables of :class:`tpslab.dataset.TPSDataset` (``videos``, ``frames``,
``humans``, ``parts``, or a slice of them) and returns a small DataFrame or Series; nothing here
plots, decodes video or reads files.

- :func:`videos_per_class`, :func:`humans_per_frame`, :func:`parts_per_human`: how much there is;
- :func:`missing_parts`: how often each body part is absent from an annotated human;
- :func:`state_counts`, :func:`state_by_action`, :func:`object_counts`: what the labels say;
- :func:`state_timeline`: the part states of one human slot of one video, frame by frame;
- :func:`box_jitter`: how much part boxes jump between consecutive annotated frames.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from tpslab.vocab import name_codes

_PART_BOX = ["part_x1", "part_y1", "part_x2", "part_y2"]
_HUMAN_BOX = ["human_x1", "human_y1", "human_x2", "human_y2"]


def category_names(series: pd.Series, names: Sequence[str] | None = None) -> list[str]:
    """``names`` if given, else the categories of a categorical column, else its sorted values."""
    if names is not None:
        return list(names)
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [str(c) for c in series.cat.categories]
    return sorted(str(v) for v in series.dropna().unique())


def videos_per_class(videos: pd.DataFrame) -> pd.DataFrame:
    """Videos per class and split: index ``label``, one column per split and ``total``.

    Rows are sorted by ``total`` (largest first), ties by name; every category of ``label`` is a row.
    """
    labels = category_names(videos["label"], None)
    splits = category_names(videos["split"], None)
    table = pd.crosstab(videos["label"].astype(str), videos["split"].astype(str))
    table = table.reindex(index=labels, columns=splits, fill_value=0)
    table["total"] = table.sum(axis=1)
    table.index.name, table.columns.name = "label", None
    order = sorted(labels, key=lambda lab: (-table.at[lab, "total"], lab))
    return table.loc[order].astype(np.int64)


def _count_values(values: pd.Series, upto: int) -> pd.Series:
    """Counts of the integers 0..max(upto, largest value) (absent ones count 0)."""
    values = values.to_numpy(np.int64)
    size = max(int(values.max()) + 1 if len(values) else 0, upto + 1)
    return pd.Series(np.bincount(values, minlength=size), index=pd.RangeIndex(size))


def humans_per_frame(frames: pd.DataFrame) -> pd.Series:
    """Annotated frames by number of humans: index 0..max, value the number of frames."""
    out = _count_values(frames["num_humans"], 0)
    out.index.name, out.name = "humans", "frames"
    return out


def parts_per_human(humans: pd.DataFrame, n_parts: int = 10) -> pd.Series:
    """Annotated humans by number of parts: index 0..max(n_parts, largest), value the number of humans."""
    out = _count_values(humans["num_parts"], n_parts)
    out.index.name, out.name = "parts", "humans"
    return out


def missing_parts(parts: pd.DataFrame, humans: pd.DataFrame, part_names: Sequence[str] | None = None
                  ) -> pd.DataFrame:
    """How often each body part is missing from an annotated human.

    Columns ``part, present, missing, missing_share`` (one row per part name, in vocabulary order):
    ``present`` counts the humans that have the part (a part listed twice for one human counts once),
    ``missing = len(humans) - present``.
    """
    names = category_names(parts["part"], part_names)
    keys = pd.DataFrame({"video": name_codes(parts["video"], category_names(parts["video"])),
                         "frame": parts["frame"].to_numpy(), "human": parts["human"].to_numpy(),
                         "part": name_codes(parts["part"], names)}).drop_duplicates()
    part = keys["part"].to_numpy()
    present = np.bincount(part[part >= 0], minlength=len(names)).astype(np.int64)
    total = len(humans)
    missing = total - present
    share = missing / total if total else np.zeros(len(names))
    return pd.DataFrame({"part": names, "present": present, "missing": missing, "missing_share": share})


def state_counts(parts: pd.DataFrame, part_names: Sequence[str] | None = None, *,
                 normalize: bool = False) -> pd.DataFrame:
    """Part x state annotation counts (rows: parts in vocabulary order; columns: the states that occur,
    most frequent first, ties by name). ``normalize`` divides each row by its sum (a part's state
    distribution; a part never annotated stays all zeros)."""
    names = category_names(parts["part"], part_names)
    states = category_names(parts["state"])
    p, st = name_codes(parts["part"], names), name_codes(parts["state"], states)
    ok = (p >= 0) & (st >= 0)
    counts = np.bincount(p[ok] * len(states) + st[ok], minlength=len(names) * len(states))
    counts = counts.reshape(len(names), len(states)).astype(np.int64)
    totals = counts.sum(axis=0)
    order = sorted(np.flatnonzero(totals), key=lambda j: (-totals[j], states[j]))
    table = pd.DataFrame(counts[:, order], index=names, columns=[states[j] for j in order])
    if normalize:
        rows = table.sum(axis=1).to_numpy(np.float64)[:, None]
        table = pd.DataFrame(np.divide(table.to_numpy(np.float64), rows, out=np.zeros(table.shape), where=rows > 0),
                             index=table.index, columns=table.columns)
    table.index.name, table.columns.name = "part", "state"
    return table


def state_by_action(parts: pd.DataFrame, videos: pd.DataFrame, *, top: int | None = 30,
                    min_count: int = 1) -> pd.DataFrame:
    """P(state | part, action): rows ``part:state``, columns the actions (sorted), values in [0, 1].

    Each (action, part) column block sums to 1 over the part's states. With ``top``, only the ``top``
    rows that vary most across actions (standard deviation, ties by name) are kept, most varying
    first: the part states that tell actions apart. Rows seen fewer than ``min_count`` times are dropped.
    """
    label_of = dict(zip(videos["video"].astype(str), videos["label"].astype(str)))
    video_names = category_names(parts["video"])
    actions = sorted(set(label_of.values()))
    action_id = {a: i for i, a in enumerate(actions)}
    per_video = np.array([action_id.get(label_of.get(v), -1) for v in video_names] + [-1], np.int64)
    video = name_codes(parts["video"], video_names)
    action = per_video[video]
    if (action < 0).any():
        unknown = sorted({video_names[v] for v in np.unique(video[action < 0]) if v >= 0})[:5]
        raise KeyError(f"parts of videos missing from the videos table: {unknown}")
    part_names, states = category_names(parts["part"]), category_names(parts["state"])
    p, st = name_codes(parts["part"], part_names), name_codes(parts["state"], states)
    ok = (p >= 0) & (st >= 0)
    shape = (len(part_names), len(states), len(actions))
    flat = (p[ok] * shape[1] + st[ok]) * shape[2] + action[ok]
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape).astype(np.float64)
    per_part = counts.sum(axis=1, keepdims=True)  # (part, 1, action)
    share = np.divide(counts, per_part, out=np.zeros(shape), where=per_part > 0)
    seen = counts.sum(axis=2)
    rows = np.argwhere((seen > 0) & (seen >= min_count))  # (part, state) pairs, in vocabulary order
    used = np.flatnonzero(counts.sum(axis=(0, 1)) > 0)  # actions that have parts
    order = sorted(used, key=lambda a: actions[a])
    table = pd.DataFrame(share[rows[:, 0], rows[:, 1]][:, order],
                         index=[f"{part_names[i]}:{states[j]}" for i, j in rows],
                         columns=[actions[a] for a in order])
    if top is not None:
        spread = table.std(axis=1, ddof=0)
        order = sorted(table.index, key=lambda r: (-spread[r], r))[:top]
        table = table.loc[order]
    table.index.name, table.columns.name = "part:state", "action"
    return table


def object_counts(parts: pd.DataFrame, *, top: int | None = None) -> pd.Series:
    """Part annotations per object label (``none``, an object outside the vocabulary, included; rows
    without an object excluded), most frequent first, ties by name; ``top`` keeps the first ``top``."""
    objects = parts["object"].dropna().astype(str)
    counts = objects.value_counts()
    order = sorted(counts.index, key=lambda o: (-counts[o], o))
    out = counts.loc[order[:top] if top is not None else order].astype(np.int64)
    out.index.name, out.name = "object", "parts"
    return out


def state_timeline(parts: pd.DataFrame, video: str, *, human: int = 0,
                   part_names: Sequence[str] | None = None, frames: Sequence[int] | None = None) -> pd.DataFrame:
    """The states of one human slot of one video: index parts, columns frame numbers, values state names.

    Kinetics-TPS has no identity across frames, so ``human`` is the position in each frame's file
    (0 = first listed). Cells are ``None`` where the frame has no such human or the part is missing.
    ``frames`` fixes the columns (e.g. every annotated frame of the video); default: the frames
    where the human slot has a part.
    """
    names = category_names(parts["part"], part_names)
    rows = parts[(parts["video"] == video).to_numpy() & (parts["human"].to_numpy() == human)]
    cols = sorted(int(f) for f in (frames if frames is not None else rows["frame"].unique()))
    table = pd.DataFrame(np.full((len(names), len(cols)), None, dtype=object),
                         index=pd.Index(names, name="part"), columns=pd.Index(cols, name="frame"))
    for part, frame, state in zip(rows["part"].astype(str), rows["frame"].to_numpy(), rows["state"].astype(str)):
        if part in table.index and int(frame) in table.columns:
            table.at[part, int(frame)] = state
    return table


def box_jitter(parts: pd.DataFrame, frames: pd.DataFrame, part_names: Sequence[str] | None = None
               ) -> pd.DataFrame:
    """How far part boxes move between consecutive annotated frames, relative to the human's size.

    Only frames with exactly one human (``frames["num_humans"] == 1``) are used, as there is no identity
    across frames, and only pairs of consecutive annotated frames of the same video where both have
    the part. For each pair the
    part box centre's displacement is divided by the diagonal of the human box (mean of both frames),
    and the frame gap is divided out (per-frame motion). Columns ``part, pairs, median, p95, max``
    (NaN for a part without pairs); a large ``p95`` relative to ``median`` points to jittery boxes.
    """
    names = category_names(parts["part"], part_names)
    video_names = category_names(parts["video"])
    video = name_codes(parts["video"], video_names)
    frame = parts["frame"].to_numpy(np.int64)
    stride = int(max(frame.max(initial=0), frames["frame"].max() if len(frames) else 0)) + 1
    one = frames["num_humans"].to_numpy() == 1
    one_keys = name_codes(frames["video"], video_names)[one] * stride + frames["frame"].to_numpy(np.int64)[one]
    single = (video >= 0) & np.isin(video * stride + frame, one_keys)
    part = name_codes(parts["part"], names)
    rows = pd.DataFrame({"video": video, "frame": frame, "part": part})[single]
    rows = rows[~rows.duplicated(["video", "frame", "part"], keep=False)]  # a part listed twice: ambiguous
    box = parts[_PART_BOX].to_numpy(np.float64)[rows.index]
    hbox = parts[_HUMAN_BOX].to_numpy(np.float64)[rows.index]
    video, frame, part = (rows[c].to_numpy() for c in ("video", "frame", "part"))
    out = []
    for k, name in enumerate(names):
        sel = np.flatnonzero(part == k)
        sel = sel[np.lexsort((frame[sel], video[sel]))]
        v, f, b, h = video[sel], frame[sel], box[sel], hbox[sel]
        centre = (b[:, :2] + b[:, 2:]) / 2
        diag = np.hypot(h[:, 2] - h[:, 0] + 1, h[:, 3] - h[:, 1] + 1)
        move = np.hypot(*(centre[1:] - centre[:-1]).T)
        rel = move / ((diag[1:] + diag[:-1]) / 2) / np.maximum(f[1:] - f[:-1], 1)
        rel = rel[v[1:] == v[:-1]]
        summary = (np.median(rel), np.quantile(rel, 0.95), rel.max()) if len(rel) else (np.nan,) * 3
        out.append((name, len(rel), *summary))
    return pd.DataFrame(out, columns=["part", "pairs", "median", "p95", "max"])
