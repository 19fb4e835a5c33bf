"""Batch API mode: the nightly run's model calls as OpenAI batch jobs, at half the price.

- :mod:`~worker.batch_api.requests` (pure): request lines from chat completion bodies, ids from
  their content, input files under the Batch API's limits;
- :mod:`~worker.batch_api.results` (pure): reading output and error files;
- :mod:`~worker.batch_api.jobs` (pure): the stored job, its parts and their next step;
- :mod:`~worker.batch_api.jobstore`: the job store protocol (MongoDB in the adapter), a memory
  store, and a part's request lines saved and loaded;
- :mod:`~worker.batch_api.client`: the part of the OpenAI client used, as protocols;
- :mod:`~worker.batch_api.remote`: an input file or batch found again after a restart, a batch's
  state read into its part;
- :mod:`~worker.batch_api.delivery` (pure): what the runner hands over (a part's result, a run's
  report);
- :mod:`~worker.batch_api.tokens`: a part refused for the token queue, split to wait for room;
- :mod:`~worker.batch_api.runner`: submit, resume, poll, collect, cancel;
- :mod:`~worker.batch_api.nightly`: the nightly step over the engine: its plan of the calls as
  request lines, the answers into its cache, the rest through its synchronous path.

This package imports :mod:`worker.model` (the engine plans the calls and reads the answers); the
model package never imports this one. ``FINPIPE_LLM_MODE`` and the flex tier of ordinary calls
are the model client's (:mod:`worker.model.tiers`).

Nothing here imports ``openai`` or ``pymongo``: the client and the store are passed in.
"""
