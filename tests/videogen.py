"""Test videos whose frames carry their own index in pixels.

Every frame holds a 4x8 grid of black/white blocks along its top: a 16-bit word (12 bits of the frame
index and a 4-bit check) and the word's complement, each block 16x16 pixels, so the code survives
lossy H.264/AV1 coding and scaling, and a damaged code is refused rather than misread.
The rest of the frame is a moving gradient (so the encoder has real motion to code, and B-frames
appear) with two colour patches (pure-ish red on the left, blue on the right of the bottom strip) that
catch RGB/BGR mix-ups.

Writers: ``write_video`` (any PyAV encoder: H.264 with chosen GOP and B-frames, AV1, ...),
``write_video_ffmpeg`` (the ffmpeg binary bundled in imageio-ffmpeg, for encoders PyAV lacks, e.g.
libxvid's packed B-frames in AVI; ``ffmpeg_encoders`` lists what it has),
``trim_stream_copy`` (stream copy with a start offset: the mp4 muxer writes an edit list that hides
the frames before the cut), ``truncate`` (cut the file's bytes), ``write_rawframes`` (img_%05d.jpg).
"""

from __future__ import annotations

import functools
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

BLOCK = 16
ROWS, COLS = 4, 8
WORD_BITS = 16
INDEX_BITS = 12
CHECK_BITS = WORD_BITS - INDEX_BITS
RED = (220, 30, 30)
BLUE = (30, 30, 220)


def _check(index: int) -> int:
    return (index * 7 + 3) % (1 << CHECK_BITS)


def code_bits(index: int) -> np.ndarray:
    """The 32 bits drawn in the grid, row by row: the word (index bits, check bits), then its complement."""
    if not 0 <= index < (1 << INDEX_BITS):
        raise ValueError(f"frame index {index} does not fit in {INDEX_BITS} bits")
    word = (index << CHECK_BITS) | _check(index)
    bits = np.array([(word >> (WORD_BITS - 1 - b)) & 1 for b in range(WORD_BITS)], dtype=np.uint8)
    return np.concatenate([bits, 1 - bits])


def make_frame(index: int, width: int = 128, height: int = 96) -> np.ndarray:
    """An RGB uint8 frame (height, width, 3) that shows ``index`` in its block code."""
    if width < COLS * BLOCK or height < ROWS * BLOCK + 32:
        raise ValueError(f"frame {width}x{height} too small for the code")
    y, x = np.mgrid[0:height, 0:width]
    gradient = ((x * 2 + y + index * 3) % 256).astype(np.uint8)
    frame = np.stack([gradient, 255 - gradient, (gradient // 2 + 64).astype(np.uint8)], axis=-1)
    frame = frame.astype(np.uint8)
    bits = code_bits(index).reshape(ROWS, COLS)
    for r in range(ROWS):
        for c in range(COLS):
            frame[r * BLOCK:(r + 1) * BLOCK, c * BLOCK:(c + 1) * BLOCK] = 255 * bits[r, c]
    strip = height - height // 6
    frame[strip:, : width // 2] = RED
    frame[strip:, width // 2:] = BLUE
    return frame


@functools.lru_cache(maxsize=None)
def _block_centres(height: int, width: int, made_w: int, made_h: int) -> tuple[np.ndarray, ...]:
    """(y0, y1, x0, x1) of each block's centre, away from edges that lossy coding and scaling blur, in a
    frame of ``height`` x ``width`` drawn at ``made_w`` x ``made_h``; blocks row by row."""
    scale_y, scale_x = height / made_h, width / made_w
    r, c = np.divmod(np.arange(ROWS * COLS), COLS)
    y0 = ((r * BLOCK + 4) * scale_y).astype(np.int64)
    y1 = np.ceil(((r + 1) * BLOCK - 4) * scale_y).astype(np.int64)
    x0 = ((c * BLOCK + 4) * scale_x).astype(np.int64)
    x1 = np.ceil(((c + 1) * BLOCK - 4) * scale_x).astype(np.int64)
    return y0, y1, x0, x1


def read_index(frame: np.ndarray, made_at: tuple[int, int] | None = None) -> int:
    """The index coded in a decoded frame.

    ``made_at`` is the (width, height) the frame was drawn at, when it has been resized since
    (default: its own size). Raises ValueError if the check bits do not match (a wrong or damaged frame).
    A block is white when its centre's mean grey (the mean of its channels) is above 127, computed exactly
    in integers from one summed-area table of the code's rows (tests read thousands of frames).
    """
    frame = np.asarray(frame)
    height, width = frame.shape[:2]
    y0, y1, x0, x1 = _block_centres(height, width, *(made_at or (width, height)))
    top = frame[:int(y1.max()), :int(x1.max())]
    channels = top.shape[2] if top.ndim == 3 else 1
    pixels = top.sum(axis=2, dtype=np.int64) if top.ndim == 3 else top.astype(np.int64)
    table = np.zeros((pixels.shape[0] + 1, pixels.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = pixels.cumsum(axis=0).cumsum(axis=1)
    sums = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    bits = (sums > 127 * channels * (y1 - y0) * (x1 - x0)).astype(int).tolist()
    word = int("".join(map(str, bits[:WORD_BITS])), 2)
    index, check = word >> CHECK_BITS, word & ((1 << CHECK_BITS) - 1)
    if any(a == b for a, b in zip(bits[:WORD_BITS], bits[WORD_BITS:])) or check != _check(index):
        raise ValueError(f"frame code check failed (bits {''.join(map(str, bits))})")
    return index


def read_indices(frames, made_at: tuple[int, int] | None = None) -> list[int]:
    return [read_index(f, made_at) for f in frames]


def strip_colours(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean RGB of the left (red) and right (blue) patches of the bottom strip ."""
    frame = np.asarray(frame, dtype=np.float32)
    h, w = frame.shape[:2]
    strip = frame[h - h // 8:h - h // 24]  # inside the bottom sixth, away from its edges
    return strip[:, w // 8: 3 * w // 8].reshape(-1, 3).mean(0), strip[:, 5 * w // 8: 7 * w // 8].reshape(-1, 3).mean(0)


def write_video(path, num_frames: int, *, width: int = 128, height: int = 96, fps: int = 25,
                codec: str = "libx264", gop: int = 250, bframes: int = 3, crf: int = 18,
                faststart: bool = False) -> Path:
    """Encode ``num_frames`` coded frames into ``path`` (container from the suffix) with PyAV.

    For libx264, ``gop`` is the keyframe interval (scene-cut off, closed GOPs) and ``bframes`` the
    number of consecutive B-frames. ``faststart`` moves the mp4 index to the front.
    """
    import av

    path = Path(path)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast",
                              "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
                                             f":b-adapt=0"}
        elif codec == "libsvtav1":
            # near-lossless: faster presets and higher crf let blocks lag a frame behind
            stream.options = {"preset": "8", "crf": "1", "g": str(gop)}
        else:
            stream.options = {"g": str(gop)}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(make_frame(i, width, height), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled in the imageio-ffmpeg package."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def ffmpeg_encoders() -> frozenset[str]:
    """Names of the video encoders the bundled ffmpeg has (``libxvid``, ``libvpx-vp9``, ...)."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True,
                         check=True).stdout
    return frozenset(line.split()[1] for line in out.splitlines() if line.startswith(" V"))


def write_video_ffmpeg(path, num_frames: int, codec_args, *, width: int = 128, height: int = 96,
                       fps: int = 25) -> Path:
    """Encode ``num_frames`` frames into ``path`` with the bundled ffmpeg binary (container from the suffix).

    ``codec_args`` are ffmpeg output options, e.g. ``["-c:v", "libxvid", "-bf", "2"]`` (packed
    B-frames in an AVI). Frames are piped in as raw RGB; the output is yuv420p.
    """
    path = Path(path)
    cmd = [ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", *codec_args, "-pix_fmt", "yuv420p", str(path)]
    raw = b"".join(make_frame(i, width, height).tobytes() for i in range(num_frames))
    done = subprocess.run(cmd, input=raw, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"ffmpeg failed writing {path}: {done.stderr.decode(errors='replace')[-500:]}")
    return path


def mux_streams(dst, sources, *options) -> Path:
    """Copy the video streams of ``sources`` (files) into one file ``dst``, in that order, with the bundled
    ffmpeg; ``options`` are further output options (``-disposition:v:1 default``, a codec for an image)."""
    cmd = [ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error"]
    for source in sources:
        cmd += ["-i", str(source)]
    for k in range(len(sources)):
        cmd += ["-map", f"{k}:v"]
    done = subprocess.run([*cmd, "-c", "copy", *options, str(dst)], capture_output=True)
    if done.returncode:
        raise RuntimeError(f"ffmpeg failed writing {dst}: {done.stderr.decode(errors='replace')[-500:]}")
    return Path(dst)


def trim_stream_copy(src, dst, start_frame: int, fps: int = 25, edit_list: bool = True) -> Path:
    """Cut ``src`` at ``start_frame`` by stream copy, as ``ffmpeg -ss T -i src -c copy dst`` does.

    Packets from the keyframe before the cut are copied with timestamps shifted so the cut lands at 0;
    those before it get negative times and the mp4 muxer hides them with an edit list. A player shows
    frames ``start_frame ..`` of ``src``; the file holds more coded frames than that.
    ``edit_list=False`` writes no edit list: then every copied frame is shown, from the keyframe on,
    and the first timestamp is not 0.
    """
    import av

    src, dst = Path(src), Path(dst)
    options = {} if edit_list else {"use_editlist": "0"}
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options) as out:
        istream = inp.streams.video[0]
        ostream = out.add_stream_from_template(istream)
        tb = istream.time_base
        offset_pts = int(Fraction(start_frame, fps) / tb)
        inp.seek(offset_pts, stream=istream, backward=True, any_frame=False)
        for packet in inp.demux(istream):
            if packet.dts is None:  # end-of-stream marker
                continue
            packet.pts -= offset_pts
            packet.dts -= offset_pts
            packet.stream = ostream
            out.mux(packet)
    return dst


def _boxes(data: bytes, start: int, end: int):
    """(type, offset, header size, size) of the mp4 boxes in data[start:end]."""
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[off + 8:off + 16])[0], 16
        elif size == 0:
            size = end - off
        yield kind.decode("latin-1"), off, header, size
        off += size


def _find_box(data: bytes, path: list[str], start: int = 0, end: int | None = None):
    end = len(data) if end is None else end
    for kind, off, header, size in _boxes(data, start, end):
        if kind == path[0]:
            return (off, header, size) if len(path) == 1 else _find_box(data, path[1:], off + header, off + size)
    raise ValueError(f"no {path[0]} box")


def shorten_edit_list(src, dst, keep_frames: int, fps: int = 25) -> Path:
    """Copy an mp4 whose single edit-list entry is then cut to show only ``keep_frames`` frames.

    The hidden frames at the end are still in the file (a second kind of edit-list cut).
    """
    data = bytearray(Path(src).read_bytes())
    off, header, _ = _find_box(data, ["moov", "mvhd"])
    version = data[off + header]
    timescale = struct.unpack(">I", data[off + header + (12 if version == 0 else 20):][:4])[0]
    off, header, _ = _find_box(data, ["moov", "trak", "edts", "elst"])
    version, entries = data[off + header], struct.unpack(">I", data[off + header + 4:off + header + 8])[0]
    if version != 0 or entries != 1:
        raise ValueError(f"{src}: expected one version-0 edit-list entry, got {entries} (version {version})")
    struct.pack_into(">I", data, off + header + 8, keep_frames * timescale // fps)
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def truncate(src, dst, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes into ``dst`` (a download cut short)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def write_rawframes(folder, num_frames: int, *, width: int = 128, height: int = 96, first: int = 1,
                    template: str = "img_{:05d}.jpg") -> Path:
    """Write frames as JPEG files ``img_00001.jpg ..`` (``first=0`` makes a 0-based folder)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(num_frames):
        Image.fromarray(make_frame(i, width, height)).save(folder / template.format(i + first), quality=95)
    return folder
