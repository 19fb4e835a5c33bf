"""Publishing ``ReportMessage``s with confirms, on a channel opened by ``channel.open_confirming``.

Every message is persistent, ``mandatory`` and confirmed; bulk publishing keeps a window of
outstanding confirms, turning the loop of its asynchronous connection; every wait ends as soon
as what it waits for has arrived. Nacked or returned messages are published again
with a backoff, for a time budget, then reported; after a dropped connection every
unconfirmed message is published again, at another node first (storage is idempotent). What to
publish next and when is the pure ``policy.Outbox``; this module only sends and waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from adapters.rabbitmq import policy
from adapters.rabbitmq.channel import BROKER_ERRORS, ConfirmingLink, open_confirming
from adapters.rabbitmq.policy import Nodes
from schemas.errors import BrokerConfigError, BrokerUnavailable, PublishNotConfirmed
from schemas.message import ReportMessage
from schemas.settings import Settings, redact_url
from schemas.topology import Topology

log = logging.getLogger(__name__)


class Publisher:
    """Publishes ``ReportMessage``s with confirms. One instance per thread (pika is not
    thread-safe); opens its connection lazily and drops it after a failure. A message the broker
    nacks or returns is published again after ``backoff`` (see ``Outbox``)."""

    def __init__(
        self,
        amqp_url: str | Nodes,
        topology: Topology,
        *,
        confirm_window: int = 4000,
        timeout_s: float = 30.0,
        reconnect_attempts: int = 12,
        backoff: policy.Backoff | None = None,
    ) -> None:
        self.nodes = Nodes.of(amqp_url)
        self.topology = topology
        self.confirm_window = confirm_window
        self.timeout_s = timeout_s
        self.reconnect_attempts = reconnect_attempts
        self.backoff = backoff or policy.Backoff()
        self._link: ConfirmingLink | None = None
        self._confirms = policy.Confirms()
        self._waiting_below: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Publisher:
        kwargs.setdefault("backoff", policy.Backoff(budget_s=settings.republish_budget_s))
        return cls(settings.amqp_url, Topology.for_settings(settings), **kwargs)

    # -- connection -------------------------------------------------------------------------
    def _open(self, attempts: int = 1) -> ConfirmingLink:
        link = open_confirming(
            self.nodes,
            self.topology,
            on_confirm=self._on_confirm,
            on_return=self._on_return,
            attempts=attempts,
        )
        self._link = link
        self._confirms.new_channel()
        log.info("publishing to RabbitMQ at %s", redact_url(link.url))
        return link

    def _drop(self, *, failed: bool = False) -> None:
        """Close the connection; ``failed``: it broke, so the next one starts at another node."""
        link, self._link = self._link, None
        if link is not None and failed:
            link.abandon()
        elif link is not None:
            link.close_quietly()

    @property
    def connected_to(self) -> str | None:
        """The address of the node this publisher is connected to now, if any."""
        return self._link.url if self._link is not None else None

    def check(self) -> None:
        """Raise ``BrokerUnavailable`` unless the broker answers (used by /healthz)."""
        link = self._link if self._link is not None and self._link.is_open else self._open()
        try:
            link.poll(0)
        except BROKER_ERRORS as exc:
            self._drop(failed=True)
            raise BrokerUnavailable(f"RabbitMQ connection lost: {exc!r}") from exc

    # -- confirms ---------------------------------------------------------------------------
    def _on_confirm(self, tag: int, multiple: bool, nacked: bool) -> None:
        self._confirms.settled(tag, multiple=multiple, nacked=nacked)
        below = self._waiting_below
        if below is not None and len(self._confirms.pending) <= below and self._link is not None:
            self._waiting_below = None
            self._link.wake()

    def _on_return(self, message_id: str) -> None:
        self._confirms.returned(message_id)

    def _pump(self, link: ConfirmingLink, deadline: float, *, until_below: int) -> None:
        """Wait until at most ``until_below`` messages are unconfirmed: returns as soon as the
        confirm that gets there arrives; ``PublishNotConfirmed`` at ``deadline``."""
        pending = self._confirms.pending
        self._waiting_below = until_below
        try:
            while len(pending) > until_below:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishNotConfirmed(
                        f"{len(pending)} message(s) not confirmed within {self.timeout_s:.0f} s"
                    )
                link.poll(remaining)
        finally:
            self._waiting_below = None

    def _refusals(self, outbox: policy.Outbox) -> None:
        """Put the messages the broker nacked or returned back in ``outbox``, after a backoff."""
        failed = self._confirms.take_failures()
        if not failed:
            return
        now = time.monotonic()
        due_at = max(outbox.refused(msg, reason, now) for msg, reason in failed)
        log.warning(
            "%d report(s) %s (first %s); publishing again in %.2f s",
            len(failed),
            failed[0][1],
            failed[0][0].report_id[:12],
            due_at - now,
        )

    # -- public -----------------------------------------------------------------------------
    def publish(self, message: ReportMessage) -> None:
        """Publish one message and wait for its confirm."""
        self.publish_many([message])

    def publish_many(self, messages: Iterable[ReportMessage], **headers: Any) -> int:
        """Publish all ``messages`` (with ``headers``); return how many the broker confirmed (all),
        or raise ``PublishNotConfirmed`` / ``BrokerUnavailable`` naming what was not confirmed."""
        start = self._confirms.acked
        outbox = policy.Outbox(messages, self.backoff)
        while True:
            self._round(outbox, headers)
            if outbox.done:
                return self._confirms.acked - start

    def _round(self, outbox: policy.Outbox, headers: Mapping[str, Any]) -> None:
        """One round on the current connection (opened first if there is none): a connection
        that drops puts its unconfirmed messages back in ``outbox``; any other failure leaves,
        the connection dropped."""
        try:
            link = self._link if self._link is not None and self._link.is_open else None
            self._publish_round(link or self._open(self.reconnect_attempts), outbox, headers)
        except BROKER_ERRORS as exc:
            self._connection_lost(outbox, exc)
        except (BrokerUnavailable, BrokerConfigError, PublishNotConfirmed):
            self._confirms.new_channel()
            self._drop()
            raise

    def _publish_round(
        self, link: ConfirmingLink, outbox: policy.Outbox, headers: Mapping[str, Any]
    ) -> None:
        """Publish what ``outbox`` has now (with ``headers``); wait for every confirm; then, if
        refused messages wait, until the first may go again."""
        self._send_due(link, outbox, headers)
        self._pump(link, time.monotonic() + self.timeout_s, until_below=0)
        self._refusals(outbox)
        self._wait_for_the_first_refused(link, outbox)

    def _send_due(
        self, link: ConfirmingLink, outbox: policy.Outbox, headers: Mapping[str, Any]
    ) -> None:
        """Send each message ``outbox`` has now, keeping at most ``confirm_window`` unconfirmed
        (then waiting until half of them are confirmed)."""
        confirms = self._confirms
        deadline = time.monotonic() + self.timeout_s
        while (msg := outbox.next(time.monotonic())) is not None:
            link.send(self.topology.queue, msg, headers)
            confirms.sent(msg)
            if len(confirms.pending) >= self.confirm_window:
                self._pump(link, deadline, until_below=self.confirm_window // 2)
                deadline = time.monotonic() + self.timeout_s
            elif confirms.next_tag % 64 == 0:
                link.poll(0)  # take the confirms and returns that arrived, without waiting
            self._refusals(outbox)

    def _wait_for_the_first_refused(self, link: ConfirmingLink, outbox: policy.Outbox) -> None:
        due_at = outbox.next_due_at()
        delay_s = 0.0 if due_at is None else due_at - time.monotonic()
        if delay_s > 0:
            link.sleep(delay_s)  # a backoff, not a wait on the broker; frames keep flowing

    def _connection_lost(self, outbox: policy.Outbox, exc: BaseException) -> None:
        """The connection broke: its unconfirmed messages go back in ``outbox`` for the next
        connection, at another node; ``BrokerUnavailable`` once one has been lost with
        ``reconnect_attempts`` connections."""
        lost = self._confirms.new_channel()
        log.warning(
            "broker connection lost with %d unconfirmed message(s); reconnecting: %r",
            len(lost),
            exc,
        )
        self._drop(failed=True)
        given_up = outbox.lost_with_connection(lost, limit=self.reconnect_attempts)
        if given_up is not None:
            raise BrokerUnavailable(
                f"report {given_up.report_id[:12]} still unconfirmed after "
                f"{self.reconnect_attempts} reconnects"
            ) from exc

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
