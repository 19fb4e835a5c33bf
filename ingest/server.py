"""Serving the API with waitress, a production WSGI server: the only waitress import.

A fixed pool of ``threads`` serves every request, so the app's shared adapters (one MongoDB client,
at most ``threads`` publishers) stay bounded however many requests come. What waitress answers by
itself, before the app sees a request (headers too large, a body over the limit, even sent
chunked, a malformed request), is answered as JSON like everything else.

While it serves, the interpreter hands the GIL over every ``GIL_SWITCH_S`` (0.5 ms) instead of
every 5 ms: a request makes several short socket calls (HTTP, the publish, its confirm), and each
one that returns waits for the GIL; at the default interval a thread back from the broker waited up
to 5 ms behind another thread's Python work, so concurrent requests queued behind each other.
The loop that reads requests and hands them to the threads waits with ``poll`` rather than
``select`` (``ASYNCORE_USE_POLL``): with 8 keep-alive clients that cut the server's CPU per post
from 0.76 to 0.70 ms (docs/performance-submit.md). waitress warns "Task queue depth is N" for
every request that finds no idle thread, a line per request under load: one such line every
``QUEUE_WARNING_EVERY_S`` gets through, counting the ones held back.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

from schemas.errors import ConfigError

log = logging.getLogger(__name__)

#: request line and headers together; a longer one is answered 431
MAX_HEADER_BYTES = 65536
#: the request loop waits with poll(2), lighter per wake-up than select(2)
ASYNCORE_USE_POLL = True
#: the shortest time between two of waitress's "Task queue depth" warnings
QUEUE_WARNING_EVERY_S = 10.0
#: the GIL switch interval while serving (the interpreter's default is 5 ms)
GIL_SWITCH_S = 0.0005


class EverySoOften(logging.Filter):
    """Lets one record through every ``every_s`` seconds; the next one that passes says how many
    were held back meanwhile."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next_at: float | None = None
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        with self._lock:
            if self._next_at is not None and now < self._next_at:
                self._held += 1
                return False
            self._next_at = now + self.every_s
            held, self._held = self._held, 0
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last {self.every_s:.0f} s)"
        return True


class _JsonErrorTask(ErrorTask):
    """waitress's own error answers (400, 413, 431, 500, ...) as ``{"error": "..."}``."""

    too_large_message = "request body is too large"

    def execute(self) -> None:
        err = self.request.error
        message = self.too_large_message if err.code == 413 else f"{err.reason}: {err.body}"
        body = json.dumps({"error": message}).encode("utf-8")
        self.status = f"{err.code} {err.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    threads: int,
    max_body_bytes: int,
    too_large_message: str,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then stop accepting and return (the caller closes
    the app's connections). ``ConfigError`` when the address cannot be listened on."""
    error_task = type("JsonErrorTask", (_JsonErrorTask,), {"too_large_message": too_large_message})
    channel = type("JsonChannel", (HTTPChannel,), {"error_task_class": error_task})
    try:
        server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            max_request_body_size=max_body_bytes,
            max_request_header_size=MAX_HEADER_BYTES,
            ident="finpipe",
            clear_untrusted_proxy_headers=True,
            asyncore_use_poll=ASYNCORE_USE_POLL,
        )
    except (OSError, ValueError) as exc:  # the address is taken, unknown or cannot be bound
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from exc
    listeners = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = channel

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: no longer accepting requests, closing connections", signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    switch_s = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_S)
    queue_log, queue_filter = (
        logging.getLogger("waitress.queue"),
        EverySoOften(QUEUE_WARNING_EVERY_S),
    )
    queue_log.addFilter(queue_filter)
    try:
        if on_listening is not None:
            on_listening(_addresses(server))
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        sys.setswitchinterval(switch_s)
        queue_log.removeFilter(queue_filter)
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _addresses(server: Any) -> str:
    listening = getattr(server, "effective_listen", None)
    if listening:
        return ", ".join(f"http://{h}:{p}" for h, p in listening)
    return f"http://{server.effective_host}:{server.effective_port}"
