"""Static pictures of Kinetics-TPS data, predictions and scores (matplotlib and seaborn).

Every ``plot_*`` function takes data (dataset tables, a metrics result, a matrix or a table) and an
optional ``ax``; it draws on ``ax`` (or on a new figure sized for the content), labels axes and
title, and returns the Axes (multi-panel pictures take and return several Axes, or the Figure).
Nothing is random, so the same data always gives the same picture.

Dataset: :func:`plot_videos_per_class`, :func:`plot_frames_per_video`, :func:`plot_humans_per_frame`,
:func:`plot_parts_per_human`, :func:`plot_missing_parts`, :func:`plot_state_distribution`,
:func:`plot_state_by_action`, :func:`plot_objects`, :func:`plot_state_timeline`.
Frames: :func:`draw_frame` (an image with human, part and object boxes and state labels),
:func:`plot_frame` (the same, reading the frame from a dataset), :func:`plot_comparison`
(ground truth against a prediction, side by side), :func:`plot_image_grid` (e.g. part crops).
Results: :func:`plot_acc_curve` (the official acc(t) curve with its area shaded),
:func:`plot_confusion`, :func:`plot_weights`, :func:`plot_bars` (ablation, oracle or comparison
tables), :func:`plot_scatter` (one labelled point per row, e.g. per-class accuracy against PSC).
The explorer's view: :func:`explorer_figure` (a frame above its video's part-state timeline).
Notebooks: :func:`notebook_style` (legible figure defaults: resolution and font sizes).

Boxes are drawn on inclusive pixel corners as the release defines them: pixel ``x`` covers
``[x - 0.5, x + 0.5]`` in image coordinates, so a box ``x1..x2`` is ``x2 - x1 + 1`` pixels wide.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from tpslab import stats

_PART_BOX = ["part_x1", "part_y1", "part_x2", "part_y2"]
_OBJECT_BOX = ["object_x1", "object_y1", "object_x2", "object_y2"]
_HUMAN_BOX = ["x1", "y1", "x2", "y2"]
_SPLIT_COLORS = {"train": "#4c72b0", "test": "#dd8452"}
_HUMAN_COLOR = "white"
_OBJECT_COLOR = "#ffd92f"


#: The resolution :func:`notebook_style` gives figures shown in notebooks (matplotlib's inline default is
#: 72 to 100 depending on the version; at 80, the 6 to 7 point state labels of frame overlays are about
#: 7 pixels tall and unreadable).
NOTEBOOK_DPI = 110
#: Font sizes in points :func:`notebook_style` sets (matplotlib's defaults: 10 everywhere).
NOTEBOOK_FONTS = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9,
                  "ytick.labelsize": 9, "legend.fontsize": 9}


# ---------------------------------------------------------------------------------------- helpers
def notebook_style(dpi: int = NOTEBOOK_DPI) -> None:
    """Legible defaults for figures in notebooks: ``dpi`` pixels per inch on screen and in saved outputs
    (:data:`NOTEBOOK_DPI`), and the font sizes of :data:`NOTEBOOK_FONTS`. Call it once, after importing
    matplotlib; it changes ``matplotlib.rcParams`` for the whole session."""
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, **NOTEBOOK_FONTS})


def _axes(ax, size) -> plt.Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=size)
    return ax


_PALETTES = ("tab20", "tab20b", "tab20c", "Set3", "Pastel1", "Dark2", "Set1")


def _palette(n: int) -> list:
    """``n`` colours, always the same for the same ``n``: the first 98 are distinct (tab20, tab20b,
    tab20c, Set3, Pastel1, Dark2, Set1), then they repeat."""
    base = [c for name in _PALETTES for c in plt.get_cmap(name).colors]
    return [base[i % len(base)] for i in range(n)]


def part_colors(part_names: Sequence[str]) -> dict:
    """One fixed colour per body part (tab10, in vocabulary order)."""
    colors = plt.get_cmap("tab10").colors
    return {p: colors[i % len(colors)] for i, p in enumerate(part_names)}


def state_colors(state_names: Sequence[str]) -> dict:
    """One fixed colour per part state, in the given order; ``none`` is light grey."""
    out = dict(zip(state_names, _palette(len(state_names))))
    if "none" in out:
        out["none"] = (0.85, 0.85, 0.85)
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _box_rect(box, **style) -> Rectangle:
    x1, y1, x2, y2 = (float(v) for v in box)
    return Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1 + 1, y2 - y1 + 1, fill=False, **style)


def _heatmap(table: pd.DataFrame, ax, size_per_cell, *, cmap, xlabel=None, ylabel=None, title=None, center=None,
             vmin=None, vmax=None, annot=False, fmt=".2f", cbar_label=None):
    """A labelled seaborn heatmap of ``table``; a new figure grows with the table (``size_per_cell``:
    inches per column, per row, plus a margin each)."""
    import seaborn as sns

    (per_col, margin_x), (per_row, margin_y) = size_per_cell
    ax = _axes(ax, (per_col * table.shape[1] + margin_x, per_row * table.shape[0] + margin_y))
    sns.heatmap(table, ax=ax, cmap=cmap, center=center, vmin=vmin, vmax=vmax, annot=annot, fmt=fmt,
                xticklabels=True, yticklabels=True, linewidths=0,
                cbar_kws={"label": cbar_label} if cbar_label else None)
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)
    ax.set_xlabel(xlabel if xlabel is not None else ax.get_xlabel())
    ax.set_ylabel(ylabel if ylabel is not None else ax.get_ylabel())
    ax.set_title(title or "")
    return ax


def _barh(ax, labels, values, *, color=None, annotate_fmt=None, xerr=None):
    """Horizontal bars, first label at the top, optional value labels at the bar ends."""
    y = np.arange(len(labels))
    ax.barh(y, values, color=color, xerr=xerr, capsize=3 if xerr is not None else 0)
    ax.set_yticks(y, [str(lab) for lab in labels])
    ax.invert_yaxis()
    if annotate_fmt:
        span = max((abs(v) for v in values), default=1.0) or 1.0
        ends = np.asarray(values, np.float64) + (np.asarray(xerr)[1] if xerr is not None else 0)
        for yi, v, end in zip(y, values, ends):  # right of the bar, or of its error bar
            ax.text(end + 0.01 * span, yi, format(v, annotate_fmt), va="center", fontsize=8)
    return ax


# ---------------------------------------------------------------------------------------- dataset
def plot_videos_per_class(videos: pd.DataFrame, *, ax=None) -> plt.Axes:
    """Stacked horizontal bars: videos per class, one colour per split (largest class on top)."""
    table = stats.videos_per_class(videos)
    ax = _axes(ax, (7, 0.25 * len(table) + 1.2))
    left = np.zeros(len(table))
    y = np.arange(len(table))
    splits = [c for c in table.columns if c != "total"]
    colors = _palette(len(splits))
    for i, split in enumerate(splits):
        ax.barh(y, table[split], left=left, label=split, color=_SPLIT_COLORS.get(split, colors[i]))
        left += table[split].to_numpy()
    ax.set_yticks(y, list(table.index))
    ax.invert_yaxis()
    ax.set_xlabel("videos")
    ax.set_ylabel("action class")
    ax.set_title(f"Videos per class ({int(table['total'].sum())} videos, {len(table)} classes)")
    ax.legend(title="split", loc="lower right")
    return ax


def plot_frames_per_video(videos: pd.DataFrame, *, bins: int = 20, ax=None) -> plt.Axes:
    """Histograms over videos of the frame count (from the flist) and the annotated frame count.

    Videos whose frame count is unknown are left out of the first histogram only; both share bins.
    """
    total = videos["num_frames"].dropna().to_numpy(np.float64)
    annotated = videos.loc[videos["num_annotated_frames"] > 0, "num_annotated_frames"].to_numpy(np.float64)
    top = max(total.max(initial=0), annotated.max(initial=0), 1)
    edges = np.linspace(0, top, bins + 1)
    ax = _axes(ax, (6, 3.2))
    ax.hist([total, annotated], bins=edges, label=["frames in the video", "annotated frames"],
            color=["#4c72b0", "#dd8452"])
    ax.set_xlabel("frames")
    ax.set_ylabel("videos")
    ax.set_title(f"Frames per video ({len(total)} videos with a known length, {len(annotated)} annotated)")
    ax.legend()
    return ax


def _count_bars(counts: pd.Series, ax, *, color, xlabel: str, ylabel: str, title: str) -> plt.Axes:
    """Vertical bars of a histogram Series (index: the counted value, value: how often)."""
    ax = _axes(ax, (5, 3))
    ax.bar(counts.index, counts.to_numpy(), color=color)
    ax.set_xticks(counts.index)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} ({int(counts.sum())} {ylabel})")
    return ax


def plot_humans_per_frame(frames: pd.DataFrame, *, ax=None) -> plt.Axes:
    """Bars: annotated frames by number of annotated humans."""
    return _count_bars(stats.humans_per_frame(frames), ax, color="#4c72b0", xlabel="humans in the frame",
                       ylabel="annotated frames", title="People per frame")


def plot_parts_per_human(humans: pd.DataFrame, n_parts: int = 10, *, ax=None) -> plt.Axes:
    """Bars: annotated humans by number of annotated parts (0..n_parts)."""
    return _count_bars(stats.parts_per_human(humans, n_parts), ax, color="#55a868",
                       xlabel="annotated parts of the human", ylabel="humans", title="Parts per person")


def plot_missing_parts(parts: pd.DataFrame, humans: pd.DataFrame, part_names=None, *, ax=None) -> plt.Axes:
    """Horizontal bars: the share of annotated humans that lack each body part (in %)."""
    table = stats.missing_parts(parts, humans, stats.category_names(parts["part"], part_names))
    ax = _axes(ax, (5, 3.2))
    _barh(ax, table["part"], 100 * table["missing_share"].to_numpy(), color="#c44e52", annotate_fmt=".1f")
    ax.set_xlabel("humans without the part (%)")
    ax.set_ylabel("body part")
    ax.set_title("Missing parts")
    return ax


def plot_state_distribution(parts: pd.DataFrame, part_names=None, *, top: int | None = 25, ax=None) -> plt.Axes:
    """Heatmap: each part's state distribution (rows sum to 1), the ``top`` most frequent states as columns."""
    table = stats.state_counts(parts, stats.category_names(parts["part"], part_names), normalize=True)
    if top is not None:
        table = table.iloc[:, :top]
    return _heatmap(table, ax, ((0.32, 2.5), (0.35, 1.8)), cmap="viridis", vmin=0, vmax=1,
                    cbar_label="share of the part's annotations", xlabel="part state", ylabel="body part",
                    title="State distribution per part")


def plot_state_by_action(parts: pd.DataFrame, videos: pd.DataFrame, *, top: int | None = 30, ax=None) -> plt.Axes:
    """Heatmap: P(state | part, action) for the ``top`` part states that vary most across actions."""
    table = stats.state_by_action(parts, videos, top=top)
    return _heatmap(table, ax, ((0.3, 3.5), (0.25, 2.5)), cmap="mako_r", vmin=0, vmax=1,
                    cbar_label="P(state | part, action)", xlabel="action", ylabel="part:state",
                    title="Part states that tell actions apart")


def plot_objects(parts: pd.DataFrame, *, top: int | None = 20, ax=None) -> plt.Axes:
    """Horizontal bars: part annotations per object label (the ``top`` most frequent)."""
    counts = stats.object_counts(parts, top=top)
    ax = _axes(ax, (5, 0.25 * len(counts) + 1.2))
    _barh(ax, counts.index, counts.to_numpy(), color="#8172b3")
    ax.set_xlabel("part annotations touching the object")
    ax.set_ylabel("object")
    ax.set_title("Objects (\"none\" = outside the vocabulary)")
    return ax


def plot_state_timeline(parts: pd.DataFrame, video: str, *, human: int = 0, frames: Sequence[int] | None = None,
                        part_names=None, state_names=None, current_frame: int | None = None, ax=None) -> plt.Axes:
    """The part states of one human slot of one video: parts as rows, frame numbers along x.

    ``frames`` sets the x range (default: the annotated frames of the slot); frames without an
    annotation for the part stay blank. ``state_names`` fixes the colour of each state (default:
    the states of the parts table, in its category order). ``current_frame`` draws a marker line.
    """
    names = stats.category_names(parts["part"], part_names)
    table = stats.state_timeline(parts, video, human=human, part_names=names, frames=frames)
    states_all = stats.category_names(parts["state"], state_names)
    colors = state_colors(states_all)
    used = [s for s in states_all if (table.to_numpy() == s).any()]
    code = {s: i for i, s in enumerate(used)}
    cols = [int(c) for c in table.columns]
    lo, hi = (min(cols), max(cols)) if cols else (1, 1)
    grid = np.full((len(names), hi - lo + 1), -1)
    for j, f in enumerate(cols):
        for i in range(len(names)):
            s = table.iat[i, j]
            if s is not None:
                grid[i, f - lo] = code[s]
    ax = _axes(ax, (8, 3.2))
    cmap = ListedColormap([colors[s] for s in used] or [(1, 1, 1)]).with_extremes(bad=(1, 1, 1, 0))
    ax.imshow(np.ma.masked_less(grid, 0), cmap=cmap, vmin=-0.5, vmax=max(len(used), 1) - 0.5,
              aspect="auto", interpolation="nearest", extent=(lo - 0.5, hi + 0.5, len(names) - 0.5, -0.5))
    ax.set_yticks(range(len(names)), names)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("frame number")
    ax.set_title(f"Part states of human {human} in {video}")
    if current_frame is not None:
        ax.axvline(current_frame, color="black", linewidth=1.5)
    ax.legend(handles=[Patch(color=colors[s], label=s) for s in used], title="state", fontsize=7,
              title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return ax


# ---------------------------------------------------------------------------------------- frames
def draw_frame(image, humans: pd.DataFrame | None = None, parts: pd.DataFrame | None = None, *,
               show_humans: bool = True, show_parts: bool = True, show_objects: bool = True,
               show_states: bool = True, part_names=None, title: str | None = None, ax=None) -> plt.Axes:
    """Show an RGB frame with its annotations drawn on it.

    ``humans``: rows with ``x1, y1, x2, y2`` (the ``humans`` table of one frame); drawn dashed white,
    labelled with their ``human`` number. ``parts``: rows of the ``parts`` table of one frame (or
    predictions in the same columns): part boxes in one colour per part, the state written at the
    box's top-left corner when ``show_states``, and each distinct object box with its label.
    """
    image = np.asarray(image)
    ax = _axes(ax, (image.shape[1] / 60 + 1, image.shape[0] / 60 + 1))
    ax.imshow(image, interpolation="nearest")
    if humans is not None and show_humans:
        for k, row in enumerate(humans.itertuples(index=False)):
            box = [getattr(row, c) for c in _HUMAN_BOX]
            ax.add_patch(_box_rect(box, edgecolor=_HUMAN_COLOR, linewidth=1.2, linestyle="--"))
            number = getattr(row, "human", k)
            ax.text(box[0] - 0.5, box[1] - 1.5, f"human {number}", color=_HUMAN_COLOR, fontsize=8,
                    va="bottom", bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "linewidth": 0})
    if parts is not None and len(parts):
        colors = part_colors(stats.category_names(parts["part"], part_names))
        if show_parts:
            for row in parts.itertuples(index=False):
                color = colors.get(str(row.part), "red")
                box = [getattr(row, c) for c in _PART_BOX]
                ax.add_patch(_box_rect(box, edgecolor=color, linewidth=1.0))
                if show_states:
                    ax.text(box[0] - 0.5, box[1] - 0.5, str(row.state), color="white", fontsize=7, va="bottom",
                            bbox={"facecolor": color, "alpha": 0.75, "pad": 0.5, "linewidth": 0})
        if show_objects and "object" in parts.columns:
            objs = parts.loc[parts["object"].notna(), ["object"] + _OBJECT_BOX].astype({"object": str})
            objs = objs.dropna().drop_duplicates()
            for row in objs.itertuples(index=False):
                box = [getattr(row, c) for c in _OBJECT_BOX]
                ax.add_patch(_box_rect(box, edgecolor=_OBJECT_COLOR, linewidth=1.0, linestyle=":"))
                ax.text(box[2] + 0.5, box[3] + 0.5, str(row.object), color="black", fontsize=7, ha="right",
                        va="top", bbox={"facecolor": _OBJECT_COLOR, "alpha": 0.8, "pad": 0.5, "linewidth": 0})
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def read_frame(dataset, video: str, frame: int, reader=None) -> np.ndarray:
    """The RGB image of frame number ``frame`` (1-based, as ``img_00001``) of a dataset video."""
    from tpslab.video import frame_number_to_index, open_video

    index = int(frame_number_to_index(frame))
    if reader is not None:
        return reader.get([index])[0]
    with open_video(dataset.video_info(video)["path"]) as r:
        return r.get([index])[0]


def plot_frame(dataset, video: str, frame: int, *, reader=None, ax=None, **show) -> plt.Axes:
    """Read frame number ``frame`` (1-based) of ``video`` and draw its annotations (see :func:`draw_frame`).

    ``reader``: an open :func:`tpslab.video.open_video` reader of the video, to avoid reopening it;
    ``show``: the ``show_*`` toggles of :func:`draw_frame`. Frames without annotation are drawn bare.
    """
    image = read_frame(dataset, video, frame, reader)
    humans, parts = dataset.humans_of(video, frame), dataset.parts_of(video, frame)
    label = dataset.video_info(video)["label"]
    annotated = int(frame) in set(dataset.frames_of(video)["frame"].tolist())
    note = f"{_count(len(humans), 'human')}, {_count(len(parts), 'part')}" if annotated else "not annotated"
    return draw_frame(image, humans, parts, part_names=dataset.vocab.parts.names, ax=ax,
                      title=f"{label} | frame {frame} ({note})\n{video}", **show)


def plot_comparison(image, truth: pd.DataFrame, predicted: pd.DataFrame, *, humans: pd.DataFrame | None = None,
                    predicted_humans: pd.DataFrame | None = None, part_names=None, truth_title: str = "ground truth",
                    predicted_title: str = "prediction", max_listed: int = 3, axes=None):
    """Ground truth (left) against a prediction (right) on the same frame; returns the two Axes.

    ``truth``/``predicted``: parts tables of the frame (predictions in the same columns, one state per
    part). The right panel's title lists the parts whose predicted state differs from the truth of
    the same human and part (the first ``max_listed``, then how many more).
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 4))
    draw_frame(image, humans, truth, part_names=part_names, ax=axes[0], title=truth_title)
    keys = ["human", "part"]
    merged = truth.astype({"part": str}).merge(predicted.astype({"part": str}), on=keys, how="left",
                                               suffixes=("", "_pred"))
    wrong = merged[merged["state"].astype(str) != merged["state_pred"].astype(str)]
    listed = ", ".join(f"{r.part}: {r.state_pred} (not {r.state})"
                       for r in wrong.head(max_listed).itertuples(index=False))
    if len(wrong) > max_listed:
        listed += f", and {len(wrong) - max_listed} more"
    draw_frame(image, predicted_humans, predicted, part_names=part_names, ax=axes[1],
               title=predicted_title + (f"\nwrong: {listed}" if listed else "\nall states right"))
    return axes


def plot_image_grid(images, titles: Sequence[str] | None = None, *, cols: int = 8, size: float = 1.4,
                    title: str | None = None, axes=None) -> plt.Figure:
    """Small images in a grid (e.g. part crops), each with its title; returns the figure.

    ``images``: a sequence (or array) of RGB images; ``axes``: Axes to draw into (at least one per
    image; the rest are hidden), default a new figure with ``cols`` columns of ``size`` inches.
    """
    images = list(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    if axes is None:
        rows = max(1, -(-len(images) // cols))
        _, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * (size + 0.3)), squeeze=False)
    axes = list(np.ravel(axes))
    if len(axes) < len(images):
        raise ValueError(f"{len(axes)} axes for {len(images)} images")
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(np.asarray(images[i]), interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
    fig = axes[0].figure
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------- results
def plot_acc_curve(result=None, *, thresholds=None, acc=None, area: float | None = None, label: str | None = None,
                   color=None, shade: bool = True, ax=None) -> plt.Axes:
    """The official acc(t) curve with its area (the TPS score) shaded.

    Pass a metrics result (anything with ``thresholds``, ``acc`` and ``area``, e.g.
    :class:`tpslab.metrics.TPSResult`) or the arrays. Several calls on one ``ax`` overlay curves.
    """
    if result is not None:
        thresholds = result.thresholds if thresholds is None else thresholds
        acc = result.acc if acc is None else acc
        area = getattr(result, "area", None) if area is None else area
    if thresholds is None or acc is None:
        raise ValueError("plot_acc_curve needs a result or both thresholds and acc")
    t, a = np.asarray(thresholds, np.float64), np.asarray(acc, np.float64)
    if t.shape != a.shape or t.ndim != 1:
        raise ValueError(f"thresholds {t.shape} and acc {a.shape} must be 1-d and of the same length")
    ax = _axes(ax, (5.5, 3.8))
    text = label or "acc(t)"
    if area is not None:
        text += f" (area {area:.4f})"
    line, = ax.plot(t, a, drawstyle="steps-post", color=color, label=text, linewidth=1.5)
    if shade:
        ax.fill_between(t, 0, a, step="post", color=line.get_color(), alpha=0.25)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("PSC threshold t")
    ax.set_ylabel("acc(t): correct class and PSC >= t")
    ax.set_title("Official score: area under acc(t)")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return ax


def _labelled_matrix(matrix, labels=None, col_labels=None) -> pd.DataFrame:
    if isinstance(matrix, pd.DataFrame):
        return matrix.astype(np.float64)
    m = np.asarray(matrix, np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-d matrix, got shape {m.shape}")
    rows = list(labels) if labels is not None else list(range(m.shape[0]))
    if col_labels is not None:
        cols = list(col_labels)
    else:  # a square matrix shares its labels (a confusion matrix)
        cols = rows if m.shape[0] == m.shape[1] else list(range(m.shape[1]))
    if len(rows) != m.shape[0] or len(cols) != m.shape[1]:
        raise ValueError(f"{len(rows)} row and {len(cols)} column labels for a matrix of shape {m.shape}")
    return pd.DataFrame(m, index=rows, columns=cols)


def plot_confusion(matrix, labels: Sequence[str] | None = None, *, normalize: bool = True,
                   annotate: bool | None = None, title: str = "Confusion matrix", xlabel: str = "predicted",
                   ylabel: str = "true", ax=None) -> plt.Axes:
    """Heatmap of a confusion matrix (rows true, columns predicted; array with ``labels`` or a DataFrame).

    ``normalize`` divides each row by its sum (rows without samples stay 0), so the diagonal is the
    per-class recall. ``annotate`` writes the values (default: when at most 12 classes).
    """
    table = _labelled_matrix(matrix, labels)
    if normalize:
        sums = table.sum(axis=1).to_numpy()[:, None]
        table = pd.DataFrame(np.divide(table.to_numpy(), sums, out=np.zeros(table.shape), where=sums > 0),
                             index=table.index, columns=table.columns)
    annotate = max(table.shape) <= 12 if annotate is None else annotate
    return _heatmap(table, ax, ((0.32, 3), (0.3, 2.5)), cmap="Blues", vmin=0, vmax=1 if normalize else None,
                    annot=annotate, fmt=".2f" if normalize else ".0f",
                    cbar_label="share of the true class" if normalize else "count",
                    xlabel=xlabel, ylabel=ylabel, title=title)


def plot_weights(weights, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None, *,
                 top: int | None = 40, title: str = "Weights: part state -> action", ax=None) -> plt.Axes:
    """Diverging heatmap of a weight matrix (rows e.g. actions, columns e.g. ``part:state`` features).

    ``top`` keeps the columns with the largest absolute weight (ties by position), in their original
    order; colours are centred on 0 and symmetric.
    """
    table = _labelled_matrix(weights, row_labels, col_labels)
    if top is not None and table.shape[1] > top:
        strength = table.abs().max(axis=0).to_numpy()
        keep = np.sort(np.argsort(-strength, kind="stable")[:top])
        table = table.iloc[:, keep]
    limit = float(np.abs(table.to_numpy()).max()) if table.size else 1.0
    return _heatmap(table, ax, ((0.22, 3.5), (0.28, 2.5)), cmap="RdBu_r", center=0, vmin=-limit, vmax=limit,
                    cbar_label="weight", title=title)


def plot_bars(table, value: str | None = None, *, label: str | None = None, low: str | None = None,
              high: str | None = None, reference: float | None = None, reference_label: str = "reference",
              fmt: str = ".3f", title: str | None = None, xlabel: str | None = None, color=None,
              ax=None) -> plt.Axes:
    """Horizontal bars of one column of a table (ablation, oracle substitution, model comparison).

    ``table``: a DataFrame (``value`` names the column; ``label`` the label column, default the
    index) or a Series. ``low``/``high`` name interval columns drawn as error bars; ``reference``
    draws a vertical line (e.g. the full model's score). Values are written at the bar ends.
    """
    if isinstance(table, pd.Series):
        table = table.to_frame(name=table.name or "value")
        value = table.columns[0]
    if value is None:
        raise ValueError("plot_bars needs the name of the value column")
    labels = table[label] if label is not None else table.index
    values = table[value].to_numpy(np.float64)
    xerr = None
    if low is not None and high is not None:
        xerr = np.vstack([values - table[low].to_numpy(np.float64), table[high].to_numpy(np.float64) - values])
    ax = _axes(ax, (6, 0.35 * len(table) + 1.3))
    _barh(ax, list(labels), values, color=color or "#4c72b0", annotate_fmt=fmt, xerr=xerr)
    if reference is not None:
        ax.axvline(reference, color="black", linestyle="--", linewidth=1,
                   label=f"{reference_label} ({reference:{fmt}})")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel(xlabel or str(value))
    if title:
        ax.set_title(title)
    return ax


def plot_scatter(table: pd.DataFrame, x: str, y: str, *, label: str | None = None, annotate=None,
                 title: str | None = None, xlabel: str | None = None, ylabel: str | None = None, ax=None) -> plt.Axes:
    """One point per row of ``table`` at (``x``, ``y``), written with its ``label`` (default the index).

    ``annotate``: the labels to write (default all; fewer keep a crowded plot readable).
    """
    ax = _axes(ax, (6, 4.5))
    xs, ys = table[x].to_numpy(np.float64), table[y].to_numpy(np.float64)
    names = [str(n) for n in (table[label] if label is not None else table.index)]
    written = set(names) if annotate is None else {str(a) for a in annotate}
    ax.scatter(xs, ys, color="#4c72b0", zorder=3)
    for xi, yi, name in zip(xs, ys, names):
        if name in written:
            ax.annotate(name, (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def video_length(dataset, video: str, reader=None) -> int:
    """Frames of a dataset video: the open ``reader``'s count, else the flist's, else the last annotated frame."""
    if reader is not None:
        return len(reader)
    num_frames = dataset.video_info(video)["num_frames"]
    if not pd.isna(num_frames):
        return int(num_frames)
    return int(dataset.frames_of(video)["frame"].max()) if len(dataset.frames_of(video)) else 1


def explorer_figure(dataset, video: str, frame: int, *, human: int = 0, reader=None, **show) -> plt.Figure:
    """The explorer's view as a static figure: the frame with its annotations above the video's part-state
    timeline (human slot ``human``, a marker at ``frame``). ``show``: the ``show_*`` toggles of
    :func:`draw_frame`. This is what :class:`tpslab.widgets.Explorer` displays."""
    fig = plt.figure(figsize=(9, 7.2))
    grid = fig.add_gridspec(2, 1, height_ratios=[2.3, 1], hspace=0.3)
    ax_frame, ax_time = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    plot_frame(dataset, video, frame, reader=reader, ax=ax_frame, **show)
    last = video_length(dataset, video, reader)
    plot_state_timeline(dataset.parts_of(video), video, human=human, frames=range(1, max(last, frame) + 1),
                        part_names=dataset.vocab.parts.names, state_names=dataset.vocab.states.names,
                        current_frame=frame, ax=ax_time)
    return fig

