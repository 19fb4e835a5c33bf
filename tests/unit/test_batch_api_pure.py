"""Batch mode's pure parts: request lines, file splitting, result files, job steps, the mode."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.errors import ConfigError
from worker.batch_api.jobs import (
    BatchJob,
    JobPart,
    Outcome,
    PartState,
    Step,
    new_job_id,
    next_step,
)
from worker.batch_api.jobstore import MemoryJobStore, StaleJob
from worker.batch_api.requests import (
    BatchRequest,
    build_requests,
    custom_id_for,
    file_bytes,
    split_files,
)
from worker.batch_api.results import RequestError, parse_result_lines
from worker.model.formats import VARIANTS
from worker.model.formats import response_format as format_of
from worker.model.prompt import build_messages
from worker.model.tiers import (
    FLEX_TIMEOUT_S,
    LLMMode,
    call_options,
    next_tier,
    parse_llm_mode,
)
from worker.packing import pack

# --------------------------------------------------------------------------- requests


def body_for(group: list[str], model: str = "gpt-6-luna") -> dict[str, Any]:
    return {
        "model": model,
        "response_format": format_of(VARIANTS[0]),
        "messages": build_messages([(f"s{i}", t) for i, t in enumerate(group, 1)]),
    }


def test_custom_id_comes_from_the_body_and_ignores_key_order() -> None:
    a = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    b = {"messages": [{"content": "x", "role": "user"}], "model": "m"}
    assert custom_id_for(a) == custom_id_for(b)
    assert custom_id_for(a) != custom_id_for({**a, "model": "n"})
    assert custom_id_for(a).startswith("fp-") and len(custom_id_for(a)) <= 64


def test_a_request_line_is_what_the_batch_api_reads() -> None:
    request = BatchRequest.of(body_for(["Revenue was $5 million."]))
    line = json.loads(request.line())
    assert line == {
        "custom_id": request.custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": request.body,
    }
    assert request.line().endswith(b"\n") and request.line().count(b"\n") == 1


def test_packed_groups_become_one_request_each_with_the_synchronous_body() -> None:
    texts = ["Revenue was $5 million.", "Net income was $1 million.", "EPS was $0.10."]
    groups = pack(texts, max_items=2, max_chars=10_000, size=len)
    planned = build_requests(groups, body_for)
    assert [r.body for r in planned.requests] == [body_for(g) for g in groups]
    assert [planned.groups[r.custom_id] for r in planned.requests] == [[g] for g in groups]


def test_identical_requests_are_sent_once_and_answer_every_group() -> None:
    groups = [["Revenue was $5 million."], ["EPS was $0.10."], ["Revenue was $5 million."]]
    planned = build_requests(groups, body_for)
    assert len(planned.requests) == 2
    first = planned.requests[0].custom_id
    assert planned.groups[first] == [groups[0], groups[2]]


@pytest.mark.parametrize(
    ("n", "max_requests", "sizes"),
    [(5, 2, [2, 2, 1]), (4, 4, [4]), (1, 1, [1]), (7, 3, [3, 3, 1])],
)
def test_files_are_cut_at_the_request_count(n: int, max_requests: int, sizes: list[int]) -> None:
    requests = [BatchRequest.of(body_for([f"Revenue was ${i} million."])) for i in range(n)]
    plan = split_files(requests, max_requests=max_requests)
    assert [len(f) for f in plan.files] == sizes
    assert [r for f in plan.files for r in f] == requests


def test_files_are_cut_at_the_byte_limit_and_an_oversize_line_goes_synchronous() -> None:
    requests = [BatchRequest.of(body_for([f"Revenue was ${i} million."])) for i in range(4)]
    line = len(requests[0].line())
    huge = BatchRequest.of(body_for(["Revenue was $1 million. " * 400]))
    plan = split_files([*requests, huge], max_bytes=2 * line + 10)
    assert [len(f) for f in plan.files] == [2, 2]
    assert all(len(file_bytes(f)) <= 2 * line + 10 for f in plan.files)
    assert plan.too_large == [huge]


def test_a_file_holds_one_model_and_no_duplicate() -> None:
    a = BatchRequest.of(body_for(["Revenue was $5 million."], model="a"))
    b = BatchRequest.of(body_for(["Revenue was $5 million."], model="b"))
    plan = split_files([a, b, a])
    assert plan.files == [[a], [b]]


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split_files([], max_requests=0)


# --------------------------------------------------------------------------- results


def out_line(cid: str, content: str = "{}") -> str:
    body = {"choices": [{"index": 0, "message": {"content": content}, "finish_reason": "stop"}]}
    return json.dumps({"id": "r", "custom_id": cid, "response": {"status_code": 200, "body": body}})


def test_output_lines_are_matched_by_custom_id() -> None:
    parsed = parse_result_lines((out_line("b") + "\n" + out_line("a") + "\n\n").encode())
    assert set(parsed.answers) == {"a", "b"}
    assert parsed.errors == {} and parsed.unreadable_lines == 0


def test_error_lines_say_why() -> None:
    failed = {
        "custom_id": "a",
        "response": {
            "status_code": 500,
            "body": {"error": {"message": "boom", "type": "server_error", "code": None}},
        },
        "error": None,
    }
    expired = {
        "custom_id": "b",
        "response": None,
        "error": {"code": "batch_expired", "message": "not run in time"},
    }
    parsed = parse_result_lines(json.dumps(failed) + "\n" + json.dumps(expired))
    assert parsed.errors == {
        "a": RequestError("server_error", "boom", 500),
        "b": RequestError("batch_expired", "not run in time"),
    }
    assert str(parsed.errors["a"]) == "HTTP 500 server_error: boom"


def test_unreadable_lines_are_counted_never_guessed() -> None:
    no_completion = json.dumps(
        {"custom_id": "c", "response": {"status_code": 200, "body": {"x": 1}}}
    )
    parsed = parse_result_lines('{"custom_id": \n{"no_id": 1}\n' + no_completion)
    assert parsed.unreadable_lines == 2
    assert parsed.errors["c"].code == "unreadable" and not parsed.answers


def test_an_answer_wins_over_an_error_for_the_same_request() -> None:
    error = json.dumps({"custom_id": "a", "response": None, "error": {"code": "x"}})
    parsed = parse_result_lines(out_line("a") + "\n" + error)
    assert set(parsed.answers) == {"a"} and not parsed.errors


# --------------------------------------------------------------------------- jobs


@pytest.mark.parametrize(
    ("state", "remote", "step"),
    [
        (PartState.BUILDING, None, Step.UPLOAD),
        (PartState.UPLOADED, None, Step.CREATE),
        (PartState.SUBMITTED, "validating", Step.POLL),
        (PartState.SUBMITTED, "in_progress", Step.POLL),
        (PartState.SUBMITTED, "finalizing", Step.POLL),
        (PartState.SUBMITTED, "cancelling", Step.POLL),
        (PartState.SUBMITTED, "completed", Step.COLLECT),
        (PartState.SUBMITTED, "expired", Step.COLLECT),
        (PartState.SUBMITTED, "failed", Step.COLLECT),
        (PartState.SUBMITTED, "cancelled", Step.COLLECT),
        (PartState.COLLECTED, "completed", Step.NONE),
    ],
)
def test_the_next_step_follows_from_the_stored_state(
    state: PartState, remote: str | None, step: Step
) -> None:
    assert next_step(JobPart(0, 1, 10, state=state, remote_status=remote)) is step


def test_a_job_document_round_trips() -> None:
    job = BatchJob(
        "batch-x",
        1.5,
        "m",
        "/v1/chat/completions",
        [
            JobPart(0, 2, 100, PartState.COLLECTED, "f", "b", "expired", outcome=Outcome.EXPIRED),
            JobPart(1, 1, 50, counts={"total": 1, "completed": 0, "failed": 0}),
        ],
    )
    doc = job.to_doc()
    assert doc["_id"] == "batch-x" and doc["open"] is True and doc["state"] == "building"
    assert json.loads(json.dumps(doc)) == doc
    assert BatchJob.from_doc(doc) == job


def test_the_store_refuses_a_save_from_a_stale_copy() -> None:
    store = MemoryJobStore()
    job = BatchJob("batch-x", 0.0, "m", "/v1/chat/completions", [JobPart(0, 1, 10)], version=1)
    store.save_job(job.to_doc())
    job.version = 2
    store.save_job(job.to_doc())
    with pytest.raises(StaleJob):
        store.save_job(job.to_doc())


def test_job_ids_name_the_time_and_the_requests() -> None:
    job_id = new_job_id(1796000000.0, ["fp-b", "fp-a"])
    assert job_id.startswith("batch-20261130T")
    assert job_id == new_job_id(1796000000.0, ["fp-a", "fp-b"])
    assert job_id != new_job_id(1796000000.0, ["fp-a"])


# --------------------------------------------------------------------------- mode


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        (None, LLMMode.SYNC),
        ("", LLMMode.SYNC),
        ("sync", LLMMode.SYNC),
        ("flex", LLMMode.FLEX),
        (" Batch ", LLMMode.BATCH),
    ],
)
def test_llm_mode_is_read_from_the_setting(raw: str | None, mode: LLMMode) -> None:
    assert parse_llm_mode(raw) is mode


def test_an_unknown_llm_mode_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"FINPIPE_LLM_MODE='fast' is not one of sync\|flex"):
        parse_llm_mode("fast")


def test_flex_calls_ask_for_the_flex_tier_with_a_long_timeout() -> None:
    assert call_options(LLMMode.FLEX, 60.0) == {"service_tier": "flex", "timeout": FLEX_TIMEOUT_S}
    assert call_options(LLMMode.FLEX, 2000.0)["timeout"] == 2000.0
    assert call_options(LLMMode.SYNC, 60.0) == {} == call_options(LLMMode.BATCH, 60.0)


UNAVAILABLE = {"message": "Resource Unavailable", "type": "rate_limit", "code": None}


@pytest.mark.parametrize(
    ("tier", "status", "error", "next_", "fell_back"),
    [
        ("flex", 429, UNAVAILABLE, None, True),
        ("flex", 429, {"code": "resource_unavailable", "message": "try later"}, None, True),
        ("flex", 429, {"code": "rate_limit_exceeded", "message": "Rate limit"}, "flex", False),
        ("flex", 429, {"code": "insufficient_quota", "message": "pay"}, "flex", False),
        ("flex", 500, UNAVAILABLE, "flex", False),
        (None, 429, UNAVAILABLE, None, False),
    ],
)
def test_flex_falls_back_to_standard_only_when_it_has_no_capacity(
    tier: str | None,
    status: int,
    error: dict[str, Any],
    next_: str | None,
    fell_back: bool,
) -> None:
    decision = next_tier(tier, status, error)
    assert (decision.service_tier, decision.fell_back) == (next_, fell_back)
    assert (decision.reason is not None) == fell_back
