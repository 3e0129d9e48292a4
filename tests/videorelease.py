"""A tiny release with real, index-coded videos, for tests that draw frames (viz, widgets).

Two classes, three train videos and one test video; every video's frames carry their index in pixels
(:mod:`videogen`), and annotated frames carry boxes that move with the frame number.
"""

from __future__ import annotations

from pathlib import Path

import videogen as vg
from release import human, make_release, part

# (label, video): (number of frames, annotated frame numbers)
VIDEOS = {
    ("lunge", "lunge_a"): (12, [1, 4, 7, 10]),
    ("lunge", "lunge_b"): (9, [1, 2, 3]),
    ("push_up", "push_a"): (10, [2, 6]),
}
TEST_VIDEOS = [("push_up", "push_test", 8)]


def frame_content(number: int) -> dict:
    """One human with three parts (one holding a dumbbell); a second human on even frames."""
    humans = [human([number, 10, number + 40, 80], [
        part("head", [number + 10, 12, number + 20, 22], "none"),
        part("left_arm", [number + 2, 30, number + 14, 50], "bend" if number % 2 else "unbend"),
        part("left_hand", [number + 5, 50, number + 12, 58], "hold", "dumbbell", [number, 48, number + 30, 60]),
    ])]
    if number % 2 == 0:
        humans.append(human([80, 30, 120, 90], [part("right_foot", [100, 80, 110, 89], "step_on")], number=2))
    return {"humans": humans}


def make_video_release(root) -> Path:
    root = Path(root)
    make_release(root, {key: {f: frame_content(f) for f in frames} for key, (_, frames) in VIDEOS.items()},
                 test_videos=TEST_VIDEOS)
    for (label, video), (n, _) in VIDEOS.items():
        vg.write_video(root / "train_videos" / label / f"{video}.mp4", n)
    for label, video, n in TEST_VIDEOS:
        vg.write_video(root / "test_videos" / label / f"{video}.mp4", n)
    # the flist holds the real frame counts (make_release writes max annotated frame + 2)
    rows = "".join(f"{label},{video},{n}\n" for (label, video), (n, _) in VIDEOS.items())
    (root / "list" / "video_train_flist.csv").write_text("class,video,frames\n" + rows)
    return root
