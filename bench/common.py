"""What every benchmark scenario shares: settings, clean-up, report generation, processes, rows.

Benchmarks run against the real RabbitMQ and MongoDB-compatible server that
``scripts/services.sh up`` starts. Every scenario uses its own queue (``bench.<name>``) and database
(``bench_<name>``) and deletes both before and after it runs.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pika  # noqa: E402
import pika.exceptions  # noqa: E402
import pymongo  # noqa: E402
import pymongo.errors  # noqa: E402

from schemas.message import Provenance, ReportMessage, SubmitReport  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from schemas.topology import Topology  # noqa: E402

FACTS = "financial_data"


# --------------------------------------------------------------------------- result rows


@dataclass
class Row:
    """One line of the results table: a measured figure beside its same-run reference."""

    scenario: str
    params: str
    metric: str
    figure: float
    unit: str
    reference: float | None = None
    reference_label: str = ""
    target: str = ""
    holds: bool | None = None
    note: str = ""
    ratio: float | None = field(default=None)
    #: how the ratio reads: "%" (share of a ceiling) or "x" (multiple of a baseline)
    ratio_unit: str = "%"

    def __post_init__(self) -> None:
        if self.ratio is None and self.reference:
            self.ratio = self.figure / self.reference

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit == "x":
        return f"{value:.1f}x"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.01 or value == 0:
        text = f"{value:.3f}".rstrip("0").rstrip(".") if value != 0 else "0"
    else:
        text = f"{value:.2g}"
    return f"{text} {unit}".strip()


# --------------------------------------------------------------------------- settings and clean-up


def bench_settings(name: str, **overrides: Any) -> Settings:
    """Settings from the environment, with this scenario's own queue and database."""
    return Settings.from_env(
        queue=f"bench.{name}", mongo_db=f"bench_{name}", log_level="INFO", **overrides
    )


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a finpipe process needs to act exactly like ``settings``."""
    env = settings.process_env()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def amqp_connection(settings: Settings) -> pika.BlockingConnection:
    params = pika.URLParameters(settings.amqp_url)
    params.socket_timeout = 10
    return pika.BlockingConnection(params)


def mongo(settings: Settings) -> pymongo.MongoClient[dict[str, Any]]:
    return pymongo.MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=10_000, tz_aware=True)


def delete_queues(settings: Settings) -> None:
    topology = Topology.for_settings(settings)
    conn = amqp_connection(settings)
    try:
        for queue in topology.all_queues():
            ch = conn.channel()
            with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                ch.queue_delete(queue)
        for exchange in topology.all_exchanges():
            ch = conn.channel()
            with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                ch.exchange_delete(exchange)
    finally:
        conn.close()


def clean(settings: Settings, *extra_dbs: str) -> None:
    """Delete the scenario's queues, exchanges and database(s)."""
    delete_queues(settings)
    with mongo(settings) as client:
        for db in (settings.mongo_db, *extra_dbs):
            client.drop_database(db)


@contextlib.contextmanager
def cleaned(settings: Settings, *extra_dbs: str) -> Iterator[None]:
    clean(settings, *extra_dbs)
    try:
        yield
    finally:
        clean(settings, *extra_dbs)


def wait_for_services(timeout_s: float = 180.0) -> None:
    """Until RabbitMQ and the MongoDB server both answer (other work may restart them)."""
    settings = Settings.from_env()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            amqp_connection(settings).close()
            with mongo(settings) as client:
                client.admin.command("ping")
            return
        except (pika.exceptions.AMQPError, pymongo.errors.PyMongoError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def queue_depth(settings: Settings) -> int:
    """Messages ready in the work queue (passive declare; unacknowledged ones are not counted)."""
    conn = amqp_connection(settings)
    try:
        ok = conn.channel().queue_declare(settings.queue, passive=True)
        return int(ok.method.message_count)
    finally:
        conn.close()


# --------------------------------------------------------------------------- reports

_METRICS = ("revenue", "net income", "operating income", "gross profit", "EBITDA")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def company_name(i: int) -> str:
    """A distinct all-letter company name per ``i`` ("Company BAAC")."""
    letters = []
    for _ in range(4):
        i, r = divmod(i, 26)
        letters.append(_LETTERS[r])
    while i:
        i, r = divmod(i, 26)
        letters.append(_LETTERS[r])
    return "Company " + "".join(reversed(letters))


def report_texts(n: int, *, salt: str = "") -> list[str]:
    """``n`` distinct single-sentence reports, each holding exactly one amount:
    "Company BAAC reported revenue of $45.6 million for Q2 2024." ``salt`` varies the amounts
    so that two sets of the same size share no text (and no cache entry)."""
    offset = sum(map(ord, salt)) * 7919 if salt else 0
    out = []
    for i in range(n):
        k = i + offset
        metric = _METRICS[k % len(_METRICS)]
        amount = f"${10 + k % 890}.{k % 10} million"
        period = f"Q{k % 4 + 1} {2020 + (k // 4) % 6}"
        out.append(f"{company_name(i)} reported {metric} of {amount} for {period}.")
    return out


def messages_for(texts: Sequence[str], source: str = "bench") -> list[ReportMessage]:
    prov = Provenance(channel="api")
    return [
        ReportMessage.build(SubmitReport(raw_text=t, source=source), prov, metadata={})
        for t in texts
    ]


def write_jsonl(path: Path, texts: Sequence[str]) -> None:
    import json

    with path.open("w", encoding="utf-8") as fh:
        for t in texts:
            fh.write(json.dumps({"raw_text": t, "source": "bench"}) + "\n")


def preload(settings: Settings, texts: Sequence[str]) -> None:
    """Publish the reports into the work queue (with confirms), before a worker starts."""
    from adapters.rabbitmq import Publisher

    with Publisher.from_settings(settings) as pub:
        msgs = messages_for(texts)
        for start in range(0, len(msgs), 5000):
            pub.publish_many(msgs[start : start + 5000])


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "finpipe-bench"
    path.mkdir(exist_ok=True)
    return path


class Proc:
    """A finpipe subprocess with its log in a file (``python -m finpipe ...``)."""

    def __init__(
        self, name: str, args: Sequence[str], env: dict[str, str], prefix: Sequence[str] = ()
    ) -> None:
        self.log_path = log_dir() / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*(prefix or [sys.executable]), "-m", "finpipe", *args],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout_s: float = 60.0) -> float:
        """Wait until the log matches ``pattern``; the monotonic time it was seen."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if rx.search(self.log()):
                return time.monotonic()
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args} exited: {self.tail()}")
            time.sleep(0.01)
        raise TimeoutError(f"no {pattern!r} in {self.log_path} after {timeout_s:.0f} s")

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code


def worker(name: str, settings: Settings, *args: str, **extra_env: str) -> Proc:
    return Proc(name, ["worker", *args], process_env(settings, **extra_env))


def wait_for_count(
    count: Callable[[], int],
    target: int,
    *,
    timeout_s: float,
    procs: Sequence[Proc] = (),
    poll_s: float = 0.1,
    on_progress: Callable[[int], None] | None = None,
) -> float:
    """Poll ``count()`` until it reaches ``target``; the monotonic time it did."""
    deadline = time.monotonic() + timeout_s
    while True:
        n = count()
        now = time.monotonic()
        if on_progress is not None:
            on_progress(n)
        if n >= target:
            return now
        for p in procs:
            if p.proc.poll() is not None:
                raise RuntimeError(f"worker exited early ({n}/{target}): {p.tail()}")
        if now > deadline:
            raise TimeoutError(f"only {n} of {target} after {timeout_s:.0f} s")
        time.sleep(poll_s)


class Quarters:
    """When a count passed each quarter of its target, to compare the time per 1,000 reports at
    the start and at the end of a run (``on_progress`` of :func:`wait_for_count`)."""

    def __init__(self, target: int, started: float) -> None:
        self.target = target
        self.marks = [started]

    def __call__(self, n: int) -> None:
        now = time.monotonic()
        while len(self.marks) < 5 and n >= self.target * len(self.marks) / 4:
            self.marks.append(now)

    def per_thousand_s(self, quarter: int) -> float:
        """Seconds per 1,000 reports in ``quarter`` (1 to 4)."""
        span = self.marks[quarter] - self.marks[quarter - 1]
        return span / (self.target / 4) * 1000

    def summary(self) -> str:
        return " / ".join(f"{self.per_thousand_s(q):.2f}" for q in range(1, 5))


_STORED = re.compile(r"stored (\d+) report\(s\) with")


def stored_reports(procs: Sequence[Proc]) -> Callable[[], int]:
    """Reports the workers logged as stored ("stored 20 report(s) with 20 fact(s) by openai",
    logged once the batch's writes succeeded). Counting in the logs puts no load on the
    database server, where any count or filtered query reads the whole collection."""

    def count() -> int:
        return sum(int(m) for p in procs for m in _STORED.findall(p.log()))

    return count


def count_facts(settings: Settings) -> int:
    """Facts in the scenario's database (one full read; used once, at the end)."""
    with mongo(settings) as client:
        return int(client[settings.mongo_db][FACTS].count_documents({}))


def status_value(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


@contextlib.contextmanager
def fake_model(base_ms: float = 0.0, per_snippet_ms: float = 0.0) -> Iterator[Any]:
    """The local OpenAI-compatible server (``fakes/openai_server.py``) in this process, answering
    as the rules extractor reads each snippet, after ``base_ms + per_snippet_ms * snippets``."""
    from fakes.openai_server import FakeOpenAI

    with FakeOpenAI(base_ms=base_ms, per_snippet_ms=per_snippet_ms) as server:
        yield server


def model_settings(name: str, server: Any, **overrides: Any) -> Settings:
    """Scenario settings with the OpenAI provider pointed at the local server."""
    return bench_settings(
        name,
        provider="openai",
        openai_api_key="bench",
        openai_base_url=server.base_url,
        **overrides,
    )


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
