"""One module per outside system: ``rabbitmq`` (the only pika import) and ``mongo`` (the only
pymongo import). Both translate their library's errors into ``schemas.errors`` at the boundary."""
