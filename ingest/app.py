"""The ``POST /submit`` shim: a thin JSON door onto the same publisher and message schema.

``create_app`` is the factory; adapters (publisher, store) are built per thread from the settings
or injected by the caller. Answers never carry a stack trace.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from ingest.publisher import Publisher
from schemas.errors import FinpipeError, StoreUnavailable
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.settings import Settings
from worker.store import MongoStore

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 8
MAX_ARRAY_ITEMS = 1000


def too_deep(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than ``limit``; checked on the raw bytes
    before parsing, since the parser itself would recurse that deep."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _field_errors(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    out = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"])
        out.append(
            {"field": f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body", "error": e["msg"]}
        )
    return out


def create_app(
    settings: Settings,
    *,
    publisher_factory: Callable[[], Publisher] | None = None,
    store_factory: Callable[[], MongoStore] | None = None,
) -> Flask:
    app = Flask("finpipe")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    local = threading.local()
    # A request must not wait for reconnects: one try, then 503 and the client retries.
    make_publisher = publisher_factory or (
        lambda: Publisher.from_settings(settings, reconnect_attempts=1, timeout_s=10)
    )
    make_store = store_factory or (lambda: MongoStore.from_settings(settings))
    opened: list[Publisher | MongoStore] = []  # every adapter any thread opened

    def publisher() -> Publisher:
        if getattr(local, "publisher", None) is None:
            local.publisher = make_publisher()
            opened.append(local.publisher)
        pub: Publisher = local.publisher
        return pub

    def store() -> MongoStore:
        if getattr(local, "store", None) is None:
            local.store = make_store()
            opened.append(local.store)
        st: MongoStore = local.store
        return st

    def close_adapters() -> None:
        """Close every connection the app opened (call at shutdown)."""
        while opened:
            opened.pop().close()

    app.extensions["finpipe.close"] = close_adapters

    def error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
        return jsonify({"error": message, **extra}), status

    @app.before_request
    def _auth() -> tuple[Response, int] | None:
        token = settings.api_token
        if token is None or request.path == "/healthz":
            return None
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        return None

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        if status == 413:
            return error(
                413,
                f"request body is over {settings.max_body_bytes} bytes (FINPIPE_MAX_BODY_BYTES)",
            )
        return error(status, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.error("unexpected error serving %s %s", request.method, request.path, exc_info=exc)
        return error(500, "internal error; see the server log")

    @app.post("/submit")
    def submit() -> tuple[Response, int]:
        if not request.is_json:
            return error(415, "Content-Type must be application/json")
        raw = request.get_data(cache=True)
        if too_deep(raw, MAX_JSON_DEPTH):
            return error(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field="body")
        payload = request.get_json(silent=True)
        if payload is None:
            return error(400, "body is not valid JSON", field="body")
        single = isinstance(payload, dict)
        items = [payload] if single else payload
        if not isinstance(items, list) or not items:
            return error(
                400, "body must be a report object or a non-empty array of them", field="body"
            )
        if len(items) > MAX_ARRAY_ITEMS:
            return error(
                400, f"array holds {len(items)} reports; at most {MAX_ARRAY_ITEMS}", field="body"
            )

        now = datetime.now(UTC)
        results: list[dict[str, Any]] = []
        good: list[ReportMessage] = []
        for i, item in enumerate(items):
            prefix = "" if single else f"[{i}]."
            if not isinstance(item, dict):
                results.append(
                    {
                        "index": i,
                        "status": "rejected",
                        "errors": [{"field": f"[{i}]", "error": "must be an object"}],
                    }
                )
                continue
            try:
                report = SubmitReport.model_validate(item)
            except ValidationError as exc:
                results.append(
                    {"index": i, "status": "rejected", "errors": _field_errors(exc, prefix)}
                )
                continue
            if len(report.raw_text.encode("utf-8")) > settings.max_report_bytes:
                results.append(
                    {
                        "index": i,
                        "status": "rejected",
                        "errors": [
                            {
                                "field": f"{prefix}raw_text",
                                "error": f"over {settings.max_report_bytes} bytes "
                                "(FINPIPE_MAX_REPORT_BYTES)",
                            }
                        ],
                    }
                )
                continue
            msg = ReportMessage.build(report, Provenance(channel="api", ingested_at=now))
            good.append(msg)
            results.append({"index": i, "report_id": msg.report_id, "status": "queued"})

        if not good:
            errors = [e for r in results for e in r.get("errors", [])]
            first = errors[0] if errors else {"field": "body", "error": "invalid"}
            return error(
                400, f"{first['field']}: {first['error']}", field=first["field"], errors=errors
            )
        try:
            publisher().publish_many(good)
        except FinpipeError as exc:
            log.warning("submit: %d report(s) not queued: %s", len(good), exc)
            publisher().close()
            local.publisher = None
            return error(503, "message broker unavailable; nothing was queued, retry later")
        try:
            store().mark_queued([m.report_id for m in good], now, channel="api")
        except StoreUnavailable as exc:  # the report is safe on the broker; status comes later
            log.warning("submit: could not record queued status: %s", exc)
        log.info("submit: queued %d report(s), rejected %d", len(good), len(results) - len(good))
        if single:
            return jsonify({"report_id": good[0].report_id, "status": "queued"}), 202
        return jsonify([{k: v for k, v in r.items() if k != "index"} for r in results]), 202

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        checks: dict[str, str] = {}
        try:
            publisher().check()
            checks["broker"] = "ok"
        except FinpipeError:
            publisher().close()
            local.publisher = None
            checks["broker"] = "unavailable"
        try:
            store().ping()
            checks["database"] = "ok"
        except FinpipeError:
            checks["database"] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ok" if ok else "degraded", **checks}), 200 if ok else 503

    @app.get("/reports/<report_id>")
    def report(report_id: str) -> tuple[Response, int]:
        try:
            doc = store().report(report_id)
        except StoreUnavailable:
            return error(503, "database unavailable, retry later")
        if doc is None:
            return error(404, f"no report {report_id}")
        doc["report_id"] = doc.pop("_id")
        for f in doc.get("facts", []):
            f["fact_id"] = f.pop("_id")
        return jsonify(_jsonable(doc)), 200

    return app


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
