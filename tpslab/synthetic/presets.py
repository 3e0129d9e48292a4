"""The mini dataset's presets (how many classes, videos and frames, at what size) and the generator's version.

Apart from the generator so that reading a preset's name (the command line, cache folder names) does not
import the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

from tpslab.vocab import ACTIONS

# Bump when the output for a given preset and seed changes: cached mini datasets are keyed by it.
GENERATOR_VERSION = 4


@dataclass(frozen=True)
class Preset:
    """The size of a generated dataset."""

    name: str
    classes: tuple[str, ...]
    train_videos: tuple[int, int]  # per class, inclusive range (classes are mildly imbalanced)
    test_videos: int  # per class
    frames: tuple[int, int]  # per video, inclusive range
    size: tuple[int, int]  # width, height
    fps: int = 25
    distractor: float = 0.5  # probability of a second person
    crf: int = 23  # H.264 quality (x264 default; states stay legible)


PRESETS = {
    "default": Preset("default", ACTIONS, (6, 10), 2, (56, 72), (256, 192)),
    "tiny": Preset("tiny", ("clean_and_jerk", "juggling_balls", "push_up", "salsa_dancing"),
                   (4, 4), 2, (28, 36), (192, 144)),
}


def get_preset(preset) -> Preset:
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}") from None
