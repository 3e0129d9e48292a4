"""tpslab.widgets: the explorer builds, follows its selectors, and shows the frame it says it shows."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import tpslab  # noqa: E402
import videogen as vg  # noqa: E402
from tpslab.widgets import Explorer, static_view  # noqa: E402
from videorelease import make_video_release  # noqa: E402

pytest.importorskip("ipywidgets")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = make_video_release(tmp_path_factory.mktemp("widgets") / "Kinetics-TPS")
    return tpslab.load_dataset(root, progress=False)


@pytest.fixture
def explorer(ds):
    ex = Explorer(ds)
    yield ex
    ex.close()
    plt.close("all")


def frame_rects(ex):
    return [p for p in ex.figure.axes[0].patches if isinstance(p, Rectangle)]


def test_builds_on_the_first_class_video_and_annotated_frame(explorer):
    assert explorer.class_select.options == ("lunge", "push_up")
    assert [v for _, v in explorer.video_select.options] == ["lunge_a", "lunge_b"]
    assert explorer.video_select.value == "lunge_a"
    assert (explorer.frame_slider.min, explorer.frame_slider.max, explorer.frame_slider.value) == (1, 12, 1)
    assert explorer.play.max == 12
    assert bytes(explorer.image.value).startswith(PNG_MAGIC)
    shown = plt.imread(io.BytesIO(bytes(explorer.image.value)), format="png")
    assert (explorer.image.width, explorer.image.height) == (str(shown.shape[1]), str(shown.shape[0]))
    assert vg.read_index(explorer.frame_image) == 0
    assert "lunge_a" in explorer.info.value and "frame 1 of 12" in explorer.info.value
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    # pages that cannot run widgets show the current view instead
    assert base64.b64decode(bundle["image/png"]) == bytes(explorer.image.value)
    assert "running kernel" in bundle["text/plain"]


def test_frame_selection_redraws_the_numbered_frame(explorer):
    before = bytes(explorer.image.value)
    explorer.frame_slider.value = 7
    assert vg.read_index(explorer.frame_image) == 6
    assert bytes(explorer.image.value) != before
    assert "frame 7" in explorer.figure.axes[0].get_title()
    assert len(frame_rects(explorer)) == 1 + 3 + 1  # frame 7: one human, three parts, one object
    explorer.frame_slider.value = 2  # not annotated
    assert "no annotation" in explorer.info.value and not frame_rects(explorer)


def test_play_moves_the_slider_and_the_picture(explorer):
    explorer.play.value = 4
    assert explorer.frame_slider.value == 4
    assert vg.read_index(explorer.frame_image) == 3
    assert len(frame_rects(explorer)) == 2 + 4 + 1  # frame 4: two humans


def test_class_selection_switches_videos_and_ranges(explorer):
    explorer.class_select.value = "push_up"
    assert [v for _, v in explorer.video_select.options] == ["push_a", "push_test"]
    assert explorer.video_select.value == "push_a"
    assert (explorer.frame_slider.max, explorer.frame_slider.value) == (10, 2)  # first annotated frame is 2
    assert vg.read_index(explorer.frame_image) == 1
    assert "(test, 0 annotated frames)" in explorer.video_select.options[1][0]


def test_video_selection_resets_frame_and_human_slots(explorer):
    explorer.frame_slider.value = 10
    explorer.video_select.value = "lunge_b"
    assert explorer.frame_slider.max == 9 and explorer.frame_slider.value == 1
    assert explorer.human_select.options == (0, 1)
    assert "lunge_b" in explorer.figure.axes[1].get_title()


def test_test_video_without_annotations_shows_bare_frames(explorer):
    explorer.class_select.value = "push_up"
    explorer.video_select.value = "push_test"
    assert explorer.frame_slider.max == 8 and explorer.frame_slider.value == 1
    assert vg.read_index(explorer.frame_image) == 0
    assert not frame_rects(explorer) and "no annotation" in explorer.info.value
    assert explorer.human_select.options == (0,)


def test_overlay_toggles_change_what_is_drawn(explorer):
    explorer.frame_slider.value = 4
    assert len(frame_rects(explorer)) == 7
    explorer.overlays["show_parts"].value = False
    assert len(frame_rects(explorer)) == 3
    explorer.overlays["show_humans"].value = False
    assert len(frame_rects(explorer)) == 1
    texts = [t.get_text() for t in explorer.figure.axes[0].texts]
    assert texts == ["dumbbell"]


def test_human_slot_changes_the_timeline(explorer):
    explorer.frame_slider.value = 4
    explorer.human_select.value = 1
    assert "human 1" in explorer.figure.axes[1].get_title()
    legend = [t.get_text() for t in explorer.figure.axes[1].get_legend().get_texts()]
    assert legend == ["step_on"]


def test_static_fallback_draws_the_same_view(explorer, ds):
    explorer.frame_slider.value = 4
    explorer.overlays["show_states"].value = False
    fig = explorer.static()
    assert [a.get_title() for a in fig.axes[:2]] == [a.get_title() for a in explorer.figure.axes[:2]]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), explorer.frame_image)
    assert len([p for p in fig.axes[0].patches if isinstance(p, Rectangle)]) == len(frame_rects(explorer))
    fig2 = static_view(ds, "lunge_a", 4, show_states=False)
    assert fig2.axes[0].get_title() == fig.axes[0].get_title()


def test_start_on_a_chosen_video_and_frame(ds):
    ex = Explorer(ds, video="push_a", frame=6)
    try:
        assert ex.class_select.value == "push_up" and ex.frame_slider.value == 6
        assert vg.read_index(ex.frame_image) == 5
    finally:
        ex.close()
    with pytest.raises(KeyError, match="nope"):
        Explorer(ds, video="nope")
    with pytest.raises(ValueError, match="outside 1..10"):
        Explorer(ds, video="push_a", frame=11)
