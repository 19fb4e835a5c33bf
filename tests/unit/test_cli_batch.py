"""``finpipe extract --provider openai`` in batch mode, through the real SDK against the fake
server: every input answered, no synchronous chat call; and the deadlines of the nightly step."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from fakes.openai_server import FakeOpenAI
from finpipe.cli import cli
from ops.nightly import export_deadlines
from schemas.settings import Settings

NAMES = ["ABC", "DEF", "GHI", "JKL", "MNO"]


def test_batch_mode_extract_answers_every_input_with_no_synchronous_call(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": n, "text": f"Company {n} reported revenue of ${i}.5 million."}) + "\n"
            for i, n in enumerate(NAMES, 1)
        )
    )
    with FakeOpenAI() as server:
        env = {
            **server.worker_env(),
            "FINPIPE_LLM_MODE": "batch",
            "FINPIPE_BATCH_POLL_S": "0.01",
            "FINPIPE_BATCH_SNIPPETS": "2",
        }
        result = CliRunner().invoke(cli, ["extract", "--provider", "openai", str(path)], env=env)
        assert result.exit_code == 0, result.output
        assert server.calls == 0
        assert server.batch_lines == 3 and len(server.batches.created) == 1
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["id"] for x in lines] == NAMES
    assert all(len(x["facts"]) == 1 for x in lines)
    assert lines[1]["facts"][0]["value_text"] == "$2.5 million"
    assert "batch: completed 3/3 answered" in result.stderr


def test_sync_mode_extract_makes_synchronous_calls(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "Company ABC had revenue of $1.5 million."}))
    with FakeOpenAI() as server:
        result = CliRunner().invoke(
            cli, ["extract", "--provider", "openai", str(path)], env=server.worker_env()
        )
        assert result.exit_code == 0, result.output
        assert server.calls == 1 and server.batch_lines == 0


def test_jobs_are_cancelled_the_margin_before_the_next_export() -> None:
    settings = Settings(export_cron="30 2 * * *", batch_cancel_margin_s=900)
    now = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    cancel_at, give_up_at = export_deadlines(settings, now)
    export = datetime(2026, 11, 30, 2, 30, tzinfo=UTC).timestamp()
    assert (cancel_at, give_up_at) == (export - 900, export - 450)
