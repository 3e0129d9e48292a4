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
    keys = parts[["video", "frame", "human", "part"]].astype({"video": str, "part": str}).drop_duplicates()
    present = keys["part"].value_counts().reindex(names, fill_value=0).to_numpy(np.int64)
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
    table = pd.crosstab(parts["part"].astype(str), parts["state"].astype(str)).reindex(index=names, fill_value=0)
    totals = table.sum(axis=0)
    order = sorted(table.columns, key=lambda s: (-totals[s], s))
    table = table[order].astype(np.int64)
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
    action = parts["video"].astype(str).map(label_of)
    if action.isna().any():
        unknown = sorted(parts.loc[action.isna(), "video"].astype(str).unique())[:5]
        raise KeyError(f"parts of videos missing from the videos table: {unknown}")
    frame = pd.DataFrame({"action": action.to_numpy(), "part": parts["part"].astype(str).to_numpy(),
                          "state": parts["state"].astype(str).to_numpy()})
    counts = frame.groupby(["part", "state", "action"]).size()
    per_part = frame.groupby(["part", "action"]).size()
    share = counts / per_part.reindex(counts.index.droplevel("state")).to_numpy()
    table = share.unstack("action", fill_value=0.0)
    row_totals = counts.groupby(level=["part", "state"]).sum()
    table = table[row_totals.reindex(table.index).to_numpy() >= min_count]
    table.index = [f"{p}:{s}" for p, s in table.index]
    table = table.reindex(columns=sorted(table.columns))
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
    one = frames.loc[frames["num_humans"].to_numpy() == 1, ["video", "frame"]].astype({"video": str})
    keys = pd.MultiIndex.from_frame(one)
    single = parts[pd.MultiIndex.from_arrays([parts["video"].astype(str), parts["frame"]]).isin(keys)]
    single = single.drop_duplicates(["video", "frame", "part"], keep=False)
    rows = []
    for part in names:
        p = single[single["part"].astype(str) == part].sort_values(["video", "frame"], kind="stable")
        video = p["video"].astype(str).to_numpy()
        frame = p["frame"].to_numpy(np.int64)
        box = p[_PART_BOX].to_numpy(np.float64)
        hbox = p[_HUMAN_BOX].to_numpy(np.float64)
        centre = (box[:, :2] + box[:, 2:]) / 2
        diag = np.hypot(hbox[:, 2] - hbox[:, 0] + 1, hbox[:, 3] - hbox[:, 1] + 1)
        same = video[1:] == video[:-1]
        move = np.hypot(*(centre[1:] - centre[:-1]).T)
        rel = move / ((diag[1:] + diag[:-1]) / 2) / np.maximum(frame[1:] - frame[:-1], 1)
        rel = rel[same]
        stats = (np.median(rel), np.quantile(rel, 0.95), rel.max()) if len(rel) else (np.nan,) * 3
        rows.append((part, len(rel), *stats))
    return pd.DataFrame(rows, columns=["part", "pairs", "median", "p95", "max"])
