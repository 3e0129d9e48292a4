"""tpslab.viz: what each picture draws (bars, cells, boxes, labels, limits), checked on known data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import tpslab  # noqa: E402
import videogen as vg  # noqa: E402
from tpslab import stats, viz  # noqa: E402
from videorelease import make_video_release  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = make_video_release(tmp_path_factory.mktemp("viz") / "Kinetics-TPS")
    return tpslab.load_dataset(root, progress=False)


def bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def tick_labels(axis):
    return [t.get_text() for t in axis.get_ticklabels()]


def heat_values(ax):
    """The cell values of a seaborn heatmap, as the (rows, columns) array it drew."""
    mesh = ax.collections[0]
    rows, cols = len(ax.get_yticks()), len(ax.get_xticks())
    return np.asarray(mesh.get_array()).reshape(rows, cols)


# ----------------------------------------------------------------------------------- dataset plots
def test_videos_per_class_stacks_one_bar_per_class_and_split(ds):
    ax = viz.plot_videos_per_class(ds.videos)
    rects = bars(ax)
    assert len(rects) == 2 * 2  # 2 classes x 2 splits
    assert tick_labels(ax.yaxis) == ["lunge", "push_up"]  # both have 2 videos: by name
    widths = sorted((round(r.get_y() + r.get_height() / 2), r.get_x(), r.get_width()) for r in rects)
    # lunge: 2 train, then an empty test bar after them; push_up: 1 train, then 1 test stacked after it
    assert widths == [(0, 0.0, 2.0), (0, 2.0, 0.0), (1, 0.0, 1.0), (1, 1.0, 1.0)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]
    assert "4 videos, 2 classes" in ax.get_title()


def test_frames_per_video_histograms_share_bins(ds):
    ax = viz.plot_frames_per_video(ds.videos, bins=4)
    rects = bars(ax)
    assert len(rects) == 2 * 4
    lengths, annotated = rects[:4], rects[4:]
    # lengths 12, 9, 10 and the test video's 8, in bins of width 3 up to 12
    assert [r.get_height() for r in lengths] == [0, 0, 1, 3]
    assert [r.get_height() for r in annotated] == [1, 2, 0, 0]  # 4, 3, 2 annotated frames; test has none
    assert 0 <= lengths[0].get_x() < annotated[0].get_x() < 3  # side by side in the first bin
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["frames in the video", "annotated frames"]
    assert "3 annotated" in ax.get_title()


def test_humans_per_frame_and_parts_per_human_bar_heights(ds):
    ax = viz.plot_humans_per_frame(ds.frames)
    # odd frames have one human, even frames two: frames 1,4,7,10 | 1,2,3 | 2,6
    heights = [r.get_height() for r in bars(ax)]
    assert heights == [0, 4, 5]
    assert ax.get_xlabel() == "humans in the frame" and "(9 annotated frames)" in ax.get_title()
    ax = viz.plot_parts_per_human(ds.humans)
    heights = [r.get_height() for r in bars(ax)]
    assert len(heights) == 11 and heights[1] == 5 and heights[3] == 9 and sum(heights) == 14


def test_missing_parts_bars_are_percentages(ds):
    ax = viz.plot_missing_parts(ds.parts, ds.humans)
    widths = {label: r.get_width() for label, r in zip(tick_labels(ax.yaxis), bars(ax))}
    assert len(widths) == 10
    assert widths["head"] == pytest.approx(100 * 5 / 14)  # the 5 second humans have no head
    assert widths["hip"] == pytest.approx(100.0)
    assert widths["right_foot"] == pytest.approx(100 * 9 / 14)
    assert any(t.get_text() == "100.0" for t in ax.texts)


def test_state_distribution_heatmap_holds_row_shares(ds):
    ax = viz.plot_state_distribution(ds.parts, top=3)
    values = heat_values(ax)
    expected = stats.state_counts(ds.parts, normalize=True).iloc[:, :3]
    assert tick_labels(ax.xaxis) == list(expected.columns)
    assert tick_labels(ax.yaxis) == list(ds.vocab.parts.names)
    np.testing.assert_allclose(values, expected.to_numpy())
    assert values[list(ds.vocab.parts.names).index("head"), list(expected.columns).index("none")] == 1.0


def test_state_by_action_heatmap_dimensions(ds):
    ax = viz.plot_state_by_action(ds.parts, ds.videos, top=4)
    values = heat_values(ax)
    assert values.shape == (4, 2)
    assert tick_labels(ax.xaxis) == ["lunge", "push_up"]
    assert ax.get_ylabel() == "part:state"
    assert ((values >= 0) & (values <= 1)).all()


def test_objects_counts_bars(ds):
    ax = viz.plot_objects(ds.parts)
    assert tick_labels(ax.yaxis) == ["dumbbell"]
    assert [r.get_width() for r in bars(ax)] == [9]  # one per first human of 9 frames


def test_state_timeline_cells_legend_and_marker(ds):
    ax = viz.plot_state_timeline(ds.parts, "lunge_a", frames=range(1, 13), current_frame=4,
                                 state_names=ds.vocab.states.names)
    image = next(a for a in ax.get_children() if isinstance(a, AxesImage))
    grid = image.get_array()
    assert grid.shape == (10, 12)
    assert image.get_extent() == [0.5, 12.5, 9.5, -0.5]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [s for s in ds.vocab.states.names if s in {"none", "bend", "unbend", "hold"}]
    arm = list(ds.vocab.parts.names).index("left_arm")
    # left_arm is bend on odd, unbend on even annotated frames; frame 2 is not annotated
    assert legend[int(grid[arm, 0])] == "bend" and legend[int(grid[arm, 3])] == "unbend"
    assert grid.mask[arm, 1] and grid.mask[list(ds.vocab.parts.names).index("hip")].all()
    assert any(list(line.get_xdata()) == [4, 4] for line in ax.lines)


# ----------------------------------------------------------------------------------- frames
def _frame_rects(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_draw_frame_boxes_on_inclusive_pixels_with_labels(ds):
    image = np.zeros((96, 128, 3), np.uint8)
    humans, parts = ds.humans_of("lunge_a", 4), ds.parts_of("lunge_a", 4)
    ax = viz.draw_frame(image, humans, parts, title="t")
    rects = _frame_rects(ax)
    assert len(rects) == 2 + 4 + 1  # humans, parts, one object
    head = parts[parts["part"] == "head"].iloc[0]
    assert any(r.get_xy() == (head.part_x1 - 0.5, head.part_y1 - 0.5)
               and r.get_width() == head.part_x2 - head.part_x1 + 1 for r in rects)
    texts = [t.get_text() for t in ax.texts]
    assert sorted(texts) == sorted(["human 0", "human 1", "none", "unbend", "hold", "step_on", "dumbbell"])
    assert ax.get_xlim() == (-0.5, 127.5) and ax.get_ylim() == (95.5, -0.5)
    assert ax.get_title() == "t"


@pytest.mark.parametrize("toggle, rects, texts", [
    ("show_humans", 5, 5), ("show_parts", 3, 3), ("show_objects", 6, 6), ("show_states", 7, 3)])
def test_draw_frame_toggles_remove_their_layer(ds, toggle, rects, texts):
    image = np.zeros((96, 128, 3), np.uint8)
    ax = viz.draw_frame(image, ds.humans_of("lunge_a", 4), ds.parts_of("lunge_a", 4), **{toggle: False})
    assert len(_frame_rects(ax)) == rects and len(ax.texts) == texts


def test_plot_frame_reads_the_numbered_frame(ds):
    ax = viz.plot_frame(ds, "lunge_a", 7)
    shown = next(a for a in ax.get_children() if isinstance(a, AxesImage)).get_array()
    assert vg.read_index(np.asarray(shown)) == 6  # frame number 7 is decoded index 6
    assert ax.get_title() == "lunge | frame 7 (1 human, 3 parts)\nlunge_a"
    ax = viz.plot_frame(ds, "lunge_a", 2)
    assert "not annotated" in ax.get_title() and not _frame_rects(ax)


def test_plot_comparison_lists_wrong_states(ds):
    truth = ds.parts_of("lunge_a", 4)
    predicted = truth.copy()
    predicted["state"] = predicted["state"].astype(str)
    predicted.loc[predicted["part"] == "left_arm", "state"] = "bend"
    image = np.zeros((96, 128, 3), np.uint8)
    left, right = viz.plot_comparison(image, truth, predicted)
    assert left.get_title() == "ground truth"
    assert "left_arm: bend (not unbend)" in right.get_title()
    assert "head" not in right.get_title()
    assert len(_frame_rects(right)) == 4 + 1
    _, right = viz.plot_comparison(image, truth, truth, predicted_title="mine")
    assert right.get_title() == "mine\nall states right"
    predicted["state"] = "lift"  # all four wrong: three listed, then a count
    _, right = viz.plot_comparison(image, truth, predicted, max_listed=3)
    assert right.get_title().endswith(", and 1 more") and right.get_title().count("(not ") == 3


def test_explorer_figure_has_frame_and_timeline(ds):
    fig = viz.explorer_figure(ds, "lunge_a", 4, show_states=False)
    frame_ax, time_ax = fig.axes[:2]
    assert "frame 4" in frame_ax.get_title() and "lunge_a" in time_ax.get_title()
    assert len(_frame_rects(frame_ax)) == 7 and len(frame_ax.texts) == 3  # 2 humans, 1 object, no states
    image = next(a for a in time_ax.get_children() if isinstance(a, AxesImage))
    assert image.get_array().shape == (10, 12)  # all 12 frames of the video along x


def test_image_grid_shows_each_image_with_its_title_and_hides_spare_axes():
    images = [np.full((4, 4, 3), 40 * i, np.uint8) for i in range(5)]
    fig = viz.plot_image_grid(images, [f"s{i}" for i in range(5)], cols=3, title="crops")
    assert len(fig.axes) == 6
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["s0", "s1", "s2", "s3", "s4"]
    np.testing.assert_array_equal(shown[2].images[0].get_array(), images[2])
    assert not fig.axes[5].images and not fig.axes[5].axison
    assert fig._suptitle.get_text() == "crops"
    with pytest.raises(ValueError, match="titles"):
        viz.plot_image_grid(images, ["a"])


# ----------------------------------------------------------------------------------- results
class _Result:
    def __init__(self, acc, area):
        self.thresholds = np.arange(1, 10000) / 10000
        self.acc = acc
        self.area = area


def test_acc_curve_draws_the_steps_and_shades_the_area():
    t = np.arange(1, 10000) / 10000
    acc = np.where(t <= 0.5, 0.8, 0.4)
    ax = viz.plot_acc_curve(_Result(acc, 0.5999), label="model")
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_ydata(), acc)
    assert line.get_drawstyle() == "steps-post"
    fills = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(fills) == 1
    ys = fills[0].get_paths()[0].vertices[:, 1]
    assert ys.max() == pytest.approx(0.8) and ys.min() == pytest.approx(0.0)
    assert ax.get_legend().get_texts()[0].get_text() == "model (area 0.5999)"
    assert ax.get_xlim() == (0, 1) and ax.get_ylim() == (0, 1.02)
    viz.plot_acc_curve(thresholds=t, acc=acc / 2, label="other", shade=False, ax=ax)
    assert len(ax.lines) == 2 and len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1
    assert ax.get_legend().get_texts()[1].get_text() == "other"


def test_acc_curve_refuses_mismatched_arrays():
    with pytest.raises(ValueError, match="same length"):
        viz.plot_acc_curve(thresholds=np.arange(3), acc=np.arange(4))
    with pytest.raises(ValueError, match="needs a result"):
        viz.plot_acc_curve()


def test_confusion_normalises_rows_and_annotates_small_matrices():
    ax = viz.plot_confusion(np.array([[3, 1], [0, 0]]), ["a", "b"])
    np.testing.assert_allclose(heat_values(ax), [[0.75, 0.25], [0, 0]])
    assert sorted(t.get_text() for t in ax.texts) == ["0.00", "0.00", "0.25", "0.75"]
    assert tick_labels(ax.xaxis) == ["a", "b"] and ax.get_xlabel() == "predicted"
    raw = viz.plot_confusion(pd.DataFrame([[3, 1], [0, 2]], index=list("ab"), columns=list("ab")), normalize=False)
    np.testing.assert_allclose(heat_values(raw), [[3, 1], [0, 2]])
    with pytest.raises(ValueError, match="labels"):
        viz.plot_confusion(np.eye(3), ["a", "b"])


def test_weights_keep_the_strongest_columns_on_a_symmetric_scale():
    w = np.array([[0.1, -2.0, 0.3, 1.0], [0.0, 0.5, -0.2, -1.5]])
    ax = viz.plot_weights(w, ["x", "y"], ["c0", "c1", "c2", "c3"], top=2)
    assert tick_labels(ax.xaxis) == ["c1", "c3"]  # |w| max 2.0 and 1.5, in their original order
    np.testing.assert_allclose(heat_values(ax), [[-2.0, 1.0], [0.5, -1.5]])
    mesh = ax.collections[0]
    assert mesh.norm.vmin == -2.0 and mesh.norm.vmax == 2.0


def test_bars_widths_errors_and_reference():
    table = pd.DataFrame({"removed": ["none", "hands", "feet"], "score": [0.6, 0.4, 0.5],
                          "lo": [0.55, 0.3, 0.45], "hi": [0.65, 0.45, 0.6]})
    ax = viz.plot_bars(table, "score", label="removed", low="lo", high="hi", reference=0.6, title="ablation")
    assert [r.get_width() for r in bars(ax)] == [0.6, 0.4, 0.5]
    assert tick_labels(ax.yaxis) == ["none", "hands", "feet"]
    assert ax.get_title() == "ablation"
    assert [t.get_text() for t in ax.texts] == ["0.600", "0.400", "0.500"]
    assert [t.get_position()[0] > h for t, h in zip(ax.texts, [0.65, 0.45, 0.6])] == [True] * 3  # clear of the errors
    errs = [c for c in ax.collections if c.get_segments()]  # the error bar segments
    segs = np.array(errs[0].get_segments())
    np.testing.assert_allclose(segs[:, :, 0], [[0.55, 0.65], [0.3, 0.45], [0.45, 0.6]])
    assert any(list(line.get_xdata()) == [0.6, 0.6] for line in ax.lines)
    ax = viz.plot_bars(pd.Series([1.0, 2.0], index=["a", "b"], name="v"))
    assert ax.get_xlabel() == "v" and [r.get_width() for r in bars(ax)] == [1.0, 2.0]


def test_scatter_labels_each_point():
    table = pd.DataFrame({"acc": [0.5, 0.9], "psc": [0.2, 0.7]}, index=["a", "b"])
    ax = viz.plot_scatter(table, "psc", "acc", title="per class")
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[0.2, 0.5], [0.7, 0.9]])
    assert [t.get_text() for t in ax.texts] == ["a", "b"]
    assert ax.get_xlabel() == "psc" and ax.get_title() == "per class"
    ax = viz.plot_scatter(table, "psc", "acc", annotate=["b"])
    assert [t.get_text() for t in ax.texts] == ["b"] and len(ax.collections[0].get_offsets()) == 2


def test_same_data_gives_the_same_picture(ds):
    def png():
        ax = viz.plot_state_by_action(ds.parts, ds.videos)
        ax.figure.canvas.draw()
        pixels = np.asarray(ax.figure.canvas.buffer_rgba()).copy()
        plt.close(ax.figure)
        return pixels
    np.testing.assert_array_equal(png(), png())


def test_notebook_style_sets_a_legible_resolution():
    with plt.rc_context():
        viz.notebook_style()
        assert plt.rcParams["figure.dpi"] == viz.NOTEBOOK_DPI >= 100
        assert plt.rcParams["savefig.dpi"] == viz.NOTEBOOK_DPI
        viz.notebook_style(dpi=150)
        assert plt.rcParams["figure.dpi"] == 150
