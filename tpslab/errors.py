"""Exceptions and problem records shared by the readers, the index and the validator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file: where, which field, what is wrong."""

    path: str
    field: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return f"{self.severity}: {where}: {self.message}"


class AnnotationError(ValueError):
    """A Kinetics-TPS annotation file that does not follow the format.

    ``path`` names the file, ``field`` the JSON field (e.g. ``humans[0].parts[2].box``),
    and the message says what was expected.
    """

    def __init__(self, path, field: str, message: str):
        self.path = str(path)
        self.field = field
        self.problem = Problem(self.path, field, message)
        super().__init__(str(self.problem)[len("error: "):])


class NotAReleaseError(FileNotFoundError):
    """A folder given as a Kinetics-TPS root that holds no release (no class folders to read)."""

    def __str__(self) -> str:  # one line, whatever OSError would make of the arguments
        return str(self.args[0]) if self.args else "not a Kinetics-TPS release"
