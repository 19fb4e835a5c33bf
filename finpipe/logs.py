"""Logging set-up; only the CLI calls this. Libraries use ``logging.getLogger(__name__)``.

Lines are readable text by default; ``FINPIPE_LOG_FORMAT=json`` writes one JSON object per line
for log collectors: ``time``, ``level``, ``logger``, ``message``, and ``report_id``, ``file`` or
``job`` when the line is about one (passed as ``extra={"report_id": ...}``), ``exception`` with
the traceback when there is one.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Literal

#: the fields a log call may attach with ``extra=``, copied into the JSON object
CONTEXT_FIELDS = ("report_id", "file", "job")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def configure(level: str = "INFO", fmt: Literal["text", "json"] = "text") -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "line": {
                    "format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                    "datefmt": "%Y-%m-%dT%H:%M:%S%z",
                },
                "json": {"()": JsonFormatter},
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "stream": sys.stderr,
                    "formatter": "json" if fmt == "json" else "line",
                }
            },
            "root": {"level": level, "handlers": ["stderr"]},
            "loggers": {
                # pika logs every reconnect attempt at ERROR with a traceback; finpipe says
                # what happened in one line of its own.
                "pika": {"level": "CRITICAL"},
                "httpx": {"level": "WARNING"},
                "httpx2": {"level": "WARNING"},
                "openai": {"level": "WARNING"},
                "werkzeug": {"level": "WARNING"},
                "apscheduler": {"level": "WARNING"},
                "watchdog": {"level": "WARNING"},
                "matplotlib": {"level": "WARNING"},
            },
        }
    )
