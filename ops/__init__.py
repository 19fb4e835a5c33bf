"""Operator commands' logic: ``finpipe status`` (``status``) and ``finpipe dlq`` (``deadletters``),
over the adapters they are given."""
