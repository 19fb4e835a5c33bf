"""The RabbitMQ adapter's decisions that need no pika (``channel.py`` makes the calls):

- ``Nodes``: the broker addresses of one process (one, or the nodes of a cluster) in an order of
  its own, and ``connect_in_turn``: try them in turn, move on from a node that went away, stop at
  once when the broker refuses our configuration.
- ``Confirms``: which published messages the broker has confirmed, nacked or returned, and
  ``Outbox``: what a publisher publishes next, refused messages again after a ``Backoff``.
- ``declare_queues``: declare the topology's queues; a queue that exists with other arguments is a
  one-line ``BrokerConfigError``, and the classic delayed-retry queues of an earlier finpipe become
  quorum queues once empty.
"""

from __future__ import annotations

import heapq
import logging
import random
import re
import ssl
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from schemas.errors import BrokerConfigError, BrokerUnavailable, PublishNotConfirmed
from schemas.message import ReportMessage
from schemas.settings import amqp_addresses, redact_url
from schemas.topology import QueueSpec, Topology

log = logging.getLogger("adapters.rabbitmq")

C = TypeVar("C")


class Nodes:
    """The broker addresses of one process, shuffled once with ``rng`` so that the workers of a
    cluster spread over its nodes. A connect tries them in turn from the current one; after the
    current one's connection is lost (``lost``), the next connect starts with the address after
    it. One per ``Broker``, shared by its connections."""

    def __init__(self, urls: Sequence[str], *, rng: random.Random | None = None) -> None:
        if not urls:
            raise ValueError("no broker address")
        order = list(urls)
        (rng or random.Random()).shuffle(order)
        self.urls: tuple[str, ...] = tuple(order)
        self._current = 0

    @classmethod
    def of(cls, amqp_url: str | Nodes, *, rng: random.Random | None = None) -> Nodes:
        """``amqp_url`` as ``FINPIPE_AMQP_URL`` holds it: one URL or several, comma-separated."""
        if isinstance(amqp_url, Nodes):
            return amqp_url
        try:
            urls = amqp_addresses(amqp_url)
        except ValueError as exc:
            shown = redact_url(amqp_url)
            raise BrokerConfigError(f"FINPIPE_AMQP_URL={shown!r} is invalid: {exc}") from None
        return cls(urls, rng=rng)

    def in_turn(self) -> list[str]:
        """Every address, the current one first."""
        i = self._current
        return [*self.urls[i:], *self.urls[:i]]

    def connected(self, url: str) -> None:
        self._current = self.urls.index(url)

    def lost(self, url: str | None) -> None:
        """The connection to ``url`` failed: start the next connect with the address after it."""
        if url is not None and self.urls[self._current] == url:
            self._current = (self._current + 1) % len(self.urls)

    def __str__(self) -> str:
        return ",".join(redact_url(u) for u in self.urls)


def connect_in_turn(
    nodes: Nodes,
    open_one: Callable[[str], C],
    *,
    refusal: Callable[[BaseException], str | None],
    errors: tuple[type[BaseException], ...],
    attempts: int = 1,
    backoff_s: float = 0.5,
) -> tuple[C, str]:
    """A connection from ``open_one`` to the first address, in turn, that takes it, and that
    address; ``attempts`` rounds over all of them, with exponential backoff (capped at 5 s) in
    between. An error for which ``refusal`` gives a reason is a ``BrokerConfigError`` at once;
    ``BrokerUnavailable`` names every address when none answers."""

    def one_round() -> tuple[C, str]:
        failed: list[str] = []
        for url in nodes.in_turn():
            try:
                conn = open_one(url)
            except errors as exc:
                why = refusal(exc)
                if why is not None:
                    raise BrokerConfigError(f"{why} (at {redact_url(url)})") from exc
                failed.append(f"{redact_url(url)}: {exc!r}")
                continue
            nodes.connected(url)
            if failed:
                shown = "; ".join(failed)
                log.warning("RabbitMQ unreachable at %s; connected to %s", shown, redact_url(url))
            return conn, url
        raise BrokerUnavailable(f"RabbitMQ unreachable at {'; '.join(failed)}")

    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=backoff_s, max=5.0),
        retry=retry_if_exception_type(BrokerUnavailable),
        reraise=True,
    )
    opened: tuple[C, str] = retrying(one_round)
    return opened


#: what OpenSSL says when the other end does not speak TLS
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE"})


def refused(what: str, text: str, *, certain: bool = False) -> str | None:
    """``what`` (the login, the virtual host) refused, in one line, when the broker's reply in
    ``text`` says so (ACCESS_REFUSED, NOT_ALLOWED) or ``certain``; ``None`` otherwise: a node that
    closes the connection while it shuts down looks like a refusal to pika but says nothing."""
    said = re.search(r"\((\d{3})\) '((?:ACCESS_REFUSED|NOT_ALLOWED) - [^']*)'", text)
    if said is None and not certain:
        return None
    reason = f"{said.group(1)} {said.group(2)}" if said else text[:200]
    fix = "the user name and password" if what == "the login" else "the vhost and its permissions"
    return f"RabbitMQ refused {what} ({reason}): check {fix} in FINPIPE_AMQP_URL"


def refused_tls(exc: BaseException) -> str | None:
    """A TLS handshake that cannot work (no TLS on that port, a certificate not accepted)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"RabbitMQ's TLS certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError) and exc.reason in _NOT_TLS:
        return (
            f"TLS handshake failed ({exc.reason}): that port does not speak TLS; amqps:// needs "
            "the broker's TLS port (usually 5671), the plain AMQP port (5672) takes amqp://"
        )
    return None


# -- publisher confirms ---------------------------------------------------------------------------
class Confirms:
    """A publisher's confirm bookkeeping: the messages waiting for the broker's confirm by delivery
    tag, those it nacked or returned (``take_failures``), how many it acked."""

    def __init__(self) -> None:
        self.pending: dict[int, ReportMessage] = {}
        self.next_tag = 0
        self.acked = 0
        self._failed: list[tuple[ReportMessage, str]] = []
        self._returned: set[str] = set()

    def sent(self, msg: ReportMessage) -> None:
        self.next_tag += 1
        self.pending[self.next_tag] = msg

    def settled(self, tag: int, *, multiple: bool, nacked: bool) -> None:
        for t in [t for t in self.pending if t <= tag] if multiple else [tag]:
            msg = self.pending.pop(t, None)
            if msg is None:
                continue
            if nacked:
                self._failed.append((msg, "nacked by the broker"))
            elif msg.report_id in self._returned:
                self._returned.discard(msg.report_id)
                self._failed.append((msg, "returned by the broker: no queue bound"))
            else:
                self.acked += 1

    def returned(self, message_id: str) -> None:
        self._returned.add(message_id)

    def new_channel(self) -> list[ReportMessage]:
        """A new channel numbers its tags from 1 again: the messages still unconfirmed."""
        lost = list(self.pending.values())
        self.pending.clear()
        self.next_tag = 0
        return lost

    def take_failures(self) -> list[tuple[ReportMessage, str]]:
        """The messages nacked or returned since the last call, each with the reason."""
        failed, self._failed = self._failed, []
        return failed


@dataclass(frozen=True)
class Backoff:
    """When a message the broker nacked or returned is published again: ``first_s`` after the
    first refusal, doubling up to ``max_s``, for as long as ``budget_s`` after the first refusal
    (a quorum queue refuses while it elects a new leader, which takes seconds)."""

    budget_s: float = 30.0
    first_s: float = 0.05
    max_s: float = 2.0

    def delay_s(self, refusals: int) -> float:
        """The wait before publishing again after the ``refusals``-th refusal (1, 2, ...)."""
        return min(self.max_s, self.first_s * 2 ** max(0, refusals - 1))


@dataclass(frozen=True)
class _Refusal:
    first_at: float
    count: int


class Outbox:
    """What a publisher publishes next, and when: messages lost with a connection first (again at
    once: the next connection is to another node), then refused ones whose backoff has passed,
    then new ones from ``messages``. ``refused`` raises ``PublishNotConfirmed`` once a message
    has been refused for longer than the backoff's budget."""

    def __init__(self, messages: Iterable[ReportMessage], backoff: Backoff) -> None:
        self._new: Iterator[ReportMessage] = iter(messages)
        self.backoff = backoff
        self.exhausted = False
        self.lost: list[ReportMessage] = []
        self._waiting: list[tuple[float, int, ReportMessage]] = []  # a heap: first due first
        self._seq = 0
        self._reconnects: dict[str, int] = {}
        self._refusals: dict[str, _Refusal] = {}

    def next(self, now: float) -> ReportMessage | None:
        """The message to publish now, if any (``None`` also while refused ones wait)."""
        if self.lost:
            return self.lost.pop()
        if self._waiting and self._waiting[0][0] <= now:
            return heapq.heappop(self._waiting)[2]
        if not self.exhausted:
            new = next(self._new, None)
            if new is not None:
                return new
            self.exhausted = True
        return None

    def refused(self, msg: ReportMessage, reason: str, now: float) -> float:
        """``msg`` was nacked or returned at ``now``: when to publish it again."""
        rid = msg.report_id
        before = self._refusals.get(rid)
        first_at = before.first_at if before else now
        count = before.count + 1 if before else 1
        due_at = now + self.backoff.delay_s(count)
        if due_at - first_at > self.backoff.budget_s:
            raise PublishNotConfirmed(
                f"report {rid[:12]} {reason} {count} times in {now - first_at:.1f} s; not "
                f"published (FINPIPE_REPUBLISH_BUDGET_S={self.backoff.budget_s:g})"
            )
        self._refusals[rid] = _Refusal(first_at, count)
        self._seq += 1
        heapq.heappush(self._waiting, (due_at, self._seq, msg))
        return due_at

    def lost_with_connection(
        self, msgs: list[ReportMessage], *, limit: int
    ) -> ReportMessage | None:
        """``msgs`` were unconfirmed when the connection broke: publish them again at once. The
        first that has been lost more than ``limit`` times, if any (the caller gives up)."""
        for m in msgs:
            n = self._reconnects.get(m.report_id, 0) + 1
            self._reconnects[m.report_id] = n
            if n > limit:
                return m
        self.lost.extend(msgs)
        return None

    def next_due_at(self) -> float | None:
        """When the first refused message may be published again; ``None`` if none waits."""
        return self._waiting[0][0] if self._waiting else None

    @property
    def done(self) -> bool:
        """Nothing left to publish: no new, lost or refused message."""
        return self.exhausted and not self.lost and not self._waiting


# -- declaring queues ------------------------------------------------------------------------------
class Inequivalent(Exception):
    """The broker refused a declare: the queue exists with other arguments (406)."""


class QueueOps(Protocol):
    def declare(self, spec: QueueSpec) -> int:
        """Declare ``spec`` (durable); its ready messages. ``Inequivalent`` when refused."""
        ...

    def delete_if_empty(self, name: str) -> None:
        """Delete queue ``name`` unless it holds messages; gone already is fine."""
        ...


def declare_queues(ops: QueueOps, topology: Topology) -> None:
    """Declare every queue of ``topology``. A refusal is a ``BrokerConfigError`` saying what to do;
    a delayed-retry queue left as a classic queue by an earlier finpipe is deleted and declared
    again as a quorum queue when it is empty, and when it holds messages the error says to wait
    until their delay has sent them back to the work queue."""
    for spec in (topology.work_spec(), topology.dead_spec()):
        _declare(ops, spec)
    for spec, classic in zip(topology.retry_specs(), topology.classic_retry_specs(), strict=True):
        try:
            ops.declare(spec)
            continue
        except Inequivalent as exc:
            refused = exc
        try:  # the earlier classic queue? Then the broker says how many messages it holds.
            held = ops.declare(classic)
        except Inequivalent:
            raise _inequivalent(spec, refused) from refused
        if held:
            raise BrokerConfigError(
                f"delayed-retry queue {spec.name!r} is a classic queue (kept by one node) from an "
                f"earlier finpipe and still holds {held} message(s): they return to "
                f"{topology.queue!r} within {int(classic.arguments['x-message-ttl']) // 1000} s; "
                "start again then and it becomes a quorum queue (rabbitmqctl list_queues name "
                "messages shows when it is empty)"
            )
        ops.delete_if_empty(spec.name)
        _declare(ops, spec)
        log.warning("delayed-retry queue %s was a classic queue; now a quorum queue", spec.name)


def _declare(ops: QueueOps, spec: QueueSpec) -> None:
    try:
        ops.declare(spec)
    except Inequivalent as exc:
        raise _inequivalent(spec, exc) from exc


def _inequivalent(spec: QueueSpec, exc: Inequivalent) -> BrokerConfigError:
    return BrokerConfigError(
        f"RabbitMQ refused to declare queue {spec.name!r} ({exc}): it exists with other "
        f"arguments; if it holds nothing you need, delete it (rabbitmqctl delete_queue "
        f"{spec.name}) and start again, or use another FINPIPE_QUEUE"
    )
