"""Names in the inbox: which files are never taken, and free names for moved files. Pure."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import PurePath

PROCESSED_DIR = "processed"
FAILED_DIR = "failed"
LEDGER_NAME = ".finpipe-ledger.jsonl"
#: suffixes of files that are still being downloaded or written
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".swp")
#: what a warning about a file that changed after it was read tells its writer
#: bytes a file name may take on the file systems finpipe runs on (ext4, xfs, btrfs, APFS, NTFS)
NAME_MAX = 255
#: bytes an extension may take and still be kept when a name is shortened
_KEPT_EXT_BYTES = 16
DROP_ADVICE = (
    "Write files under a temporary name (.name, *.part, *.tmp) and rename them when complete."
)


def is_ignored_name(name: str) -> bool:
    """Hidden files, editor and office lock files, and partial downloads are never taken."""
    lowered = name.lower()
    return (
        not name
        or name.startswith((".", "~$"))
        or name.endswith("~")
        or lowered.endswith(PARTIAL_SUFFIXES)
    )


def fit_name(name: str, room: int = NAME_MAX) -> str:
    """``name`` if it takes at most ``room`` bytes on disk, else its stem cut short and marked
    with a hash of the whole name (``stem~1a2b3c4d.ext``), so two long names stay apart."""
    if len(os.fsencode(name)) <= room:
        return name
    stem, ext = _split(name)
    if len(os.fsencode(ext)) > min(_KEPT_EXT_BYTES, room // 2):
        stem, ext = name, ""
    mark = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    budget = max(0, room - len(os.fsencode(ext)) - len(mark))
    kept: list[str] = []
    for ch in stem:  # whole characters only
        budget -= len(os.fsencode(ch))
        if budget < 0:
            break
        kept.append(ch)
    stem = "".join(kept)
    return f"{stem}{mark}{ext}"


def unique_name(name: str, taken: Callable[[str], bool], room: int = NAME_MAX) -> str:
    """``name`` if free, else ``stem-1.ext``, ``stem-2.ext``, ... (never overwrite); each of at
    most ``room`` bytes (see :func:`fit_name`)."""
    first = fit_name(name, room)
    if not taken(first):
        return first
    stem, ext = _split(name)
    n = 1
    while taken(fit_name(f"{stem}-{n}{ext}", room)):
        n += 1
    return fit_name(f"{stem}-{n}{ext}", room)


def _split(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if dot > 0 else (name, "")


def is_within(path: PurePath, folder: PurePath) -> bool:
    """``path`` is ``folder`` or below it (both already resolved)."""
    return path == folder or folder in path.parents


def folder_within(path: PurePath, root: PurePath) -> PurePath:
    """The folder of ``path`` relative to ``root`` (both absolute and normalised): ``sub/q2``
    for ``root/sub/q2/a.csv``, empty for a file directly in ``root`` or outside it. A moved file
    keeps it, so files of the same name from two folders stay apart."""
    try:
        return path.parent.relative_to(root)
    except ValueError:
        return PurePath()


def quote_name(path: PurePath | str | None) -> str:
    """A file name or path for a log line: as it is when every character is printable, else
    escaped and quoted like ``repr``, so a newline or control character in a name can neither
    start a forged log line nor garble the terminal."""
    text = str(path)
    return text if text.isprintable() else repr(text)
