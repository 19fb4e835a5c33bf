"""Test support: the servers the tests start, and the load they drive, shared with ``bench/``.

- :mod:`~fakes.openai_server`: the local OpenAI-compatible HTTP server, the model server of every
  test and benchmark (``python -m fakes.openai_server`` runs it on its own);
- :mod:`~fakes.script`: what it answers: the actions a test scripts, and the echo of the rules
  extractor by default;
- :mod:`~fakes.chat`: one chat request answered as a kind of server does (its refusals, the
  completion and its token counts);
- :mod:`~fakes.batches`: its Batch API, answering request lines as chat calls, over the files and
  batches of :mod:`~fakes.batch_objects`;
- :mod:`~fakes.limits`: its rate limits, charged as OpenAI charges them;
- :mod:`~fakes.http_server`: a threaded HTTP server in the background, quiet in the logs;
- :mod:`~fakes.soak`: many keep-alive clients against a running ``finpipe serve``, and the server
  process's resources read from ``/proc``.

RabbitMQ and MongoDB are never faked: the tests run against the real servers. Nothing in the
project's own packages imports this one; ``tests/`` and ``bench/`` do, and neither imports the
other's fakes.
"""
