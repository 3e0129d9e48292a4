"""Hand-made miniature release trees for reader, index and dataset tests (no video decoding)."""

from __future__ import annotations

import json
from pathlib import Path

from tpslab.vocab import Vocab


def human(box, parts, **extra):
    return {"number": extra.pop("number", 1), "box": box, "parts": parts, **extra}


def part(name, box, verb, obj=None, obj_box=None, **extra):
    p = {"name": name, "box": box, "verb": verb, **extra}
    if obj is not None:
        p["obj_class"] = obj
        p["obj_bbox"] = obj_box
    return p


def write_frame(root: Path, label: str, video: str, frame: int, content, nested: bool = True) -> Path:
    d = Path(root) / "train_annotations" / label / video
    if nested:
        d = d / video
    d.mkdir(parents=True, exist_ok=True)
    f = d / f"img_{frame:05d}.json"
    f.write_text(content if isinstance(content, str) else json.dumps(content))
    return f


def make_release(root: Path, videos: dict, *, flist: str | None = "header3", test_videos=()) -> Path:
    """``videos``: {(label, video): {frame: {"humans": [...]}}}. Writes lists, flists and empty mp4 stubs."""
    root = Path(root)
    Vocab.default().write_lists(root)
    rows = []
    for (label, video), frames in videos.items():
        for frame, content in frames.items():
            write_frame(root, label, video, frame, content)
        vd = root / "train_videos" / label
        vd.mkdir(parents=True, exist_ok=True)
        (vd / f"{video}.mp4").write_bytes(b"")
        rows.append((label, video, max(frames) + 2 if frames else 10))
    for label, video, n in test_videos:
        vd = root / "test_videos" / label
        vd.mkdir(parents=True, exist_ok=True)
        (vd / f"{video}.mp4").write_bytes(b"")
    if flist == "header3":
        text = "class,video,frames\n" + "".join(f"{lab},{vid},{n}\n" for lab, vid, n in rows)
        test = "class,video,frames\n" + "".join(f"{lab},{vid},{n}\n" for lab, vid, n in test_videos)
    elif flist == "plain2":
        text = "".join(f"{vid},{n}\n" for _, vid, n in rows)
        test = "".join(f"{vid},{n}\n" for _, vid, n in test_videos)
    if flist:
        (root / "list" / "video_train_flist.csv").write_text(text)
        (root / "list" / "video_test_flist.csv").write_text(test)
    return root
