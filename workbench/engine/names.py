"""Folder and class names as the data path meets them: any bytes the file system allows, any Unicode form.

Python hands names it cannot decode (bytes that are not UTF-8, e.g. a Latin-1 ``caf\\xe9`` folder copied from
an old disk) to the program as str with *lone surrogates* (``os.fsdecode``'s "surrogateescape": byte 0xE9
becomes U+DCE9). Such a str opens the file again, pickles and goes through ``json.dumps`` (ASCII escapes),
but ``str.encode()`` — SQLite, CSV files, safetensors, stdout — raises. So the engine keeps the on-disk name
for file access and stores it only through encoders that survive it, and everything a person reads goes
through `display_name`.

Unicode also spells "café" two ways: NFC (one code point for "é", what Windows and Linux programs write) and
NFD ("e" + combining accent, what macOS's HFS+ hands back). The same class read on two machines must match:
class names are compared through `class_key`, never with ``==``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = range(0xDC80, 0xDD00)  # what surrogateescape makes of the bytes 0x80-0xFF


def display_name(text: str) -> str:
    """`text` (a class name, a path, or a message holding them) safe to print, encode or show.

    A byte that was not UTF-8 shows as ``\\xe9`` — what ``ls -b`` and Python's own ``repr`` of bytes show —
    and any other lone surrogate (a Windows name that is not valid UTF-16) as ``\\udXXX``. Valid text is
    returned unchanged, so this costs nothing on ordinary names.
    """
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if code in _ESCAPED_BYTE else f"\\u{code:04x}"


def name_bytes(name: str) -> bytes:
    """A stable byte string for `name` (its on-disk bytes where it came from a POSIX file name).

    For seeding and hashing: ``str.encode()`` refuses lone surrogates. Valid UTF-8 names give exactly
    ``name.encode()``, so seeds derived from ordinary names are what they always were.
    """
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate surrogateescape did not make (Windows): keep it, reversibly
        return name.encode("utf-8", "surrogatepass")


def class_key(name: str) -> str:
    """The form class names are compared in: Unicode NFC (so macOS's NFD "café" is Linux's "café")."""
    return unicodedata.normalize("NFC", name)


def match_classes(known: Sequence[str], found: Sequence[str]) -> tuple[list[int], list[str]]:
    """Map each of `found`'s names onto its index in `known`, comparing by `class_key`.

    Returns (indices for the names that match, in `found`'s order; the names of `found` that match none).
    E.g. a model's classes (`known`) against an evaluation folder's class folders (`found`).
    """
    where = {class_key(name): i for i, name in enumerate(known)}
    indices = [where[class_key(name)] for name in found if class_key(name) in where]
    unknown = [name for name in found if class_key(name) not in where]
    return indices, unknown


def shown_list(names: Sequence[str]) -> str:
    """Names for a message: displayable, comma-separated."""
    return ", ".join(display_name(name) for name in names)
