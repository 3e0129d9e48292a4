"""Frame-exact video access: ``open_video`` and its backends (decord, PyAV, rawframes).

Frame index ``i`` is the ``i``-th frame a player shows (0-based, presentation order, after the
file's edit list). Kinetics-TPS names frames from 1: ``img_00001.json`` annotates index 0; the
helpers :func:`frame_index`, :func:`frame_name`, :func:`frame_number_to_index` and
:func:`index_to_frame_number` convert.

Backends:

- ``pyav``: the reference. A packet scan (:func:`probe`, no decoding) lists the presentation time of
  every shown frame; ``get`` seeks to the keyframe before each wanted frame and decodes up to it.
  Where the file's timestamps cannot place frames (some are missing, or an AVI with B-frames, whose
  times FFmpeg can only guess: packed B-frames of MPEG-4 Part 2 decode with times out of order),
  frames are numbered in the decoder's output order, decoding from the start of the file.
- ``decord``: faster random access, but wrong on many files: it counts and indexes every coded frame,
  including frames an mp4 edit list hides (files cut by stream copy), and its seeks land on wrong
  frames in AVI, MPEG-TS and MPEG-PS files with B-frames, in HEVC and MPEG-4 Part 2 mp4s, and in H.264
  whose keyframes are not all IDR pictures (open GOPs, intra refresh: the probe counts them); it
  cannot open some codecs (AV1). It is used only for the container and codec pairs in
  :data:`DECORD_VERIFIED`, whose every frame the test suite checks, and only after the probe shows
  the file is safe for it. decord and decord2 (a fork with the same import name) must not be
  installed together; with both, or with neither, the backend raises ImportError.
- ``auto`` (default): decord where the probe and decord agree, PyAV otherwise (``fallback_reason``
  says why). The probe costs a few milliseconds per open; :func:`probe_cached` remembers it per
  process while the file is unchanged.
- ``rawframes``: a folder of ``img_%05d.jpg`` (mmaction2 extraction); a 0-based folder is reported.

Every failure to read a file (missing, empty, truncated, corrupt, no video stream) raises
:class:`VideoError` naming the file and the reason. Decoding libraries are imported lazily.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from tpslab.challenge import FRAME_NAME, frame_number_to_index, frame_stem, index_to_frame_number  # noqa: F401
from tpslab.challenge import FRAME_STEM as FRAME_TEMPLATE  # noqa: F401 (re-exported)

BACKENDS = ("auto", "decord", "pyav", "rawframes")
#: FFmpeg container name -> codecs on which decord's random access is checked frame by frame
#: (tests/test_video.py); decord is refused for every other kind of file.
DECORD_VERIFIED = {
    "mov,mp4,m4a,3gp,3g2,mj2": frozenset({"h264"}),
    "matroska,webm": frozenset({"h264", "vp8", "vp9"}),
}


class VideoError(RuntimeError):
    """A video (or frame folder) that cannot be read frame-exactly; ``path`` names it, ``reason`` says why.

    ``VideoError(message)`` with one argument is the form torch's DataLoader uses to re-raise an
    error from a worker (its message holds the worker's traceback, which names the file): the type
    is kept, so ``except VideoError`` still catches it; ``path`` is then None.
    """

    def __init__(self, path, reason: str | None = None):
        if reason is None:
            self.path, self.reason = None, str(path)
            super().__init__(self.reason)
            return
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep (path, reason) across process pools
        return (type(self), (self.reason,) if self.path is None else (self.path, self.reason))


# ----------------------------------------------------------------------------- frame numbering


def frame_name(index: int, ext: str | None = "jpg") -> str:
    """The release's name of decoded frame ``index``: ``frame_name(0) == "img_00001.jpg"``.

    ``ext=None`` gives the bare stem (``img_00001``), ``ext="json"`` the annotation file.
    """
    stem = frame_stem(index_to_frame_number(index))
    return stem if ext is None else f"{stem}.{ext.lstrip('.')}"


def frame_index(name) -> int:
    """The decoded index a release frame name refers to: ``img_00001.json`` (or a path to it) -> 0."""
    match = FRAME_NAME.match(Path(str(name)).name)
    if not match:
        raise ValueError(f"{name!r} is not a frame name like img_00001.json")
    return frame_number_to_index(int(match.group(1)))


def list_frame_files(folder) -> dict[int, str]:
    """The frame images in ``folder``: {number in the name: file name} for ``img_NNNNN.jpg|jpeg|png``."""
    numbers = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            match = FRAME_NAME.match(entry.name)
            if match and entry.name.lower().endswith((".jpg", ".jpeg", ".png")):
                numbers[int(match.group(1))] = entry.name
    return numbers


# EXIF orientations (tag 0x0112) that turn the picture a quarter: its shown width is the stored height.
_EXIF_QUARTER_TURNS = {5, 6, 7, 8}


def _exif_orientation(img) -> int:
    return img.getexif().get(0x0112, 1)


def read_frame_image(path) -> np.ndarray:
    """A frame image as RGB (h, w, 3) uint8, turned or mirrored as its EXIF orientation says, as image
    viewers and the detector toolchains (OpenCV's imread, detectron2) show it. tpslab writes none; another
    tool's frames may carry one. Raises OSError or PIL's UnidentifiedImageError for a file it cannot read."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        shown = ImageOps.exif_transpose(img) if _exif_orientation(img) != 1 else img
        return np.asarray(shown.convert("RGB"))


def frame_image_size(path) -> tuple[int, int]:
    """``(width, height)`` of a frame image as :func:`read_frame_image` gives it, from its header only."""
    from PIL import Image

    with Image.open(path) as img:
        width, height = img.size
        return (height, width) if _exif_orientation(img) in _EXIF_QUARTER_TURNS else (width, height)


def short_side_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """The ``(width, height)`` of a ``width`` x ``height`` frame resized so that its shorter side has
    ``short_side`` pixels (the longer side rounded, at least 1; a square frame gets ``short_side`` both)."""
    scale = short_side / min(width, height)
    return (short_side, max(1, round(height * scale))) if width <= height else \
        (max(1, round(width * scale)), short_side)


# ----------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class VideoInfo:
    """What a packet scan of a video file tells without decoding.

    ``pts`` holds the presentation time (stream time base) of each shown frame in order, so
    ``len(pts)`` is the number of frames a player shows; ``hidden_frames`` counts coded frames that
    the file's edit list hides (nonzero for mp4 files cut by stream copy). ``seek_pts[i]`` is the
    decode timestamp of the keyframe to seek to for frame ``i`` (its presentation time where the
    file stores none, as Matroska with B-frames), ``gop[i]`` that keyframe's position in
    ``key_pts`` (the keyframes' presentation times, sorted). The arrays are None when the file's
    timestamps cannot place frames; ``untrusted_times`` then says why, and frames are numbered in
    the decoder's output order (only sequential decoding is exact). ``container`` is FFmpeg's name
    of the file format (``avi``, ``matroska,webm``, ...), ``codec`` that of the video codec.
    ``display`` is the file's display matrix ``(a, b, c, d)`` where it turns or mirrors the picture
    (phone videos: a quarter turn), else None; ``width`` and ``height`` are then those of the picture as
    players show it, turned, and so are the frames every reader returns (see :func:`displayed`).
    ``non_idr_keys`` counts the H.264 and HEVC keyframes that are not IDR pictures (open GOPs, intra refresh,
    HEVC's CRA pictures): a decoder that starts at one cannot show some frames near it (PyAV seeks to an
    earlier keyframe).
    """

    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    codec: str
    hidden_frames: int
    coded_frames: int
    pts: np.ndarray | None
    seek_pts: np.ndarray | None
    gop: np.ndarray | None
    key_pts: np.ndarray | None
    container: str = ""
    untrusted_times: str | None = None
    display: tuple[int, int, int, int] | None = None
    non_idr_keys: int = 0


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(path, "file not found")
    if path.is_dir():
        raise VideoError(path, "is a folder, not a video file (frame folders use backend='rawframes')")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")


def _open_container(path: Path):
    import av

    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoError(path, f"cannot open ({_reason(err)}); truncated, corrupt or not a video") from None
    if not container.streams.video:
        container.close()
        raise VideoError(path, "no video stream")
    return container


#: Largest picture tpslab decodes, in pixels: 8K UHD (7680 x 4320). A larger one is refused by :func:`probe`
#: (a 560 KB file of 16000 x 16000 frames took 2.4 GB to extract one frame at a time); raise it to read such
#: files on purpose.
MAX_FRAME_PIXELS = 7680 * 4320
_ATTACHED_PIC = 0x400  # FFmpeg's AV_DISPOSITION_ATTACHED_PIC: a cover picture, not a video stream


def _video_stream(container, path: Path):
    """The file's one video stream (cover pictures aside). A file with several is refused: players show
    the one marked default, decord picks its own and PyAV the first, so no choice would be sure to be the
    one the annotations were made on."""
    streams = [s for s in container.streams.video if not int(getattr(s, "disposition", 0)) & _ATTACHED_PIC]
    if len(streams) > 1:
        codecs = ", ".join(s.codec_context.name for s in streams)
        raise VideoError(path, f"holds {len(streams)} video streams ({codecs}); tpslab reads files with one, as "
                               "players may show any of them: keep the one to read with `ffmpeg -i FILE -map 0:v:N "
                               "-map 0:a? -c copy OUT`")
    if not streams:
        raise VideoError(path, "no video stream (only a cover picture)")
    return streams[0]


def _reason(err: Exception) -> str:
    strerror = getattr(err, "strerror", None)
    return strerror or str(err) or type(err).__name__


def _quarter_turn(display: tuple[int, int, int, int] | None) -> bool:
    """Whether a display matrix turns the picture by a quarter (players show it the other way up)."""
    return display is not None and display[0] == 0


def displayed(image: np.ndarray, display: tuple[int, int, int, int] | None) -> np.ndarray:
    """``image`` (rows, columns, ...) as players show it: turned and mirrored by the file's display matrix
    ``display`` = (a, b, c, d), which maps a stored pixel (x, y) to (a x + c y, b x + d y), as FFmpeg's
    autorotation applies it (checked pixel for pixel against the ffmpeg command for every quarter turn with
    and without mirroring). None: as stored."""
    if display is None:
        return image
    a, b, c, d = display
    if a:  # no quarter turn: mirrors only
        out = image[:, ::-1] if a < 0 else image
        out = out[::-1] if d < 0 else out
    else:
        out = image.swapaxes(0, 1)
        out = out[::-1] if b < 0 else out
        out = out[:, ::-1] if c < 0 else out
    return np.ascontiguousarray(out)


def _first_frame(stream, packets: list):
    """The first frame the stream's first ``packets`` decode to (None if none does: reading says why)."""
    import av

    ctx = stream.codec_context
    ctx.thread_count = 1  # one frame to decode: no pool of threads to start
    try:
        for packet in [*packets, None]:  # None flushes the decoder
            frame = next(iter(ctx.decode(packet)), None)
            if frame is not None:
                return frame
    except av.FFmpegError:
        pass
    return None


def _display_matrix(path: Path, frame) -> tuple[int, int, int, int] | None:
    """The display matrix of the stream, from its first decoded frame (PyAV exposes it on frames only):
    None where it leaves the picture as stored; a VideoError for a turn that is not a quarter turn."""
    matrix = None if frame is None else next(
        (bytes(sd) for sd in frame.side_data if str(sd.type).rsplit(".", 1)[-1] == "DISPLAYMATRIX"), None)
    if matrix is None or len(matrix) != 36:
        return None
    m = np.frombuffer(matrix, "<i4")
    a, b, c, d = (int(v) for v in m[[0, 1, 3, 4]])
    unit = 1 << 16  # 16.16 fixed point
    quarter = {abs(a), abs(b), abs(c), abs(d)} == {0, unit} and (a == 0) == (d == 0) and (b == 0) == (c == 0) \
        and (a == 0) != (b == 0)  # a mirror, a quarter turn, or both: each pixel lands on a pixel
    if not quarter:
        angle = getattr(frame, "rotation", None)
        raise VideoError(path, f"its display matrix turns the picture{f' by {angle} degrees' if angle else ''}, "
                               "which tpslab does not apply (quarter turns and mirrors only): re-encode it with "
                               "ffmpeg, which applies it")
    display = (a // unit, b // unit, c // unit, d // unit)
    return None if display == (1, 0, 0, 1) else display


# Keyframes a decoder can start at and show every later frame: H.264 IDR pictures (NAL unit type 5); HEVC IDR
# and BLA pictures (16-20). Others, flagged keyframes all the same (H.264 open-GOP I pictures and intra-refresh
# recovery points, HEVC CRA pictures), have frames near them that need what came before.
_CLEAN_START = {"h264": frozenset({5}), "hevc": frozenset(range(16, 21))}


def _nal_length(codec: str, extradata: bytes | None) -> int | None:
    """The size of the NAL unit lengths of H.264/HEVC packets (avcC/hvcC extradata: mp4, mov, mkv), or None
    where the packets carry start codes (Annex B: ts, raw streams)."""
    at = {"h264": 4, "hevc": 21}[codec]  # lengthSizeMinusOne's byte in avcC / hvcC
    if extradata and len(extradata) > at and extradata[0] == 1:
        return (extradata[at] & 3) + 1
    return None


def _nal_types(data, nal_length: int | None, codec: str):
    """The NAL unit types in an H.264/HEVC packet."""
    data = bytes(data)
    kind = (lambda b: b & 0x1F) if codec == "h264" else (lambda b: (b >> 1) & 0x3F)
    if nal_length is None:
        at = data.find(b"\x00\x00\x01")
        while 0 <= at < len(data) - 3:
            yield kind(data[at + 3])
            at = data.find(b"\x00\x00\x01", at + 3)
        return
    at = 0
    while at + nal_length < len(data):
        yield kind(data[at + nal_length])
        at += nal_length + int.from_bytes(data[at:at + nal_length], "big")


def _scan_packets(path: Path, container, stream) -> tuple[list, list, list, list, list, list]:
    """Presentation times, decoding times, keyframe and hidden flags of the stream's packets, its first 16
    packets (to decode one frame from), and for H.264 and HEVC whether each keyframe holds an IDR picture (or a
    BLA picture, HEVC's other clean start; else [])."""
    import av

    pts, dts, key, hidden, first, idr = [], [], [], [], [], []
    codec = stream.codec_context.name
    clean = _CLEAN_START.get(codec)
    nal_length = _nal_length(codec, stream.codec_context.extradata) if clean else None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if packet.is_corrupt:
                raise VideoError(path, f"packet {len(pts)} is cut short or corrupt (truncated file?)")
            pts.append(packet.pts)
            dts.append(packet.dts)
            key.append(packet.is_keyframe)
            hidden.append(packet.is_discard)
            if clean and packet.is_keyframe:
                idr.append(not clean.isdisjoint(_nal_types(packet, nal_length, codec)))
            if len(first) < 16:
                first.append(packet)
    except av.FFmpegError as err:
        raise VideoError(path, f"cannot read packet {len(pts)}: {_reason(err)}") from None
    return pts, dts, key, hidden, first, idr


def _whole_count(path: Path, fmt: str, announced: int, pts: list, dts: list, hidden: list) -> int:
    """The coded frames of a file whose packets reach what its header announces; a VideoError where they
    fall short (a truncated file)."""
    coded = len(pts)
    if announced and announced != coded:
        if fmt == "avi" and dts[0] == 0 and dts[-1] is not None:
            # AVI decode times number the chunks; the header counts empty ones too (dropped frames,
            # during which a player holds the previous frame), which decode to nothing
            whole = dts[-1] + 1
        else:  # FFmpeg drops coded frames far outside an edit list; count them all
            coded = whole = _count_packets(path) if any(hidden) else coded
        if whole != announced:
            raise VideoError(path, f"header announces {announced} frames but the file holds {whole} "
                                   "(truncated file?)")
    return coded


def _untrusted_times(fmt: str, reorders: bool, pts: list, dts: list) -> str | None:
    """Why the packets' presentation times cannot give the frames' order (None where they can)."""
    if any(p is None for p in pts):
        return "some frames lack presentation times"
    if fmt == "avi" and pts != dts:
        return ("an AVI stores no presentation times, and this one reorders frames (B-frames): "
                "FFmpeg's guessed times do not follow the decoded frames")
    if reorders and len(pts) > 1 and any(d is not None for d in dts) and \
            all(d is None or p == d for p, d in zip(pts, dts)):  # (Matroska may store no decoding times)
        return ("its presentation times equal its decoding times, though its frames may be reordered "
                "(B-frames): the times do not give the frames' order (a raw stream muxed without times?)")
    return None


def probe(path) -> VideoInfo:
    """Scan the packets of ``path``'s video stream and check the file is whole (one frame is decoded, for the
    display matrix only PyAV's frames show, and its size).

    Raises :class:`VideoError` for a file with several video streams (cover pictures aside), pictures beyond
    :data:`MAX_FRAME_PIXELS`, pictures the stream crops on the left or top (the decoders leave that crop
    undone), a stream without times that starts at a keyframe that is not an IDR picture (cut by stream
    copy in an open GOP), and a missing, empty, unreadable or truncated file (fewer packets
    than the header announces, or a packet cut short). An AVI header counts empty chunks too
    (dropped frames, during which a player holds the previous one): ``num_frames`` counts the
    frames that decode, and the file is whole when its chunks reach the announced count.
    """
    path = Path(path)
    container = _open_container(path)
    with container:
        stream = _video_stream(container, path)
        pts, dts, key, hidden, first, idr = _scan_packets(path, container, stream)
        announced = stream.frames
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else float("nan")
        width, height, codec = ctx.width, ctx.height, ctx.name
        reorders = bool(getattr(ctx, "has_b_frames", False))
        fmt = container.format.name
        if width * height > MAX_FRAME_PIXELS:
            raise VideoError(path, f"frames of {width}x{height} ({width * height * 3 / 2**30:.1f} GiB each as RGB) are "
                                   f"beyond the {MAX_FRAME_PIXELS / 1e6:.1f} megapixels tpslab decodes; raise "
                                   "tpslab.video.MAX_FRAME_PIXELS (8K by default) to read it on purpose")
        frame = _first_frame(stream, first) if pts else None
        if frame is not None and 0 < width <= frame.width and 0 < height <= frame.height and \
                (frame.width, frame.height) != (width, height):
            # H.264 frame cropping on the left or top: FFmpeg's decoders leave it to the player (ffmpeg's filters)
            raise VideoError(path, f"its stream crops its pictures to {width}x{height} on the left or top, which the "
                                   f"decoders leave undone (they hand out {frame.width}x{frame.height}): tpslab cannot "
                                   "read it as players show it; re-encode it (ffmpeg applies the crop)")
        display = _display_matrix(path, frame)
        if _quarter_turn(display):
            width, height = height, width

    if not pts:
        raise VideoError(path, "no video frames")
    coded = _whole_count(path, fmt, announced, pts, dts, hidden)
    if not key[0]:
        # What decoders show before the first keyframe differs between tools: refuse to guess.
        raise VideoError(path, "the stream does not start with a keyframe (corrupt or badly cut file)")
    num_shown = len(pts) - int(np.sum(hidden))
    non_idr = len(idr) - sum(idr)
    untrusted = _untrusted_times(fmt, reorders, pts, dts)
    if untrusted:
        if idr and not idr[0] and reorders:
            # (with times, the frames shown before the first keyframe are found below)
            raise VideoError(path, "the stream starts at a keyframe that is not an IDR picture and may show frames "
                                   "that depend on what came before it (cut by stream copy?): which of them "
                                   "decode differs between tools; re-encode it, or cut it at an IDR picture")
        return VideoInfo(str(path), num_shown, fps, width, height, codec, coded - num_shown, coded,
                         None, None, None, None, fmt, untrusted, display, non_idr)

    pts_all = np.asarray(pts, dtype=np.int64)
    # Matroska stores no decode times with B-frames; its seek index holds presentation times. Any
    # seek target is safe: a seek that lands past a wanted frame is seen, and the frame is decoded
    # from the start of the file instead.
    dts_all = np.asarray([p if d is None else d for p, d in zip(pts, dts)], dtype=np.int64)
    key_all = np.asarray(key, dtype=bool)
    shown = ~np.asarray(hidden, dtype=bool)
    shown_pts = np.sort(pts_all[shown])
    if len(np.unique(shown_pts)) != len(shown_pts):
        raise VideoError(path, "two frames share one presentation time; the frame order is ambiguous")
    # Keyframes in presentation order; frame i decodes from the last keyframe shown at or before it.
    key_order = np.argsort(pts_all[key_all], kind="stable")
    key_pts = pts_all[key_all][key_order]
    key_dts = dts_all[key_all][key_order]
    gop = np.searchsorted(key_pts, shown_pts, side="right") - 1
    if np.any(gop < 0):
        raise VideoError(path, "frames shown before the first keyframe cannot be decoded")
    return VideoInfo(str(path), num_shown, fps, width, height, codec, coded - num_shown, coded,
                     shown_pts, key_dts[gop], gop, key_pts, fmt, display=display, non_idr_keys=non_idr)


@functools.lru_cache(maxsize=2048)
def _probe_cached(path: str, size: int, mtime_ns: int) -> VideoInfo:
    return probe(path)


def probe_cached(path) -> VideoInfo:
    """:func:`probe`, remembered in this process while the file keeps its size and modification time.

    Readers opened by :func:`open_video` use it, so a video read again (another clip, the next
    epoch) skips the packet scan. Failures are not remembered. :func:`clear_probe_cache` forgets all.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return probe(path)  # raises the VideoError that names the problem
    return _probe_cached(str(path), st.st_size, st.st_mtime_ns)


def clear_probe_cache() -> None:
    _probe_cached.cache_clear()


def _count_packets(path: Path) -> int:
    """Whole coded frames in the file's video stream, edit list ignored (mp4 demuxer option)."""
    import av

    try:
        with av.open(str(path), options={"ignore_editlist": "1"}) as container:
            count = 0
            for packet in container.demux(_video_stream(container, path)):
                if packet.size and not packet.is_corrupt:
                    count += 1
            return count
    except av.FFmpegError as err:
        raise VideoError(path, f"cannot read packets: {_reason(err)}") from None


# ----------------------------------------------------------------------------- readers


class VideoReader:
    """Common face of the backends: ``len(reader)``, ``fps``, ``size`` = (width, height), ``get``.

    Readers hold open decoders: open one per process (e.g. per DataLoader worker); they refuse pickling.
    """

    backend = "?"

    def __init__(self, path, num_frames: int, fps: float | None, width: int, height: int):
        self.path = str(path)
        self._num_frames = int(num_frames)
        self.fps = fps
        self.size = (int(width), int(height))

    def __len__(self) -> int:
        return self._num_frames

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.path!r}, frames={len(self)}, fps={self.fps}, "
                f"size={self.size[0]}x{self.size[1]})")

    def __getstate__(self):
        raise TypeError(f"{type(self).__name__} holds an open decoder and cannot be pickled; "
                        "open the video inside each worker instead")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        pass

    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim == 0:
            idx = idx.reshape(1)
        if idx.ndim != 1:
            raise ValueError(f"{self.path}: frame indices must be a 1-d sequence, got shape {idx.shape}")
        if idx.size and idx.dtype.kind not in "iu":
            raise TypeError(f"{self.path}: frame indices must be integers, got {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        bad = idx[(idx < 0) | (idx >= len(self))]
        if bad.size:
            raise IndexError(f"{self.path}: frame index {int(bad[0])} is outside 0..{len(self) - 1} "
                             f"(the video shows {len(self)} frames)")
        return idx

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 RGB, shape (T, H, W, 3)."""
        idx = self._check_indices(indices)
        if idx.size == 0:
            return np.empty((0, self.height, self.width, 3), dtype=np.uint8)
        return self._get(idx)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.get([index])[0]

    def _get(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class PyAVReader(VideoReader):
    """Frame-exact reader on PyAV (FFmpeg): seeks to the keyframe before each wanted frame, or goes on
    decoding from where the previous call stopped when the wanted frame lies ahead in a GOP it reached
    (reading frame after frame decodes each frame once).

    ``thread_type`` is FFmpeg's decoder threading (``AUTO``: frame and slice threads; ``NONE`` for one
    thread, e.g. with many DataLoader workers).
    """

    backend = "pyav"

    def __init__(self, path, info: VideoInfo | None = None, thread_type: str = "AUTO"):
        info = info or probe_cached(path)
        self.thread_type = thread_type
        super().__init__(info.path, info.num_frames, info.fps, info.width, info.height)
        self.info = info
        # (width, height) of the frames as decoded, before the display matrix turns them
        self._stored_size = (self.height, self.width) if _quarter_turn(info.display) else (self.width, self.height)
        self._live = None  # (frames, pts of the last one taken, GOP reached): decoding the last call left
        self._open()

    def _open(self) -> None:
        self._container = _open_container(Path(self.path))
        try:
            self._stream = _video_stream(self._container, Path(self.path))
        except VideoError:
            self._container.close()
            raise
        self._stream.thread_type = self.thread_type

    def close(self) -> None:
        self._live = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def _to_rgb(self, frame) -> np.ndarray:
        return displayed(frame.to_ndarray(format="rgb24"), self.info.display)

    def _whole(self, frame, index: int, damage=None):
        """``frame``, unless the decoder had to conceal errors in it or in a frame it may depend on (``damage``,
        that frame's time: see :func:`_decoded`; damaged data would be junk pixels) or it is not of the
        video's size (a stream whose picture size changes: frames of two sizes, boxes that fit one of them)."""
        if frame.is_corrupt:
            raise VideoError(self.path, f"frame {index} is damaged: the decoder concealed errors in it "
                                        "(corrupt file?)")
        if damage is not None:
            raise VideoError(self.path, f"frame {index} may depend on {self._frame_at(damage)}, which is damaged: "
                                        "the decoder concealed errors in it and carries them on (corrupt file?)")
        size = self._stored_size
        if (frame.width, frame.height) != size:
            raise VideoError(self.path, f"frame {index} is {frame.width}x{frame.height} where the video's first frames "
                                        f"are {size[0]}x{size[1]}: the picture size changes mid-stream; re-encode it "
                                        "at one size (ffmpeg scales every frame to the first's)")
        return frame

    def _frame_at(self, pts) -> str:
        pts_all = self.info.pts
        if pts_all is not None and pts is not None:
            i = int(np.searchsorted(pts_all, pts))
            if i < len(pts_all) and pts_all[i] == pts:
                return f"frame {i}"
        return "an earlier frame"

    def _decode_from(self, seek_to: int | None) -> Iterator:
        """(frame, packet) pairs decoded after seeking, now, to decode time ``seek_to``.

        ``seek_to=None`` reopens the file and decodes from its first packet. Decoding left live by an
        earlier call ends here: the container has moved.
        """
        import av

        if self._container is None:
            raise VideoError(self.path, "reader is closed")
        self._live = None
        try:
            if seek_to is None:
                self._container.close()
                self._open()
            else:
                self._container.seek(seek_to, stream=self._stream, backward=True, any_frame=False)
        except av.FFmpegError as err:
            raise VideoError(self.path, f"decoding failed: {_reason(err)}") from None
        info = self.info
        return _decoded(self._container, self._stream, self.path,
                        idr_resets=info.codec in ("h264", "hevc") and not info.non_idr_keys)

    def _frames_toward(self, i: int) -> tuple[Iterator, int]:
        """(frames, GOP reached) to decode frame ``i`` from: the decoding the previous call left live when
        ``i`` lies ahead of it in a GOP it reached, else decoding after a seek to ``i``'s keyframe."""
        info = self.info
        live, self._live = self._live, None
        if live is not None and live[1] < info.pts[i] and info.gop[i] <= live[2]:
            return live[0], live[2]
        return self._decode_from(int(info.seek_pts[i])), int(info.gop[i])

    def _get(self, idx: np.ndarray) -> np.ndarray:
        wanted = np.unique(idx)
        if self.info.pts is None:
            got = self._get_sequential(wanted)
        else:
            got = self._get_seeking(wanted)
            missing = [i for i in wanted.tolist() if i not in got]
            if missing:  # a seek landed past a wanted frame: decode those from the start
                got.update(self._get_sequential(np.asarray(missing)))
        out = np.empty((len(idx), self.height, self.width, 3), dtype=np.uint8)
        for k, i in enumerate(idx.tolist()):
            out[k] = got[i]
        return out

    def _get_seeking(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        """Decode the sorted frames ``wanted``, seeking only when the next one lies in a later GOP.

        Returns what it found; a frame the decoder passed without showing is left out.
        """
        info = self.info
        pts, gop = info.pts, info.gop
        got: dict[int, np.ndarray] = {}
        k = 0
        while k < len(wanted):
            frames, reached_gop = self._frames_toward(int(wanted[k]))
            for frame, packet, damage in frames:
                if frame.pts is not None:
                    if frame.pts > pts[wanted[k]]:
                        return got
                    if frame.pts == pts[wanted[k]]:
                        got[int(wanted[k])] = self._to_rgb(self._whole(frame, int(wanted[k]), damage))
                        k += 1
                        if k == len(wanted):
                            self._live = (frames, frame.pts, reached_gop)  # the next call may go on from here
                            return got
                if packet.is_keyframe and packet.pts is not None:
                    reached_gop = max(reached_gop, int(np.searchsorted(info.key_pts, packet.pts)))
                if gop[wanted[k]] > reached_gop:
                    break  # decoding on to a later GOP costs more than seeking to it
            else:
                return got
        return got

    def _get_sequential(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        want = set(int(i) for i in wanted)
        got: dict[int, np.ndarray] = {}
        for i, frame in enumerate(self._iter_decoded(stop=max(want) + 1)):
            if i in want:
                got[i] = self._to_rgb(frame)  # only the wanted frames are converted (_iter_decoded checked them)
        missing = sorted(want - set(got))
        if missing:
            raise VideoError(self.path, f"frame {missing[0]} did not decode (corrupt file?)")
        return got

    def _iter_decoded(self, stop: int | None = None) -> Iterator:
        """FFmpeg frames of shown frames 0, 1, ... (up to ``stop``), checked against the probe.

        Without trusted timestamps, frames are numbered in the decoder's output order, and a file
        that decodes to more frames than the probe counted is refused once decoding gets there.
        """
        stop = len(self) if stop is None else min(stop, len(self))
        pts = self.info.pts
        n = 0
        for frame, _, damage in self._decode_from(None):
            if n >= stop:
                if pts is None and n == len(self):
                    raise VideoError(self.path, f"decodes to more frames than the {n} its packets count; "
                                                "the frame numbering cannot be trusted")
                return
            # Frames the edit list hides are dropped by FFmpeg; skip any that slip through.
            if pts is not None and frame.pts != pts[n]:
                if frame.pts is not None and frame.pts < pts[n]:
                    continue
                raise VideoError(self.path, f"frame {n} did not decode (got time {frame.pts}, "
                                            f"expected {pts[n]}; corrupt file?)")
            yield self._whole(frame, n, damage)
            n += 1
        if n < stop:
            why = f"; {self.info.untrusted_times}" if self.info.untrusted_times else " (corrupt or truncated file)"
            raise VideoError(self.path, f"only {n} of {stop} frames decoded{why}")

    def iter_frames(self, stop: int | None = None, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        """Decode shown frames 0, 1, ... (up to ``stop``) in order, as RGB arrays.

        ``size`` = (width, height) resizes each frame (bilinear, in FFmpeg). Raises
        :class:`VideoError` if the file decodes to fewer frames than the probe counted.
        """
        turned = _quarter_turn(self.info.display)
        for frame in self._iter_decoded(stop):
            if size is None:
                yield self._to_rgb(frame)
            else:  # scaled as stored, then turned: (width, height) is the size as shown
                width, height = (size[1], size[0]) if turned else size
                yield displayed(frame.reformat(width=width, height=height, format="rgb24",
                                               interpolation="BILINEAR").to_ndarray(), self.info.display)


# Frames _decoded holds back at most: a stream's reordering is a few frames; this bounds the memory where
# packet times are guesses (AVI) and never catch up.
_MAX_HELD = 32


def _decoded(container, stream, path: str, idr_resets: bool) -> Iterator:
    """(frame, packet, damage) triples of ``stream``, from where the container stands. A function, not a
    method: a reader keeps this generator for its next call, and a generator holding the reader would put
    the reader in a reference cycle, freed only by the garbage collector (in a forked DataLoader worker,
    freeing a decoder that way deadlocks).

    ``damage`` is None, or the time of a frame the decoder flagged as damaged (it concealed errors in it)
    that this frame may depend on. The decoder flags only the damaged frame itself; the frames that
    reference it come out with its errors unflagged. So a frame is handed on only once the decoder has
    shown every frame whose packet went in before the frame came out (those it can reference), and it
    carries the damage of any of them, or of any frame shown before it since decoding started here. With
    ``idr_resets`` (H.264/HEVC whose keyframes are all IDR pictures) a keyframe ends the damage: every frame
    before it is out, and nothing after it references them. Conservative: a clean frame near a damaged one
    may be refused (with frame threads, more packets are in when a frame comes out)."""
    import av

    held: deque = deque()  # [frame, packet, time of the last packet in when it came out, damage]
    sent = damage = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and (sent is None or packet.pts > sent):
                sent = packet.pts
            for frame in packet.decode():
                if idr_resets and frame.key_frame:  # all that came before is out, and nothing after needs it
                    yield from ((out, source, carried) for out, source, _, carried in held)
                    held.clear()
                    damage = None
                if frame.is_corrupt and damage is None:  # the frames held so far may depend on it too
                    damage = frame.pts
                    for entry in held:
                        if not (idr_resets and entry[0].key_frame):  # an IDR picture depends on nothing
                            entry[3] = damage
                held.append([frame, packet, sent, damage])
                while held and (frame.pts is None or held[0][2] is None or frame.pts >= held[0][2]
                                or len(held) > _MAX_HELD):
                    out, source, _, carried = held.popleft()
                    yield out, source, carried
    except av.FFmpegError as err:
        raise VideoError(path, f"decoding failed: {_reason(err)}") from None
    yield from ((out, source, carried) for out, source, _, carried in held)  # the end of the stream: all out


def count_frames(path) -> int:
    """Decode every frame of ``path`` (no colour conversion) and return how many a player shows.

    Slower than :func:`probe`, which counts packets; raises :class:`VideoError` when fewer frames
    decode than the file holds.
    """
    with PyAVReader(path) as reader:
        return sum(1 for _ in reader._iter_decoded())


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _decord_status():
    """(the decord module, None), or (None, why decord cannot be used); checked once per process."""
    if _installed("decord") and _installed("decord2"):
        return None, ("both decord and decord2 are installed: they share the import name 'decord' and "
                      "overwrite each other's files; keep one: pip uninstall -y decord decord2 && "
                      "pip install decord2")
    try:
        import decord
    except (ImportError, OSError) as err:  # not installed, or a broken install (a missing library)
        return None, (f"decord cannot be imported ({err}); install it (pip install decord2) or use "
                      "backend='pyav'")
    return decord, None


def _decord():
    """The decord module; ImportError saying why when it cannot be used."""
    module, problem = _decord_status()
    if problem is not None:
        raise ImportError(problem)
    return module


def _decord_refusal(info: VideoInfo) -> str | None:
    """Why decord would hand out wrong frames of the probed file, or None where it is verified."""
    if info.untrusted_times:  # first: it says why the file has no times, whatever its kind
        return f"its frames are numbered in decoding order ({info.untrusted_times}), which decord does not follow"
    if info.codec not in DECORD_VERIFIED.get(info.container, ()):
        return (f"decord's random access is not verified for {info.codec} video in {info.container} "
                "files (on several such kinds it returns wrong frames)")
    if info.hidden_frames:
        return f"its edit list hides {info.hidden_frames} coded frames, which decord would count and index"
    if info.non_idr_keys:
        return (f"{info.non_idr_keys} of its keyframes are not IDR pictures (open GOPs or intra refresh): decord "
                "seeks to them and hands out wrong frames near them")
    if info.display is not None:
        return "its display matrix turns or mirrors the picture, and decord ignores mirroring"
    return None


class DecordReader(VideoReader):
    """Reader on decord, used only for files where decord indexes frames as a player shows them.

    Built from a :func:`probe` result: refuses (VideoError) kinds of file outside
    :data:`DECORD_VERIFIED`, files whose edit list hides frames, and files where decord's frame count
    differs from the probe's. Raises ImportError when decord cannot be imported, or when both decord
    and decord2 are installed.
    """

    backend = "decord"

    def __init__(self, path, info: VideoInfo | None = None, **decord_kwargs):
        decord = self._decord = _decord()
        info = info or probe_cached(path)
        super().__init__(info.path, info.num_frames, info.fps, info.width, info.height)
        self.info = info
        self._vr = None
        refusal = _decord_refusal(info)
        if refusal:
            raise VideoError(self.path, f"{refusal}; read it with backend='pyav' or 'auto'")
        try:
            self._vr = decord.VideoReader(self.path, **decord_kwargs)
        except decord.DECORDError as err:
            raise VideoError(self.path, f"decord cannot open it ({_first_line(err)})") from None
        if len(self._vr) != info.num_frames:
            n = len(self._vr)
            self._vr = None
            raise VideoError(self.path, f"decord counts {n} frames where the file shows {info.num_frames}; "
                                        "read it with backend='pyav' or 'auto'")

    def close(self) -> None:
        self._vr = None

    def _get(self, idx: np.ndarray) -> np.ndarray:
        if self._vr is None:
            raise VideoError(self.path, "reader is closed")
        try:
            batch = self._vr.get_batch(idx.tolist())
        except self._decord.DECORDError as err:
            raise VideoError(self.path, f"decord failed to decode ({_first_line(err)})") from None
        # decord hands back its own NDArray, or a torch tensor if a bridge was set globally
        return batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


class AutoReader(VideoReader):
    """decord where it is verified and safe, PyAV otherwise; ``fallback_reason`` says why PyAV.

    PyAV reads the files :class:`DecordReader` refuses (timestamps that cannot place frames, kinds of
    file outside :data:`DECORD_VERIFIED`, edit-list cuts, keyframes that are not IDR pictures, a display
    matrix), files decord cannot open or count, and everything when decord cannot be imported (or
    decord and decord2 are both installed); a decord error while decoding switches to PyAV for good.
    """

    backend = "auto"

    def __init__(self, path, info: VideoInfo | None = None):
        info = info or probe_cached(path)
        super().__init__(info.path, info.num_frames, info.fps, info.width, info.height)
        self.info = info
        self._reader: VideoReader
        reason = _decord_refusal(info)
        if reason is None:
            try:
                self._reader = DecordReader(path, info)
            except ImportError as err:
                reason = str(err)
            except VideoError as err:
                reason = err.reason
        self.fallback_reason: str | None = reason
        if reason is not None:
            self._reader = PyAVReader(path, info)

    @property
    def active_backend(self) -> str:
        """The backend doing the decoding: ``decord`` or ``pyav``."""
        return self._reader.backend

    def close(self) -> None:
        self._reader.close()

    def _get(self, idx: np.ndarray) -> np.ndarray:
        try:
            return self._reader._get(idx)
        except VideoError as err:
            if self._reader.backend != "decord":
                raise
            # decord choked on data PyAV may read (its errors leave it unusable): switch for good.
            self._reader.close()
            self.fallback_reason = f"decord failed: {err.reason}"
            self._reader = PyAVReader(self.path, self.info)
            return self._reader._get(idx)


class RawFramesReader(VideoReader):
    """A folder of extracted frames ``img_00001.jpg ..`` (1-based, mmaction2 layout).

    A folder numbered from ``img_00000`` (0-based, as some tools write) is reported with a
    :class:`VideoError` unless ``first_number=0`` says so explicitly; gaps in the numbering are errors.
    A frame with an EXIF orientation is read turned or mirrored as viewers show it (:func:`read_frame_image`).
    """

    backend = "rawframes"

    def __init__(self, folder, first_number: int | None = None, fps: float | None = None):
        folder = Path(folder)
        if not folder.is_dir():
            raise VideoError(folder, "frame folder not found" if not folder.exists() else "not a folder")
        numbers = list_frame_files(folder)
        if not numbers:
            raise VideoError(folder, "no img_NNNNN.jpg frames in the folder")
        lowest = min(numbers)
        if first_number is None:
            if lowest == 0:
                raise VideoError(folder, "frames are numbered from img_00000 (0-based), but the release "
                                         "numbers from img_00001 (annotation img_00001.json is frame "
                                         "img_00001.jpg); re-extract, or pass first_number=0 to read it")
            first_number = 1
        if lowest != first_number:
            raise VideoError(folder, f"first frame is number {lowest}, expected {first_number}")
        count = len(numbers)
        if max(numbers) != first_number + count - 1:
            gaps = sorted(set(range(first_number, max(numbers) + 1)) - set(numbers))
            raise VideoError(folder, f"{len(gaps)} frame(s) missing from the numbering, first img_{gaps[0]:05d}")
        self.folder = folder
        self.first_number = first_number
        self._names = [numbers[first_number + i] for i in range(count)]
        width, height = self._load(0).shape[1::-1]
        super().__init__(folder, count, fps, width, height)

    def _load(self, i: int) -> np.ndarray:
        from PIL import UnidentifiedImageError

        path = self.folder / self._names[i]
        try:
            return read_frame_image(path)
        except (OSError, UnidentifiedImageError) as err:
            raise VideoError(path, f"cannot read frame image ({err})") from None

    def _get(self, idx: np.ndarray) -> np.ndarray:
        cache: dict[int, np.ndarray] = {}
        frames = []
        for i in idx.tolist():
            if i not in cache:
                cache[i] = self._load(i)
                if cache[i].shape[:2] != (self.height, self.width):
                    raise VideoError(self.folder / self._names[i],
                                     f"frame size {cache[i].shape[1]}x{cache[i].shape[0]} differs from "
                                     f"the folder's {self.width}x{self.height}")
            frames.append(cache[i])
        return np.stack(frames)


def open_video(path, backend: str = "auto", **kwargs) -> VideoReader:
    """Open a video file (or a frame folder) for frame-exact reading.

    ``backend``: ``auto`` (decord where it is exact, else PyAV), ``decord`` (VideoError where it
    would be wrong), ``pyav``, or ``rawframes`` (chosen by ``auto`` for a folder; takes
    ``first_number`` and ``fps``). Extra keyword arguments go to ``decord.VideoReader`` for
    ``decord``. Raises :class:`VideoError` for a file that cannot be read as it should.

    Damaged coded data (bytes lost inside a frame) decodes anyway, FFmpeg concealing the errors: PyAV
    raises for a frame the decoder flags so; decord cannot tell, and returns a stand-in (such as the
    frame before). ``tpslab check-videos --decode`` finds such files.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "rawframes" or (backend == "auto" and Path(path).is_dir()):
        return RawFramesReader(path, **kwargs)
    if backend == "pyav":
        return PyAVReader(path, **kwargs)
    if backend == "decord":
        return DecordReader(path, **kwargs)
    return AutoReader(path, **kwargs)
