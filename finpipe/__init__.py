"""finpipe: turn unstructured financial reports into clean, queryable numbers.

This package is the composition root: the ``finpipe`` command reads settings, builds the adapters
(``adapters``) and passes them to ``ingest``, ``worker``, ``export`` and ``ops``. Nothing connects
at import time.
"""

__version__ = "0.1.0"
