"""The model path: extraction through an OpenAI-compatible chat completions API.

One module per concern; only :mod:`worker.model.client` imports ``openai``.

- ``prompt``: what we ask (system prompt, messages), versioned by ``PROMPT_VERSION``;
- ``schema``: the answer models, the strict JSON schema, reading an answer per snippet;
- ``grounding``: a proposed fact is kept only when its text stands in the snippet;
- ``cache``: answers kept between runs (the :class:`~worker.model.cache.ExtractionCache` protocol);
- ``ledger``: tokens and estimated cost per call and per run;
- ``client``: the SDK client, one call, the SDK's errors translated into ours;
- ``calls``: one billed completion with retries and the run's budget;
- ``reask``: what to do with an answer (keep, ask again, split, fall back), one function each;
- ``engine``: :class:`~worker.model.engine.OpenAIExtractor`, tying them together.

Pure modules (no network, no clock): ``prompt``, ``schema``, ``grounding``, ``ledger``,
``reask``.
"""
