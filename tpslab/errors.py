"""Exceptions and problem records shared by the readers, the index and the validator."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def printable(text: str) -> str:
    """``text`` with its control and format characters written as escapes (``\\n``, ``\\x1b``, ``\\u202e``):
    a name from a file must not start a line of its own in a report, move the cursor, colour the terminal
    or turn text around. Other characters (accents, other scripts) stay as they are."""
    def escape(match) -> str:
        char = match.group()
        if unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp"):
            return char
        return repr(char)[1:-1] if ord(char) < 0x100 else f"\\u{ord(char):04x}"

    return _INVISIBLE.sub(escape, text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file: where, which field, what is wrong."""

    path: str
    field: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return printable(f"{self.severity}: {where}: {self.message}")


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
