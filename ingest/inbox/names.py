"""Names in the inbox: which files are never taken, and free names for moved files. Pure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

PROCESSED_DIR = "processed"
FAILED_DIR = "failed"
LEDGER_NAME = ".finpipe-ledger.jsonl"
#: suffixes of files that are still being downloaded or written
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".swp")
#: what a warning about a file that changed after it was read tells its writer
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


def unique_name(name: str, taken: Callable[[str], bool]) -> str:
    """``name`` if free, else ``stem-1.ext``, ``stem-2.ext``, ... (never overwrite)."""
    if not taken(name):
        return name
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    n = 1
    while taken(f"{stem}-{n}{ext}"):
        n += 1
    return f"{stem}-{n}{ext}"


def is_within(path: PurePath, folder: PurePath) -> bool:
    """``path`` is ``folder`` or below it (both already resolved)."""
    return path == folder or folder in path.parents


def quote_name(path: PurePath | str | None) -> str:
    """A file name or path for a log line: as it is when every character is printable, else
    escaped and quoted like ``repr``, so a newline or control character in a name can neither
    start a forged log line nor garble the terminal."""
    text = str(path)
    return text if text.isprintable() else repr(text)
