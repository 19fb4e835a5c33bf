# One image for the API, the workers and the scheduler.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml setup.cfg README.md ./
COPY schemas ./schemas
COPY adapters ./adapters
COPY ingest ./ingest
COPY worker ./worker
COPY export ./export
COPY ops ./ops
COPY finpipe ./finpipe
RUN pip install . && useradd --create-home --uid 10001 finpipe \
    && mkdir -p /data/inbox /data/exports && chown -R finpipe /data
USER finpipe
ENV FINPIPE_INBOX=/data/inbox FINPIPE_EXPORT_DIR=/data/exports
ENTRYPOINT ["finpipe"]
CMD ["--help"]
