"""The ``POST /submit`` shim: a thin JSON door onto the same publisher and message schema. The only
Flask import.

``create_app`` is the factory: it registers the ``api`` Blueprint over two adapters, publishers
and a store (the Protocols below), made by the factories the caller gives (default: from the
settings) and shared by the serving threads (``SharedAdapters``). Every answer is JSON, errors
included, and none carries a stack trace. ``ingest.server`` runs the app.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from flask import Blueprint, Flask, Response, g, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from adapters import metrics
from adapters.mongo import MongoStore
from adapters.rabbitmq import Broker
from ingest.submissions import SubmissionLog
from schemas.errors import FinpipeError, StoreUnavailable, validation_errors
from schemas.message import Provenance, ReportMessage, SubmitReport, text_bytes
from schemas.settings import Settings

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 8
MAX_ARRAY_ITEMS = 1000
#: longest request target (path and query) answered; longer ones get 414
MAX_URI_BYTES = 8192


#: a JSON string, escapes included; one left open runs to the end of the text
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKET = re.compile(rb"[][{}]")


def too_deep(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than ``limit``; checked on the raw bytes
    before parsing, since the parser itself would recurse that deep. Strings are taken out first
    (in C), so only the brackets are looked at one by one."""
    depth = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub(b"", body)):
        if bracket in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class SubmitPublisher(Protocol):
    """What the app needs from the publisher (``adapters.rabbitmq.Publisher``)."""

    def publish_many(self, messages: Iterable[ReportMessage]) -> int: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


class ReportStore(Protocol):
    """What the app needs from the store (``adapters.mongo.MongoStore``)."""

    def mark_queued(self, received: Mapping[str, datetime], **fields: Any) -> None: ...

    def report(self, report_id: str) -> dict[str, Any] | None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class SharedAdapters:
    """What the serving threads share: one store (one MongoDB client, thread-safe, for the whole
    process), the log of submissions written to it off the request path (``SubmissionLog``), and
    a pool of at most ``pool_size`` idle publishers (pika is not thread-safe, so a publisher
    serves one request at a time). A publisher that failed is closed, not returned; ``close_all``
    writes the submissions left and closes every connection still open (call it at shutdown)."""

    def __init__(
        self,
        make_publisher: Callable[[], SubmitPublisher],
        make_store: Callable[[], ReportStore],
        *,
        pool_size: int = 8,
    ) -> None:
        self._make_publisher = make_publisher
        self._make_store = make_store
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._idle: list[SubmitPublisher] = []
        self._store: ReportStore | None = None
        self._closed = False
        self.submissions = SubmissionLog(self.store, channel="api")

    @contextlib.contextmanager
    def publisher(self) -> Iterator[SubmitPublisher]:
        """A publisher for one request; an error inside closes it for good."""
        with self._lock:
            pub = self._idle.pop() if self._idle else None
        if pub is None:
            pub = self._make_publisher()
        try:
            yield pub
        except BaseException:  # a broker error, or anything unexpected: start clean next time
            pub.close()
            raise
        with self._lock:
            if not self._closed and len(self._idle) < self._pool_size:
                self._idle.append(pub)
                return
        pub.close()

    def store(self) -> ReportStore:
        with self._lock:
            if self._store is None:
                self._store = self._make_store()
            return self._store

    def idle_publishers(self) -> int:
        with self._lock:
            return len(self._idle)

    def close_all(self) -> None:
        self.submissions.close()
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            store, self._store = self._store, None
        for pub in idle:
            pub.close()
        if store is not None:
            store.close()


def create_app(
    settings: Settings,
    *,
    publisher_factory: Callable[[], SubmitPublisher] | None = None,
    store_factory: Callable[[], ReportStore] | None = None,
    pool_size: int = 8,
) -> Flask:
    """The Flask app; ``app.extensions["finpipe.close"]()`` closes its connections. Serve it
    with at most ``pool_size`` threads (see ``SharedAdapters``)."""
    broker = Broker.from_settings(settings)
    adapters = SharedAdapters(
        # A request must not wait for reconnects: one try, then 503 and the client retries.
        publisher_factory or (lambda: broker.publisher(reconnect_attempts=1, timeout_s=10)),
        store_factory or (lambda: MongoStore.from_settings(settings)),
        pool_size=pool_size,
    )
    app = Flask("finpipe")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["finpipe.close"] = adapters.close_all
    app.extensions["finpipe.adapters"] = adapters
    app.before_request(_started)  # first: the time of a refused request counts too
    app.after_request(_observed)
    app.register_blueprint(api(settings, adapters))
    return app


def _started() -> None:
    g.finpipe_started = time.monotonic()


def _observed(response: Response) -> Response:
    """Count the answer by route (the rule, never the path: bounded) and status."""
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    started = g.get("finpipe_started", time.monotonic())
    metrics.http_request(rule, response.status_code, time.monotonic() - started)
    return response


def api(settings: Settings, adapters: SharedAdapters) -> Blueprint:
    """The routes, the bearer-token check and the JSON error answers."""
    bp = Blueprint("api", __name__)
    bp.before_app_request(_uri_length)
    bp.before_app_request(partial(_auth, settings))
    bp.app_errorhandler(HTTPException)(partial(_http_error, settings))
    bp.app_errorhandler(Exception)(_unexpected)
    bp.add_url_rule("/submit", "submit", partial(submit, settings, adapters), methods=["POST"])
    bp.add_url_rule("/healthz", "healthz", partial(healthz, adapters), methods=["GET"])
    bp.add_url_rule("/reports/<report_id>", "report", partial(report, adapters), methods=["GET"])
    bp.add_url_rule("/metrics", "metrics", _metrics, methods=["GET"])
    return bp


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def _uri_length() -> tuple[Response, int] | None:
    target = request.environ.get("REQUEST_URI") or request.full_path
    if len(target.encode("utf-8", errors="replace")) > MAX_URI_BYTES:
        return _error(414, f"request target is over {MAX_URI_BYTES} bytes")
    return None


def _auth(settings: Settings) -> tuple[Response, int] | None:
    token = settings.api_token
    if token is None or request.path in ("/healthz", "/metrics"):
        return None
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        answer, status = _error(
            401, "missing or wrong bearer token (Authorization: Bearer <token>)"
        )
        answer.headers["WWW-Authenticate"] = 'Bearer realm="finpipe"'
        return answer, status
    return None


def _http_error(settings: Settings, exc: HTTPException) -> tuple[Response, int]:
    """Every HTTP error as JSON, with the headers it calls for (``Allow`` on a 405)."""
    status = exc.code or 500
    if status == 413:
        message = body_too_large(settings.max_body_bytes)
    else:
        message = exc.description or exc.name
    answer, _ = _error(status, message)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            answer.headers[name] = value
    return answer, status


def body_too_large(max_body_bytes: int) -> str:
    return f"request body is over {max_body_bytes} bytes (FINPIPE_MAX_BODY_BYTES)"


def _unexpected(exc: Exception) -> tuple[Response, int]:
    log.error("unexpected error serving %s %s", request.method, request.path, exc_info=exc)
    return _error(500, "internal error; see the server log")


# -- POST /submit ---------------------------------------------------------------------------------
class _Refused(Exception):
    """A request body refused as a whole; ``answer`` is the response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.answer = _error(status, message, **({"field": "body"} if status == 400 else {}))


def _body_items() -> tuple[list[Any], bool]:
    """The request's reports and whether it held a single object; ``_Refused`` otherwise."""
    if not request.is_json:
        raise _Refused(415, "Content-Type must be application/json")
    if too_deep(request.get_data(cache=True), MAX_JSON_DEPTH):
        raise _Refused(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    payload = request.get_json(silent=True)
    if payload is None:
        raise _Refused(400, "body is not valid JSON")
    single = isinstance(payload, dict)
    items = [payload] if single else payload
    if not isinstance(items, list) or not items:
        raise _Refused(400, "body must be a report object or a non-empty array of them")
    if len(items) > MAX_ARRAY_ITEMS:
        raise _Refused(400, f"array holds {len(items)} reports; at most {MAX_ARRAY_ITEMS}")
    return items, single


@dataclass
class _Checked:
    """Each item's answer (in order) and the messages of the good ones."""

    results: list[dict[str, Any]] = field(default_factory=list)
    good: list[ReportMessage] = field(default_factory=list)

    def reject(self, index: int, field_name: str, error: str) -> None:
        errors = [{"field": field_name, "error": error}]
        self.results.append({"index": index, "status": "rejected", "errors": errors})


def _check_items(items: list[Any], single: bool, settings: Settings, now: datetime) -> _Checked:
    checked = _Checked()
    for i, item in enumerate(items):
        prefix = "" if single else f"[{i}]."
        if not isinstance(item, dict):
            checked.reject(i, f"[{i}]", "must be an object")
            continue
        try:
            report = SubmitReport.model_validate(item)
        except ValidationError as exc:
            errors = [{"field": f, "error": m} for f, m in validation_errors(exc, prefix=prefix)]
            checked.results.append({"index": i, "status": "rejected", "errors": errors})
            continue
        if text_bytes(report.raw_text) > settings.max_report_bytes:
            limit = f"over {settings.max_report_bytes} bytes (FINPIPE_MAX_REPORT_BYTES)"
            checked.reject(i, f"{prefix}raw_text", limit)
            continue
        msg = ReportMessage.build(report, Provenance(channel="api", ingested_at=now))
        checked.good.append(msg)
        checked.results.append({"index": i, "report_id": msg.report_id, "status": "queued"})
    return checked


def submit(settings: Settings, adapters: SharedAdapters) -> tuple[Response, int]:
    try:
        items, single = _body_items()
    except _Refused as refused:
        return refused.answer
    now = datetime.now(UTC)
    checked = _check_items(items, single, settings, now)
    good = checked.good
    if not good:
        errors = [e for r in checked.results for e in r.get("errors", [])]
        first = errors[0] if errors else {"field": "body", "error": "invalid"}
        return _error(
            400, f"{first['field']}: {first['error']}", field=first["field"], errors=errors
        )
    try:
        with adapters.publisher() as publisher:
            publisher.publish_many(good)
    except FinpipeError as exc:
        log.warning("submit: %d report(s) not queued: %s", len(good), exc)
        return _error(503, "message broker unavailable; nothing was queued, retry later")
    metrics.reports_queued("api", len(good))
    adapters.submissions.add([m.report_id for m in good], now)
    # debug: at a thousand posts a second a line each would be most of the log and its cost
    log.debug(
        "submit: queued %d report(s), rejected %d", len(good), len(checked.results) - len(good)
    )
    if single:
        return jsonify({"report_id": good[0].report_id, "status": "queued"}), 202
    return jsonify([{k: v for k, v in r.items() if k != "index"} for r in checked.results]), 202


# -- GET /metrics, GET /healthz, GET /reports/<id> ------------------------------------------------
def _metrics() -> Response:
    """Prometheus's view of this process (open like /healthz: counts, no report content)."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def healthz(adapters: SharedAdapters) -> tuple[Response, int]:
    checks: dict[str, str] = {}
    try:
        with adapters.publisher() as publisher:
            publisher.check()
        checks["broker"] = "ok"
    except FinpipeError:
        checks["broker"] = "unavailable"
    try:
        adapters.store().ping()
        checks["database"] = "ok"
    except FinpipeError:
        checks["database"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if ok else "degraded", **checks}), 200 if ok else 503


def report(adapters: SharedAdapters, report_id: str) -> tuple[Response, int]:
    """One report with its facts. An id that cannot be a report's (a sha256 in hex) is a 404
    without a query; a store error is a 503 only while the database is really unreachable, and
    otherwise a 500 with a log line (retrying the same request would not help)."""
    if not REPORT_ID.fullmatch(report_id):
        return _error(404, "no such report: a report id is 64 hexadecimal digits")
    report_id = report_id.lower()
    # before the lookup: an id written meanwhile is no longer in memory but then in the database
    received_at = adapters.submissions.queued_at(report_id)  # accepted, not recorded yet
    store = adapters.store()
    try:
        doc = store.report(report_id)
    except StoreUnavailable as exc:
        try:
            store.ping()
        except FinpipeError:
            return _error(503, "database unavailable, retry later")
        log.error("report lookup %s failed while the database is up: %s", report_id[:12], exc)
        return _error(500, "internal error; see the server log")
    if doc is None and received_at is not None:
        doc = {"_id": report_id, "received_at": received_at, "channel": "api", "status": "queued"}
        doc["facts"] = []
    if doc is None:
        return _error(404, f"no report {report_id}")
    doc["report_id"] = doc.pop("_id")
    for f in doc.get("facts", []):
        f["fact_id"] = f.pop("_id")
    return jsonify(_jsonable(doc)), 200


#: what a report id looks like: the sha256 of its text, in hex
REPORT_ID = re.compile(r"[0-9a-fA-F]{64}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
