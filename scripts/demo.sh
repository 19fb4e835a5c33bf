#!/usr/bin/env bash
# The main job on samples/: POST the seed report to /submit, ingest every sample file, run a worker
# until the queue is drained, and print the stored records. Services must be up (make demo does it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FINPIPE=${FINPIPE:-.venv/bin/finpipe}
PORT=${FINPIPE_DEMO_PORT:-8089}
export FINPIPE_MONGO_DB=${FINPIPE_MONGO_DB:-finpipe_demo}
export FINPIPE_QUEUE=${FINPIPE_QUEUE:-finpipe.demo}
export FINPIPE_INBOX=${FINPIPE_INBOX:-$ROOT/inbox}
export FINPIPE_EXPORT_DIR=${FINPIPE_EXPORT_DIR:-$ROOT/exports}
LOG=$ROOT/.services/demo-serve.log
mkdir -p "$ROOT/.services"

echo "== finpipe serve on 127.0.0.1:$PORT (log: $LOG)"
$FINPIPE serve --port "$PORT" >"$LOG" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/healthz"; echo

SEED='{"raw_text": "Company XYZ reported a net income of $5.3 million for Q1 2024."}'
echo "== POST /submit $SEED"
ANSWER=$(curl -sS -X POST -H 'Content-Type: application/json' -d "$SEED" \
  "http://127.0.0.1:$PORT/submit")
echo "$ANSWER"
REPORT_ID=$(echo "$ANSWER" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["report_id"])')

if $FINPIPE ingest --help >/dev/null 2>&1; then
  echo "== finpipe ingest samples/ (files outside the inbox stay where they are)"
  $FINPIPE ingest samples/ || echo "(some sample files were rejected on purpose; see above)"
fi

echo "== finpipe worker --burst (processes what is queued, then exits)"
$FINPIPE worker --burst

echo "== the seed report's record in financial_data"
$FINPIPE facts --report "$REPORT_ID"
echo "== every stored fact (first 50)"
$FINPIPE facts --limit 50

echo "== finpipe companies (one canonical name per company, with the written forms merged)"
$FINPIPE companies
echo "== finpipe export (the morning's CSV summaries, workbook and charts)"
$FINPIPE export
echo "== finpipe status"
$FINPIPE status
