"""Write an export folder: CSVs, the workbook holding them all (``summary.xlsx``), PNG charts,
``index.html`` and ``run_report.json``.

Every file is written to a temporary name in the same folder, flushed to disk and renamed over the
old one (``os.replace``), so a reader sees the old file or the new one, never half of one.
``run_report.json`` is written last; then ``<root>/latest`` is swapped (a new symlink renamed over
the old) to point at the folder, so it always names a complete export.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from export.charts import ChartSpec, render_chart
from export.comparisons import largest_moves
from export.page import RUN_REPORT, render_index
from export.tables import ExportFrames
from schemas.errors import OutputNotWritable

log = logging.getLogger(__name__)

LATEST = "latest"
INDEX = "index.html"
WORKBOOK = "summary.xlsx"


# -- atomic files -------------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def point_latest(root: Path, folder: Path) -> None:
    """Make ``root/latest`` a relative symlink to ``folder`` by renaming a new link over it."""
    link = root / LATEST
    if link.exists() and not link.is_symlink():
        log.warning("%s exists and is not a symlink; leaving it alone", link)
        return
    tmp = root / f".{LATEST}.{uuid.uuid4().hex[:12]}.tmp"
    os.symlink(os.path.relpath(folder, root), tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(root)


# -- the folder ---------------------------------------------------------------------------------
@contextlib.contextmanager
def writing_into(root: Path) -> Iterator[None]:
    """File-system errors inside leave as ``OutputNotWritable`` naming ``root`` and the reason."""
    try:
        yield
    except OSError as exc:
        raise OutputNotWritable(str(root), exc.strerror or str(exc)) from exc


def check_writable(root: Path) -> None:
    """Make ``root`` if needed and prove a file can be written in it, before any work is done;
    ``OutputNotWritable`` otherwise."""
    with writing_into(root):
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(root / f".finpipe-probe-{uuid.uuid4().hex[:12]}", b"")
        for probe in root.glob(".finpipe-probe-*"):
            with contextlib.suppress(FileNotFoundError):
                probe.unlink()


def write_export(
    root: Path,
    day: date,
    frames: ExportFrames,
    charts: Sequence[ChartSpec],
    report: dict[str, Any],
) -> Path:
    """Write the dated folder ``root/YYYY-MM-DD`` and point ``root/latest`` at it."""
    folder = root / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    csvs = frames.csv_files()
    for name, text in csvs.items():
        atomic_write_text(folder / name, text)
    atomic_write_bytes(folder / WORKBOOK, frames.workbook())
    chart_names = set()
    for spec in charts:
        atomic_write_bytes(folder / spec.filename, render_chart(spec))
        chart_names.add(spec.filename)
    files = [*csvs, WORKBOOK, *(c.filename for c in charts), INDEX, RUN_REPORT]
    report = {**report, "files": files}
    atomic_write_text(
        folder / INDEX,
        render_index(
            title=f"finpipe export {day.isoformat()}",
            csv_files=list(csvs),
            workbook=WORKBOOK,
            charts=charts,
            report=report,
            summary=frames.summary,
            moves=largest_moves(frames.pop),
            conflicts=frames.conflicts,
        ),
    )
    for old in folder.glob("chart-*.png"):  # charts of an earlier export of the same day
        if old.name not in chart_names:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    atomic_write_text(
        folder / RUN_REPORT,
        json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n",
    )
    point_latest(root, folder)
    return folder
