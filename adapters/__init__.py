"""One package per outside system: ``rabbitmq`` (pika imported by ``rabbitmq/channel.py`` only)
and ``mongo`` (the only pymongo import). Both translate their library's errors into
``schemas.errors`` at the boundary."""
