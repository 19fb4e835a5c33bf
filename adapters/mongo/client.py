"""The MongoDB client: the only pymongo import. The lazy client, the write concern, the one
error translation (:meth:`Mongo.translated`) and the few write primitives whose pymongo errors
mean something (a duplicate key is the idempotency signal), over the collections the repositories
name.

Facts, reports and cache answers are inserted unordered, keyed by their content-derived ``_id``;
a duplicate key is the idempotency signal (an insert costs no read on FerretDB v1, where every
read scans), so concurrent workers and redeliveries converge on one document per key. No
multi-document transactions are used, so the same code runs on MongoDB and on MongoDB-compatible
servers without them (FerretDB v1).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import pymongo
import pymongo.errors
from pymongo import UpdateOne
from pymongo.write_concern import WriteConcern

from adapters.mongo.names import BATCH_JOBS, BATCH_REQUESTS, FACTS, REPORTS
from schemas.errors import ConfigError, StoreUnavailable
from schemas.settings import redact_secrets, redact_url


def one_line(exc: BaseException) -> str:
    """An error's text on one short line, without pymongo's topology description."""
    text = str(exc).split(", Timeout: ")[0].split("Topology Description:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first[:300].rstrip(" ,")


def write_concern_of(text: str) -> WriteConcern:
    """``majority`` or a number of nodes (``FINPIPE_WRITE_CONCERN``)."""
    return WriteConcern(w=int(text) if text.isdigit() else text)


class Connection(Protocol):
    """What a repository is given: the database and the error translation."""

    @property
    def db(self) -> Any: ...

    def translated(self, what: str) -> contextlib.AbstractContextManager[None]: ...


class Mongo:
    """Lazy client, one per store and shared by the threads that use it (pymongo's client is
    thread-safe and pools its connections); every pymongo error leaves as ``StoreUnavailable``."""

    def __init__(
        self,
        uri: str,
        db_name: str,
        *,
        write_concern: str = "majority",
        timeout_ms: int = 5000,
    ) -> None:
        self.uri = uri
        self.db_name = db_name
        self._write_concern = write_concern_of(write_concern)
        self._timeout_ms = timeout_ms
        self._client: pymongo.MongoClient[dict[str, Any]] | None = None
        # threads meeting an unopened client must not each open one (all but one would leak)
        self._client_lock = threading.Lock()
        self._indexed = False

    @property
    def db(self) -> Any:
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._new_client()
                client = self._client
        return client.get_database(self.db_name, write_concern=self._write_concern)

    def _new_client(self) -> pymongo.MongoClient[dict[str, Any]]:
        """The client (no connection yet; a ``mongodb+srv`` host is looked up in DNS). What
        pymongo refuses in the URL leaves as one-line ``ConfigError`` naming the variable."""
        try:
            return pymongo.MongoClient(
                self.uri,
                serverSelectionTimeoutMS=self._timeout_ms,
                connectTimeoutMS=self._timeout_ms,
                socketTimeoutMS=max(30_000, self._timeout_ms),
                tz_aware=True,
            )
        except (pymongo.errors.ConfigurationError, ValueError, TypeError, OSError) as exc:
            # ConfigurationError covers InvalidURI and an unresolvable mongodb+srv host; a
            # non-numeric port is a ValueError, a missing tlsCAFile an OSError
            raise ConfigError(
                f"FINPIPE_MONGO_URI={redact_url(self.uri)!r} is invalid: "
                f"{redact_secrets(one_line(exc), self.uri)}"
            ) from exc

    def validate(self) -> None:
        """Raise ``ConfigError`` now if the URL is unusable, instead of at the first query."""
        _ = self.db

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _fail(self, what: str, exc: Exception) -> StoreUnavailable:
        why = redact_secrets(one_line(exc), self.uri)
        return StoreUnavailable(f"MongoDB {what} failed at {redact_url(self.uri)}: {why}")

    @contextlib.contextmanager
    def translated(self, what: str) -> Iterator[None]:
        """pymongo's errors inside leave as ``StoreUnavailable`` naming ``what`` failed."""
        try:
            yield
        except pymongo.errors.PyMongoError as exc:
            raise self._fail(what, exc) from exc

    def ping(self) -> None:
        with self.translated("ping"):
            self.db.command("ping")

    def ensure_indexes(self) -> None:
        """Idempotent; ``_id`` is the unique fact key and the unique report key."""
        if self._indexed:
            return
        with self.translated("index creation"):
            self.db[FACTS].create_index([("report_id", 1)], name="report_id")
            self.db[FACTS].create_index(
                [("company", 1), ("quarter", 1), ("metric", 1)], name="company_period_metric"
            )
            self.db[FACTS].create_index([("extracted_at", 1)], name="extracted_at")
            self.db[REPORTS].create_index([("status", 1)], name="status")
            self.db[BATCH_JOBS].create_index([("open", 1), ("created_at", -1)], name="open_created")
            self.db[BATCH_REQUESTS].create_index(
                [("job_id", 1), ("part", 1), ("seq", 1)], name="job_part_seq"
            )
        self._indexed = True


# -- write primitives over one collection (the caller translates errors) -------------------------
def insert_new(collection: Any, docs: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert ``docs`` unordered; return the ``_id``s that were already there.

    Inserting and reading duplicate-key errors is the fast path on every server: MongoDB
    compatible servers without pushed-down filters (FerretDB v1 on SQLite) scan a collection
    for every upsert, but look up a primary key on insert.
    """
    if not docs:
        return set()
    try:
        collection.insert_many(docs, ordered=False)
        return set()
    except pymongo.errors.BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if exc.details.get("writeConcernErrors") or any(e.get("code") != 11000 for e in errors):
            raise
        return {docs[e["index"]]["_id"] for e in errors}


def upsert_all(collection: Any, updates: Sequence[tuple[Mapping[str, Any], Any]]) -> None:
    """Apply each ``(filter, update)`` as an upsert, in one unordered bulk write.

    Two processes upserting the same new _id at once may see one duplicate-key error; the
    document exists then, so a second pass turns every upsert into an update.
    """
    ops = [UpdateOne(dict(f), u, upsert=True) for f, u in updates]
    for attempt in (1, 2):
        try:
            collection.bulk_write(ops, ordered=False)
            return
        except pymongo.errors.BulkWriteError as exc:
            dup_only = all(e.get("code") == 11000 for e in exc.details.get("writeErrors", []))
            if not dup_only or attempt == 2 or exc.details.get("writeConcernErrors"):
                raise


def increment(collection: Any, doc_id: str, inc: Mapping[str, int]) -> None:
    """``$inc`` on one document, creating it. Two threads creating it at once: one upsert wins,
    the other sees a duplicate key and adds its part to the document that now exists."""
    update = {"$inc": dict(inc)}
    try:
        collection.update_one({"_id": doc_id}, update, upsert=True)
    except pymongo.errors.DuplicateKeyError:
        collection.update_one({"_id": doc_id}, update)


def upsert_one(collection: Any, doc_id: str, update: Mapping[str, Any]) -> None:
    """``update`` on one document, creating it. Two processes creating it at once: one upsert
    wins, the other sees a duplicate key and updates the document that now exists."""
    try:
        collection.update_one({"_id": doc_id}, dict(update), upsert=True)
    except pymongo.errors.DuplicateKeyError:
        collection.update_one({"_id": doc_id}, dict(update))


def by_ids(
    collection: Any, ids: Iterable[str], fields: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The stored documents of ``ids``, one ``_id`` lookup each: FerretDB v1 hands an ``_id``
    equality to PostgreSQL, but answers ``$in`` by reading the whole collection itself (an
    order of magnitude slower at 20,000 documents); on MongoDB each is an index lookup."""
    projection = {f: 1 for f in fields} if fields is not None else None
    found = {}
    for _id in ids:
        doc = collection.find_one({"_id": _id}, projection)
        if doc is not None:
            found[_id] = doc
    return found
