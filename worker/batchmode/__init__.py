"""Batch API mode: the nightly run's model calls as OpenAI batch jobs, at half the price.

- :mod:`~worker.batchmode.requests` (pure): request lines from chat completion bodies, ids from
  their content, input files under the Batch API's limits;
- :mod:`~worker.batchmode.results` (pure): reading output and error files;
- :mod:`~worker.batchmode.jobs` (pure): the stored job, its parts and their next step;
- :mod:`~worker.batchmode.jobstore`: the job store protocol (MongoDB in the adapter) and a memory
  store;
- :mod:`~worker.batchmode.client`: the part of the OpenAI client used, as protocols;
- :mod:`~worker.batchmode.runner`: submit, resume, poll, collect, cancel.

``FINPIPE_LLM_MODE`` and the flex tier of ordinary calls are the model client's
(:mod:`worker.model.tiers`).

Nothing here imports ``openai`` or ``pymongo``: the client and the store are passed in.
"""
