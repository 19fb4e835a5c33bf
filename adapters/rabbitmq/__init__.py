"""RabbitMQ, through pika: connecting to one of several nodes in turn, the topology, publishing
with confirms, the worker's consume/ack/republish primitives, queue depths, dead letters. pika's
errors leave as ``BrokerUnavailable``, or ``BrokerConfigError`` when retrying cannot help.

What each module owns:

- ``channel``: the one way to open a channel (``open_channel``, ``session``): connect in turn,
  declare the topology, translate errors, report a lost node; every pika call (the only pika
  import).
- ``publisher``: ``Publisher``, a window of confirms, refusals published again.
- ``consumer``: ``ConsumerSession``, the worker's consume/ack/nack/republish.
- ``deadletters``: ``DeadLetterBox``, browse/replay/purge the dead-letter queue.
- ``broker``: ``Broker``, which builds them all for one work queue, and the queue depths.
- ``policy``: the decisions that need no pika (node order, refusals, confirms, the outbox, the
  queue migrations), unit-tested.
"""

from adapters.rabbitmq.broker import Broker, read_queues
from adapters.rabbitmq.channel import connect, declare_topology, queue_depth, refusal
from adapters.rabbitmq.consumer import ConsumerSession
from adapters.rabbitmq.deadletters import DeadLetterBox
from adapters.rabbitmq.policy import Nodes
from adapters.rabbitmq.publisher import Publisher
from adapters.rabbitmq.records import Incoming, QueueDepth

__all__ = [
    "Broker",
    "ConsumerSession",
    "DeadLetterBox",
    "Incoming",
    "Nodes",
    "Publisher",
    "QueueDepth",
    "connect",
    "declare_topology",
    "queue_depth",
    "read_queues",
    "refusal",
]
