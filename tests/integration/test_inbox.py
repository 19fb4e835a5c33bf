"""The inbox end to end: real files in a temporary inbox, the real watchdog observer, the real
RabbitMQ. What was published is read back from the queue with basic_get."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pika
import pytest

from adapters.rabbitmq import Publisher, declare_topology
from ingest.inbox import Inbox
from ingest.scheduler import build_scheduler, inbox_sweep_job
from ingest.watcher import InboxWatcher
from schemas.message import ReportMessage, report_id_for
from schemas.settings import Settings
from schemas.topology import Topology
from tests.integration.conftest import ROOT, settings_env, wait_until

pytestmark = pytest.mark.integration

SAMPLES = ROOT / "samples"
SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."


class QueueReader:
    """Takes messages off the test's work queue (declaring the topology first, like a worker)."""

    def __init__(self, settings: Settings) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
        self.channel = self.conn.channel()
        declare_topology(self.channel, Topology.for_settings(settings))
        self.queue = settings.queue
        self.messages: list[ReportMessage] = []

    def drain(self) -> list[ReportMessage]:
        while True:
            method, _props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.messages
            self.messages.append(ReportMessage.from_body(body))

    def wait_for_count(self, n: int, timeout_s: float = 20.0) -> list[ReportMessage]:
        wait_until(lambda: len(self.drain()) >= n, timeout_s, f"{n} messages on {self.queue}")
        return self.messages

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def reader(settings: Settings) -> Iterator[QueueReader]:
    r = QueueReader(settings)
    yield r
    r.close()


@contextmanager
def watching(settings: Settings, settle_s: float = 0.5) -> Iterator[Inbox]:
    box = Inbox.from_settings(settings, settle_s=settle_s)
    publisher = Publisher.from_settings(settings)
    watcher = InboxWatcher(box, publisher, poll_s=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert watcher.started.wait(20), "watcher did not start"
        yield box
    finally:
        stop.set()
        thread.join(20)
        publisher.close()


def processed(box: Inbox, name: str) -> list[Path]:
    return sorted(box.processed.glob(f"*/{name}"))


def waiting_files(box: Inbox) -> list[Path]:
    return [p for p in box.root.iterdir() if p.is_file() and not p.name.startswith(".")]


def drop(box: Inbox, source: Path, name: str | None = None) -> Path:
    """Copy into a hidden temporary name, then rename into place, like a careful download."""
    target = box.root / (name or source.name)
    tmp = box.root / f".{target.name}.part"
    shutil.copyfile(source, tmp)
    os.rename(tmp, target)
    return target


def barrier(box: Inbox, reader: QueueReader, tag: str) -> None:
    """Drop a marker report and wait until it is published and moved. The watcher takes files in
    the order it saw them, so by then it has dealt with everything dropped before the marker:
    a count taken now would include any extra publication, without sleeping on a guess."""
    text = f"Marker{tag} reported revenue of $1 million for Q1 2024."
    name = f"zz-marker-{tag}.txt"
    tmp = box.root / f".{name}.part"
    tmp.write_text(text)
    os.rename(tmp, box.root / name)
    wanted = report_id_for(text)
    wait_until(lambda: any(m.report_id == wanted for m in reader.drain()), what=f"marker {tag}")
    wait_until(lambda: processed(box, name), what=f"{name} in processed/")


def from_file(messages: list[ReportMessage], name: str) -> list[ReportMessage]:
    return [m for m in messages if m.provenance.file_name == name]


def test_each_sample_format_is_published_and_moved_to_processed(
    settings: Settings, reader: QueueReader
) -> None:
    names = [
        "feed.jsonl",
        "news_snippets.csv",
        "press_release_northwind_q2_2024.txt",
        "quarterly_report_orion_q3_2024.pdf",
    ]
    with watching(settings) as box:
        for name in names:
            drop(box, SAMPLES / name)
        messages = reader.wait_for_count(4 + 4 + 1 + 1)
        wait_until(lambda: all(processed(box, n) for n in names), what="files in processed/")
    by_file: dict[str, list[ReportMessage]] = {}
    for m in messages:
        by_file.setdefault(m.provenance.file_name or "", []).append(m)
    assert {k: len(v) for k, v in by_file.items()} == {
        "feed.jsonl": 4,
        "news_snippets.csv": 4,
        "press_release_northwind_q2_2024.txt": 1,
        "quarterly_report_orion_q3_2024.pdf": 1,
    }
    seed = next(m for m in by_file["feed.jsonl"] if m.provenance.line == 1)
    assert seed.raw_text == SEED and seed.report_id == report_id_for(SEED)
    sha = hashlib.sha256((SAMPLES / "feed.jsonl").read_bytes()).hexdigest()
    assert seed.provenance.file_sha256 == sha and seed.provenance.channel == "file"
    assert [m.provenance.row for m in by_file["news_snippets.csv"]] == [1, 2, 3, 4]
    assert by_file["news_snippets.csv"][0].company_hint == "Acme Corp"
    pdf = by_file["quarterly_report_orion_q3_2024.pdf"][0]
    assert pdf.provenance.page_offsets and len(pdf.provenance.page_offsets) == 2
    assert pdf.page_of(pdf.raw_text.index("net income")) == 2
    assert waiting_files(box) == []
    assert (SAMPLES / "feed.jsonl").exists()


def test_file_written_slowly_is_published_once_when_complete(
    settings: Settings, reader: QueueReader
) -> None:
    lines = [
        json.dumps({"raw_text": f"Slowco reported revenue of ${n} million for Q{n} 2024."}) + "\n"
        for n in range(1, 5)
    ]
    content = "".join(lines).encode()
    with watching(settings, settle_s=1.0) as box:
        target = box.root / "slow.jsonl"
        with target.open("wb") as fh:
            for i in range(0, len(content), 37):  # chunks end mid-line
                fh.write(content[i : i + 37])
                fh.flush()
                time.sleep(0.15)
                assert reader.drain() == [], "published before the file was complete"
        wait_until(lambda: processed(box, "slow.jsonl"), what="slow.jsonl in processed/")
        reader.wait_for_count(4)
        barrier(box, reader, "slow")
    messages = from_file(reader.drain(), "slow.jsonl")
    assert sorted(m.provenance.line or 0 for m in messages) == [1, 2, 3, 4]
    assert not (box.failed / "slow.jsonl.rejects.jsonl").exists()


def test_rows_written_after_a_slow_file_was_moved_are_published_too(
    settings: Settings, reader: QueueReader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="ingest.inbox")
    texts = [f"Slow{n} reported revenue of ${n} million for Q1 2024." for n in range(1, 21)]
    rows = [f"Slow{n},{text}\n" for n, text in enumerate(texts, start=1)]
    with watching(settings, settle_s=0.5) as box:
        with (box.root / "slow.csv").open("w") as fh:  # one handle, kept open past the settle time
            fh.write("company,raw_text\n" + "".join(rows[:10]))
            fh.flush()
            wait_until(lambda: processed(box, "slow.csv"), what="the first half moved")
            fh.write("".join(rows[10:]))
        wanted = {report_id_for(t) for t in texts}
        wait_until(lambda: wanted <= {m.report_id for m in reader.drain()}, what="all 20 rows")
        barrier(box, reader, "slow")
    (moved,) = processed(box, "slow.csv")
    assert len(moved.read_text().splitlines()) == 21
    assert "moved back to the inbox" in caplog.text


def test_file_moved_into_the_inbox_counts_as_dropped(
    settings: Settings, reader: QueueReader, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "moved.txt").write_text(SEED)
    with watching(settings) as box:
        os.rename(staging / "moved.txt", box.root / "moved.txt")
        (message,) = reader.wait_for_count(1)
        wait_until(lambda: processed(box, "moved.txt"), what="moved.txt in processed/")
    assert message.report_id == report_id_for(SEED)


def test_folder_moved_into_the_inbox_brings_its_files(
    settings: Settings, reader: QueueReader, tmp_path: Path
) -> None:
    folder = tmp_path / "august"
    folder.mkdir()
    shutil.copyfile(SAMPLES / "news_snippets.csv", folder / "news.csv")
    (folder / "seed.txt").write_text(SEED)
    (folder / "draft.txt.part").write_text("not finished")
    with watching(settings) as box:
        os.rename(folder, box.root / "august")
        reader.wait_for_count(5)
        wait_until(
            lambda: processed(box, "august/news.csv") and processed(box, "august/seed.txt"),
            what="the folder's files in processed/<day>/august/",
        )
    assert (box.root / "august" / "draft.txt.part").exists()


def test_redropped_file_is_recognised_and_not_published_twice(
    settings: Settings, reader: QueueReader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="ingest.inbox")
    with watching(settings) as box:
        drop(box, SAMPLES / "feed.jsonl")
        reader.wait_for_count(4)
        wait_until(lambda: processed(box, "feed.jsonl"), what="first copy processed")
        drop(box, SAMPLES / "feed.jsonl")
        wait_until(lambda: processed(box, "feed-1.jsonl"), what="second copy processed")
        barrier(box, reader, "redrop")
    assert len(from_file(reader.drain(), "feed.jsonl")) == 4
    assert "without publishing it again" in caplog.text


def test_bad_inputs_land_in_failed_with_reasons_while_good_rows_are_published(
    settings: Settings, reader: QueueReader, tmp_path: Path
) -> None:
    from fpdf import FPDF

    locked = FPDF()
    locked.add_page()
    locked.set_font("Helvetica", size=12)
    locked.cell(0, 10, "Locked Co reported revenue of $1 million for Q1 2024.")
    locked.set_encryption(owner_password="o", user_password="u")
    src = tmp_path / "src"
    src.mkdir()
    locked.output(str(src / "locked.pdf"))
    (src / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(300))
    (src / "empty.csv").write_bytes(b"")
    (src / "junk.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" + os.urandom(500))
    (src / "latin.txt").write_bytes("Café Noir reported revenue of €3 million.".encode("cp1252"))
    (src / "nocol.csv").write_text("date,headline\n2024-01-01,Acme up\n")
    (src / "cut.jsonl").write_text(json.dumps({"raw_text": SEED}) + '\n{"raw_text": "Cut')
    (src / "big.txt").write_text("x" * 5000)
    (src / "semi.csv").write_bytes(
        b'\xef\xbb\xbfText;Company\r\n"A; reported revenue of $1 million for Q1 2024.";A\r\n;B\r\n'
    )
    small = settings.model_copy(update={"max_file_bytes": 4000})
    with watching(small) as box:
        for f in sorted(src.iterdir()):
            drop(box, f)
        wait_until(lambda: not waiting_files(box), what="inbox emptied")
    errors = {
        p.name.removesuffix(".error.json"): json.loads(p.read_text())["reason"]
        for p in box.failed.glob("*.error.json")
    }
    assert set(errors) == {
        "locked.pdf",
        "corrupt.pdf",
        "empty.csv",
        "junk.txt",
        "nocol.csv",
        "big.txt",
    }
    assert "encrypted with a password" in errors["locked.pdf"]
    assert "corrupt" in errors["corrupt.pdf"]
    assert errors["empty.csv"] == "file is empty"
    assert "looks binary" in errors["junk.txt"]
    assert "no text column" in errors["nocol.csv"]
    assert "FINPIPE_MAX_FILE_BYTES" in errors["big.txt"]
    cut = [json.loads(x) for x in (box.failed / "cut.jsonl.rejects.jsonl").read_text().splitlines()]
    assert cut[0]["line"] == 2 and "truncated" in cut[0]["reason"]
    semi = [json.loads(x) for x in (box.failed / "semi.csv.rejects.jsonl").read_text().splitlines()]
    assert (semi[0]["line"], semi[0]["row"]) == (3, 2)
    messages = reader.wait_for_count(3)
    assert sorted(m.provenance.file_name or "" for m in messages) == [
        "cut.jsonl",
        "latin.txt",
        "semi.csv",
    ]
    assert all(processed(box, n) for n in ("cut.jsonl", "latin.txt", "semi.csv"))


def test_scheduler_fires_a_sweep_of_the_inbox(settings: Settings, reader: QueueReader) -> None:
    box = Inbox.from_settings(settings)
    box.ensure_layout()
    shutil.copyfile(SAMPLES / "feed.jsonl", box.root / "feed.jsonl")
    os.utime(box.root / "feed.jsonl", (time.time() - 60, time.time() - 60))
    job = inbox_sweep_job(settings)
    assert job.cron == "0 2 * * *"
    sched = build_scheduler([job], settings.timezone, blocking=False)
    sched.start()
    try:
        (scheduled,) = sched.get_jobs()
        assert (scheduled.coalesce, scheduled.max_instances) == (True, 1)
        assert scheduled.next_run_time.hour == 2
        scheduled.modify(next_run_time=datetime.now(ZoneInfo(settings.timezone)))  # fire it now
        reader.wait_for_count(4)
        wait_until(lambda: processed(box, "feed.jsonl"), what="feed.jsonl swept")
    finally:
        sched.shutdown(wait=True)


def test_ingest_on_a_folder_prints_its_summary(settings: Settings, reader: QueueReader) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "finpipe", "ingest", str(SAMPLES)],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == (
        "files: 6, reports published: 11, rows rejected: 3, files failed: 1"
    )
    assert "headlines_without_text.csv: CSV has no text column" in done.stderr
    assert len(reader.wait_for_count(11)) == 11
    assert (SAMPLES / "bad" / "broken.jsonl").exists()
