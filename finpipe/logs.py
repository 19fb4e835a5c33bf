"""Logging set-up; only the CLI calls this. Libraries use ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import logging.config
import sys


def configure(level: str = "INFO") -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "line": {
                    "format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                    "datefmt": "%Y-%m-%dT%H:%M:%S%z",
                }
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "stream": sys.stderr,
                    "formatter": "line",
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
