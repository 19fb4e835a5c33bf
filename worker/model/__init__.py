"""The model path: extraction through an OpenAI-compatible chat completions API.

One module per concern; only :mod:`worker.model.client` imports ``openai``.

- ``prompt``: what we ask (system prompt with worked examples, messages), ``PROMPT_VERSION``;
- ``schema``: the answer models, the strict JSON schema, reading an answer per snippet;
- ``formats``: the output format (strict schema, JSON object, plain text) and its fallback;
- ``profiles`` (+ ``profiles.toml``): per model family, parameters, prices, shutdown dates;
- ``params``: the request body for a profile, and the parameters a server refused this run;
- ``failures``: what a failed call means (retry, adapt, stop the worker, bad input);
- ``client``: the SDK client, one call, the SDK's errors and usage translated into ours;
- ``tiers``: ``FINPIPE_LLM_MODE`` (sync, flex, batch) and the flex tier's fallback to standard;
- ``calls``: one billed completion with retries, the run's budget and adaptation;
- ``asker``: one call of the engine: its request body, sending it, its usage recorded and logged;
- ``reports``: reports into snippet requests and answers back into reports' facts;
- ``grounding``: a proposed fact is kept only when its text stands in the snippet;
- ``reask``: what to do with an answer (keep, ask again, split, fall back), one function each;
- ``plan``: which calls answer a set of snippets (cache hits, one ask per text, packing);
- ``prefill``: an answer from a Batch API job read as the engine reads its own, its cache
  entries and its usage;
- ``cache``: answers kept between runs (the :class:`~worker.model.cache.ExtractionCache`
  protocol), the usage ledger's sink, and the worker's filter in front of the stored cache;
- ``membership``: which cache keys the store holds, 8 bytes a key (the filter's set);
- ``ledger``: tokens and estimated cost per call and per run;
- ``engine``: :class:`~worker.model.engine.OpenAIExtractor`, tying them together.

Pure (no network, no clock): ``prompt``, ``schema``, ``formats``, ``profiles`` (apart from
reading its data file), ``params``, ``failures``, ``reports``, ``grounding``, ``reask``,
``ledger``, ``membership``, ``tiers``, ``plan``.
"""
