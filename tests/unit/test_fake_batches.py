"""The local Batch API's router on its own: validation, listing, cancelling, errors."""

from __future__ import annotations

import json
from typing import Any

from fakes.batches import FakeBatches
from fakes.script import chat_completion

BOUNDARY = "x-boundary"


def upload(fake: FakeBatches, lines: list[dict[str, Any]], purpose: str = "batch") -> Any:
    data = "".join(json.dumps(line) + "\n" for line in lines)
    body = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="purpose"\r\n\r\n'
        f"{purpose}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
        f"{data}\r\n"
        f"--{BOUNDARY}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return call(fake, "POST", "/v1/files", body, headers)


def call(
    fake: FakeBatches,
    method: str,
    path: str,
    body: bytes | dict[str, Any] = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    status, _, data = fake.handle(method, path, headers or {}, raw)
    try:
        return status, json.loads(data)
    except json.JSONDecodeError:
        return status, data


def line(cid: str, model: str = "m", url: str = "/v1/chat/completions") -> dict[str, Any]:
    return {"custom_id": cid, "method": "POST", "url": url, "body": {"model": model}}


def answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, chat_completion(body, "{}")


def create(fake: FakeBatches, file_id: str, **extra: Any) -> Any:
    params = {"input_file_id": file_id, "endpoint": "/v1/chat/completions"}
    return call(fake, "POST", "/v1/batches", {**params, "completion_window": "24h", **extra})


def test_an_uploaded_file_comes_back_as_it_was_sent() -> None:
    fake = FakeBatches(answer)
    status, f = upload(fake, [line("a")])
    assert status == 200 and f["filename"] == "in.jsonl" and f["purpose"] == "batch"
    status, data = call(fake, "GET", f"/v1/files/{f['id']}/content")
    assert status == 200 and data == line("a")
    assert call(fake, "GET", "/v1/files?purpose=batch")[1]["data"][0]["id"] == f["id"]
    assert upload(fake, [line("a")], purpose="fine-tune")[0] == 400


def test_an_invalid_input_fails_validation_with_the_line() -> None:
    fake = FakeBatches(answer)
    _, f = upload(fake, [line("a"), line("a"), line("b", url="/v1/embeddings")])
    _, batch = create(fake, f["id"])
    fake.advance()
    _, batch = call(fake, "GET", f"/v1/batches/{batch['id']}")
    assert batch["status"] == "failed" and batch["failed_at"] is not None
    assert [(e["line"], e["code"]) for e in batch["errors"]["data"]] == [
        (2, "invalid_request"),
        (3, "invalid_request"),
    ]
    assert batch["output_file_id"] is None and not fake.answered


def test_one_model_per_file() -> None:
    fake = FakeBatches(answer)
    _, f = upload(fake, [line("a", model="x"), line("b", model="y")])
    _, batch = create(fake, f["id"])
    fake.finish()
    assert fake.status(batch["id"]) == "failed"


def test_batches_are_listed_newest_first_page_by_page() -> None:
    fake = FakeBatches(answer)
    _, f = upload(fake, [line("a")])
    ids = [create(fake, f["id"], metadata={"n": str(i)})[1]["id"] for i in range(3)]
    _, page = call(fake, "GET", "/v1/batches?limit=2")
    assert [b["id"] for b in page["data"]] == ids[::-1][:2] and page["has_more"] is True
    _, page = call(fake, "GET", f"/v1/batches?limit=2&after={page['last_id']}")
    assert [b["id"] for b in page["data"]] == [ids[0]] and page["has_more"] is False


def test_a_finished_batch_cannot_be_cancelled() -> None:
    fake = FakeBatches(answer)
    _, f = upload(fake, [line("a")])
    _, batch = create(fake, f["id"])
    fake.finish()
    assert call(fake, "POST", f"/v1/batches/{batch['id']}/cancel")[0] == 400


def test_bad_requests_are_refused_like_the_real_api() -> None:
    fake = FakeBatches(answer)
    _, f = upload(fake, [line("a")])
    assert create(fake, "file-nope")[0] == 404
    assert create(fake, f["id"], endpoint="/v1/embeddings")[0] == 400
    assert create(fake, f["id"], completion_window="1h")[0] == 400
    assert call(fake, "GET", "/v1/batches/batch_nope")[0] == 404
    assert call(fake, "DELETE", "/v1/batches")[0] == 404


def test_batches_move_on_with_the_clock() -> None:
    now = [1000.0]
    fake = FakeBatches(answer, step_s=10, clock=lambda: now[0])
    _, f = upload(fake, [line("a"), line("b")])
    _, batch = create(fake, f["id"])
    seen = []
    for _ in range(4):
        now[0] += 10
        seen.append(call(fake, "GET", f"/v1/batches/{batch['id']}")[1]["status"])
    assert seen == ["in_progress", "finalizing", "completed", "completed"]
    assert fake.answered == {"a": 1, "b": 1}
