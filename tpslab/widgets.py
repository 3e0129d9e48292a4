"""The interactive dataset explorer (ipywidgets), built on :mod:`tpslab.viz`.

``Explorer(dataset)`` shows one frame of one video with its human, part and object boxes and state
labels, above the video's part-state timeline. Selectors pick the class, the video (train and test
videos; test videos have no annotations) and the frame; checkboxes switch the overlays; a play
button steps through the frames. The picture is rendered by :func:`tpslab.viz.explorer_figure` to a
PNG shown in an ``ipywidgets.Image``, so no interactive matplotlib backend is needed.

Widgets need a live kernel. Where there is none (a rendered notebook on GitHub or nbviewer, an
HTML export), use the static fallback: :func:`static_view` (or ``explorer.static()``) draws the
same view as a matplotlib figure. The explorer's own output also carries its current picture as a PNG
next to the widget, so a page that cannot run widgets (an HTML page read offline, for instance, once
:func:`tpslab.teaching.static_outputs` has kept the picture) still shows the view.
"""

from __future__ import annotations

import base64
import io
import struct

from tpslab import viz

#: The overlay switches, as (``draw_frame`` keyword, checkbox label).
OVERLAYS = (("show_humans", "humans"), ("show_parts", "parts"), ("show_objects", "objects"),
            ("show_states", "state labels"))


def static_view(dataset, video: str, frame: int, *, human: int = 0, **show):
    """The explorer's view as a matplotlib figure (the static fallback); see :func:`tpslab.viz.explorer_figure`."""
    return viz.explorer_figure(dataset, video, frame, human=human, **show)


class Explorer:
    """Browse a :class:`tpslab.dataset.TPSDataset` frame by frame.

    ``video``/``frame`` choose the first view (default: the first video of the first class, its
    first annotated frame); ``interval_ms`` is the play speed; ``dpi`` the resolution of the picture.
    Display the explorer by leaving it as a cell's last expression (or ``display(explorer)``).

    The controls are attributes: ``class_select``, ``video_select``, ``frame_slider``, ``play``,
    ``human_select`` (the human slot whose timeline is shown), ``overlays`` (dict of checkboxes by
    ``draw_frame`` keyword); ``image`` holds the rendered PNG, ``info`` a one-line description.
    After each change ``figure`` is the figure that was rendered and ``frame_image`` the RGB frame shown.
    """

    def __init__(self, dataset, *, video: str | None = None, frame: int | None = None, interval_ms: int = 250,
                 dpi: int = viz.NOTEBOOK_DPI):
        import ipywidgets as W

        self.dataset = dataset
        self.dpi = dpi
        self.figure = None
        self.frame_image = None
        self._reader = None
        self._reader_video = None
        self._quiet = False  # set while several controls change at once, so the view renders once

        videos = dataset.videos
        labels = sorted(str(lab) for lab in videos["label"].dropna().unique())
        if not labels:
            raise ValueError(f"the dataset at {dataset.root} has no labelled videos to explore")
        if video is not None:
            dataset.video_info(video)  # KeyError naming an unknown video
        start_label = str(dataset.video_info(video)["label"]) if video is not None else labels[0]

        self.class_select = W.Dropdown(options=labels, value=start_label, description="class")
        self.video_select = W.Dropdown(options=self._video_options(start_label), description="video",
                                       layout=W.Layout(width="480px"))
        self.frame_slider = W.IntSlider(min=1, max=1, value=1, description="frame", continuous_update=False,
                                        layout=W.Layout(width="420px"))
        self.play = W.Play(min=1, max=1, value=1, step=1, interval=interval_ms, description="play")
        # a kernel-side link: playing moves the slider, and the slider's observer redraws
        W.link((self.play, "value"), (self.frame_slider, "value"))
        self.human_select = W.Dropdown(options=[0], value=0, description="timeline of",
                                       layout=W.Layout(width="200px"))
        self.overlays = {key: W.Checkbox(value=True, description=label, indent=False,
                                         layout=W.Layout(width="120px")) for key, label in OVERLAYS}
        self.image = W.Image(format="png")
        self.info = W.HTML()

        self.class_select.observe(self._on_class, names="value")
        self.video_select.observe(self._on_video, names="value")
        self.frame_slider.observe(self._on_view, names="value")
        self.human_select.observe(self._on_view, names="value")
        for box in self.overlays.values():
            box.observe(self._on_view, names="value")

        self.widget = W.VBox([
            W.HBox([self.class_select, self.video_select]),
            W.HBox([self.play, self.frame_slider, self.human_select]),
            W.HBox(list(self.overlays.values())),
            self.info,
            self.image,
        ])
        self._select_video(video if video is not None else self.video_select.value, frame)

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        """The widget, plus its current picture (``image/png``) for whatever cannot show widgets."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if self.image.value:
            bundle["image/png"] = base64.b64encode(bytes(self.image.value)).decode("ascii")
            bundle["text/plain"] = (f"Explorer of {self.video_select.value}, frame {self.frame_slider.value} (the "
                                    "controls need a running kernel; the picture is the current view)")
        return bundle

    def static(self):
        """The current view as a matplotlib figure (for rendered notebooks without a kernel)."""
        return static_view(self.dataset, self.video_select.value, self.frame_slider.value,
                           human=self.human_select.value, **self.show)

    @property
    def show(self) -> dict:
        """The overlay switches as ``draw_frame`` keywords."""
        return {key: box.value for key, box in self.overlays.items()}

    # ------------------------------------------------------------------ selection
    def _video_options(self, label: str) -> list[tuple[str, str]]:
        videos = self.dataset.videos
        rows = videos[videos["label"].astype(str) == label].sort_values(["split", "video"], kind="stable")
        return [(f"{r.video} ({r.split}, {r.num_annotated_frames} annotated frames)", r.video)
                for r in rows.itertuples(index=False)]

    def _on_class(self, change) -> None:
        options = self._video_options(change["new"])
        self._quiet = True
        try:
            self.video_select.options = options  # selects the first option, firing _on_video
        finally:
            self._quiet = False
        self._select_video(self.video_select.value, None)

    def _on_video(self, change) -> None:
        if not self._quiet and change["new"] is not None:
            self._select_video(change["new"], None)

    def _on_view(self, change) -> None:
        if not self._quiet:
            self.render()

    def _open(self, video: str):
        from tpslab.video import open_video

        if self._reader_video != video:
            if self._reader is not None:
                self._reader.close()
            self._reader = open_video(self.dataset.video_info(video)["path"])
            self._reader_video = video
        return self._reader

    def _select_video(self, video: str, frame: int | None) -> None:
        """Point every control at ``video`` (and ``frame``, default its first annotated frame), then render once."""
        reader = self._open(video)
        n = viz.video_length(self.dataset, video, reader)
        annotated = self.dataset.frames_of(video)["frame"].to_numpy()
        if frame is None:
            frame = int(annotated.min()) if len(annotated) else 1
        if not 1 <= frame <= n:
            raise ValueError(f"frame {frame} is outside 1..{n} of video {video}")
        slots = self.dataset.humans_of(video)["human"].to_numpy()
        self._quiet = True
        try:
            if self.video_select.value != video:
                self.video_select.value = video
            # widen before narrowing so the value never falls outside the range in between
            for control in (self.frame_slider, self.play):
                control.max = max(n, control.max)
                control.value = frame
                control.min, control.max = 1, n
            self.human_select.options = list(range(int(slots.max()) + 1)) if len(slots) else [0]
            self.human_select.value = 0
        finally:
            self._quiet = False
        self.render()

    # ------------------------------------------------------------------ drawing
    def render(self) -> None:
        """Draw the current selection into ``image`` (and ``figure``, ``frame_image``, ``info``)."""
        import matplotlib.pyplot as plt

        video, frame = self.video_select.value, self.frame_slider.value
        reader = self._open(video)
        fig = viz.explorer_figure(self.dataset, video, frame, human=self.human_select.value, reader=reader,
                                  **self.show)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=self.dpi, bbox_inches="tight")
        plt.close(fig)  # keep pyplot (and the inline backend) from showing it a second time
        self.figure = fig
        self.frame_image = fig.axes[0].images[0].get_array()
        png = buffer.getvalue()
        # show the picture at its own pixel size (the page would otherwise stretch and blur it)
        width, height = struct.unpack(">II", png[16:24])
        self.image.width, self.image.height = str(width), str(height)
        self.image.value = png
        info = self.dataset.video_info(video)
        annotated = int(frame) in set(self.dataset.frames_of(video)["frame"].tolist())
        self.info.value = (f"<b>{info['label']}</b> &middot; {video} &middot; {info['split']} &middot; "
                           f"frame {frame} of {len(reader)} &middot; "
                           + ("annotated" if annotated else "<i>no annotation on this frame</i>"))

    def close(self) -> None:
        """Close the video reader and the widgets."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._reader_video = None
        self.widget.close()
