"""The ledger: content hashes of files already processed, to recognise a file dropped again."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ingest.inbox.names import LEDGER_NAME, PROCESSED_DIR

log = logging.getLogger(__name__)


class Ledger:
    """Content hashes of files already processed, kept in ``inbox/.finpipe-ledger.jsonl``.

    When the ledger is missing it is rebuilt from the files under ``processed/``.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LEDGER_NAME
        self._root = root
        self._entries: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read() if self.path.exists() else self._rebuild()
        return self._entries

    def _read(self) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for raw in self.path.read_text("utf-8").splitlines():
            try:
                entry = json.loads(raw)
                entries[entry["sha256"]] = entry
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
        return entries

    def _rebuild(self) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        processed = self._root / PROCESSED_DIR
        for p in sorted(processed.rglob("*")) if processed.is_dir() else []:
            if p.is_file() and not p.is_symlink():
                sha = hashlib.sha256(p.read_bytes()).hexdigest()
                entries[sha] = {"sha256": sha, "file": p.name, "moved_to": str(p)}
        if entries:
            log.info("rebuilt the inbox ledger from %d processed files", len(entries))
            self.path.write_text("".join(json.dumps(e) + "\n" for e in entries.values()), "utf-8")
        return entries

    def get(self, sha256: str) -> dict[str, Any] | None:
        return self._load().get(sha256)

    def record(self, entry: dict[str, Any]) -> None:
        self._load()[entry["sha256"]] = entry
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
