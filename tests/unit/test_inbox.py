"""Inbox logic: selection, naming, settling, summaries, and moves with a recording publisher."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest

from ingest.inbox import (
    FileOutcome,
    FileStamp,
    Inbox,
    ReadLimits,
    Settling,
    Summary,
    expand_paths,
    fit_name,
    folder_within,
    ingest_paths,
    is_ignored_name,
    quote_name,
    read_items,
    take_snapshot,
    unique_name,
)
from schemas.errors import BrokerUnavailable
from schemas.message import ReportMessage

NOW = datetime(2024, 8, 1, 23, 30, tzinfo=UTC)
SEED = '{"raw_text": "Company XYZ reported a net income of $5.3 million for Q1 2024."}\n'


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[ReportMessage] = []
        self.fail = fail

    def publish_many(self, messages: Iterable[ReportMessage]) -> int:
        if self.fail:
            raise BrokerUnavailable("RabbitMQ unreachable")
        batch = list(messages)
        self.published.extend(batch)
        return len(batch)


@pytest.mark.parametrize(
    ("name", "ignored"),
    [
        ("report.csv", False),
        ("Q2 results.pdf", False),
        (".hidden.csv", True),
        (".finpipe-ledger.jsonl", True),
        ("report.csv.part", True),
        ("report.csv.PART", True),
        ("report.tmp", True),
        ("download.pdf.crdownload", True),
        ("report.csv~", True),
        ("~$report.csv", True),
        ("notes.swp", True),
        ("", True),
    ],
)
def test_partial_hidden_and_backup_files_are_ignored(name: str, ignored: bool) -> None:
    assert is_ignored_name(name) is ignored


@pytest.mark.parametrize(
    ("name", "taken", "expected"),
    [
        ("report.csv", set(), "report.csv"),
        ("report.csv", {"report.csv"}, "report-1.csv"),
        ("report.csv", {"report.csv", "report-1.csv"}, "report-2.csv"),
        ("README", {"README"}, "README-1"),
        (".env", {".env"}, ".env-1"),
        ("a.tar.gz", {"a.tar.gz"}, "a.tar-1.gz"),
    ],
)
def test_name_clash_gets_a_numbered_suffix(name: str, taken: set[str], expected: str) -> None:
    assert unique_name(name, taken.__contains__) == expected


def test_settling_waits_for_size_and_mtime_to_stay_put() -> None:
    s = Settling(settle_s=1.0)
    p = Path("x.csv")
    assert not s.observe(p, FileStamp(10, 1), now_s=100.0)
    assert not s.observe(p, FileStamp(20, 2), now_s=100.8)  # still growing: clock restarts
    assert not s.observe(p, FileStamp(20, 2), now_s=101.5)
    assert s.observe(p, FileStamp(20, 2), now_s=101.8)
    s.forget(p)
    assert s.pending() == []


def test_settling_takes_an_old_file_at_once() -> None:
    assert Settling(2.0).observe(Path("old.csv"), FileStamp(5, 1), now_s=10.0, age_s=3600)


def test_summary_counts_and_prints_the_four_totals() -> None:
    s = Summary()
    s.add(FileOutcome(Path("a"), "published", reports=3, rejects=1))
    s.add(FileOutcome(Path("b"), "failed", reason="empty"))
    s.add(FileOutcome(Path("c"), "duplicate"))
    s.add(FileOutcome(Path("d"), "skipped"))
    assert s.line() == (
        "files: 3, reports published: 3, rows rejected: 1, files failed: 1, already ingested: 1"
    )


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    box = Inbox(
        tmp_path / "inbox", ReadLimits(max_file_bytes=10_000), settle_s=0.0, clock=lambda: NOW
    )
    box.ensure_layout()
    return box


def test_candidates_skip_managed_folders_hidden_and_partial_files(inbox: Inbox) -> None:
    root = inbox.root
    for rel in [
        "a.csv",
        "sub/b.jsonl",
        "c.csv.part",
        ".d.csv",
        "processed/2024-01-01/e.csv",
        "failed/f.csv",
        ".cache/g.csv",
        "notes.docx",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    assert [p.relative_to(root).as_posix() for p in inbox.candidates()] == [
        "a.csv",
        "notes.docx",
        "sub/b.jsonl",
    ]


def test_published_file_moves_to_processed_by_local_date_with_suffix_on_clash(
    tmp_path: Path,
) -> None:
    box = Inbox(tmp_path / "in", settle_s=0.0, timezone="Europe/Helsinki", clock=lambda: NOW)
    box.ensure_layout()
    day = box.processed / "2024-08-02"  # 23:30 UTC is already the 2nd in Helsinki
    day.mkdir(parents=True)
    (day / "feed.jsonl").write_text("an earlier file with the same name")
    (box.root / "feed.jsonl").write_text(SEED)
    pub = RecordingPublisher()
    summary = box.sweep(pub)
    assert summary.reports_published == 1
    assert (day / "feed-1.jsonl").read_text() == SEED
    assert not (box.root / "feed.jsonl").exists()
    assert pub.published[0].provenance.file_name == "feed.jsonl"


@pytest.mark.parametrize(
    ("path", "folder"),
    [
        ("/in/a.csv", ""),
        ("/in/sub/a.csv", "sub"),
        ("/in/sub/q2/a.csv", "sub/q2"),
        ("/elsewhere/a.csv", ""),
    ],
)
def test_the_folder_a_file_keeps_is_its_folder_within_the_inbox(path: str, folder: str) -> None:
    assert folder_within(PurePosixPath(path), PurePosixPath("/in")) == PurePosixPath(folder)


def test_files_from_sub_folders_land_under_the_same_folders(inbox: Inbox) -> None:
    for folder in ("north", "south/q2"):
        (inbox.root / folder).mkdir(parents=True)
        (inbox.root / folder / "feed.jsonl").write_text(SEED.replace("XYZ", folder))
        (inbox.root / folder / "bad.csv").write_text("headline\nno text column here\n")
        (inbox.root / folder / "mixed.csv").write_text(
            "raw_text,reported_at\nA reported revenue of $1 million for Q1 2024.,2024-05-01\n"
            f"{folder} reported revenue of $2 million.,autumn\n"
        )
    summary = inbox.sweep(RecordingPublisher())
    assert (summary.reports_published, summary.files_failed, summary.rows_rejected) == (4, 2, 2)
    day = inbox.processed / "2024-08-01"
    assert sorted(p.relative_to(day).as_posix() for p in day.rglob("*.*")) == [
        "north/feed.jsonl",
        "north/mixed.csv",
        "south/q2/feed.jsonl",
        "south/q2/mixed.csv",
    ]
    assert sorted(p.relative_to(inbox.failed).as_posix() for p in inbox.failed.rglob("*.*")) == [
        "north/bad.csv",
        "north/bad.csv.error.json",
        "north/mixed.csv.rejects.jsonl",
        "south/q2/bad.csv",
        "south/q2/bad.csv.error.json",
        "south/q2/mixed.csv.rejects.jsonl",
    ]
    ledger = [json.loads(line) for line in inbox.ledger.path.read_text().splitlines()]
    assert "south/q2/feed.jsonl" in {
        Path(e["moved_to"]).relative_to("processed/2024-08-01").as_posix() for e in ledger
    }


def test_redropped_file_is_moved_without_publishing_again(inbox: Inbox) -> None:
    pub = RecordingPublisher()
    (inbox.root / "feed.jsonl").write_text(SEED)
    inbox.sweep(pub)
    (inbox.root / "again.jsonl").write_text(SEED)
    summary = inbox.sweep(pub)
    assert len(pub.published) == 1
    assert summary.duplicates == 1
    assert (inbox.processed / "2024-08-01" / "again.jsonl").exists()


def test_ledger_is_rebuilt_from_processed_when_missing(inbox: Inbox, tmp_path: Path) -> None:
    (inbox.root / "feed.jsonl").write_text(SEED)
    inbox.sweep(RecordingPublisher())
    (inbox.root / ".finpipe-ledger.jsonl").unlink()
    fresh = Inbox(inbox.root, settle_s=0.0, clock=lambda: NOW)
    (inbox.root / "again.jsonl").write_text(SEED)
    pub = RecordingPublisher()
    assert fresh.sweep(pub).duplicates == 1
    assert pub.published == []


def test_unreadable_file_goes_to_failed_with_an_error_sidecar(inbox: Inbox) -> None:
    (inbox.root / "empty.csv").write_bytes(b"")
    (inbox.root / "empty-1.csv").write_bytes(b"")
    (inbox.failed / "empty.csv").write_bytes(b"from an earlier day")
    summary = inbox.sweep(RecordingPublisher())
    assert summary.files_failed == 2
    error = json.loads((inbox.failed / "empty-2.csv.error.json").read_text())
    assert error["file"] in ("empty.csv", "empty-1.csv")
    assert error["reason"] == "file is empty"
    assert (inbox.failed / "empty.csv").read_bytes() == b"from an earlier day"


@pytest.mark.parametrize("first", ["zz.txt.error.json", "zz.txt"])
def test_failure_sidecar_never_replaces_a_users_file_in_failed(inbox: Inbox, first: str) -> None:
    user = b'{"not": "a report"}'  # a user's file named like zz.txt's sidecar, failing too
    contents = {"zz.txt.error.json": user, "zz.txt": b""}
    for name in (first, *(n for n in contents if n != first)):
        (inbox.root / name).write_bytes(contents[name])
        assert inbox.sweep(RecordingPublisher()).files_failed == 1
    files = {p.name: p.read_bytes() for p in inbox.failed.iterdir()}
    moved = {name: data for name, data in files.items() if data in (user, b"")}
    assert sorted(moved.values()) == [b"", user], "the user's file was overwritten"
    for name, data in moved.items():
        error = json.loads(files[f"{name}.error.json"])
        assert contents[error["file"]] == data


def test_rejects_file_never_replaces_a_file_already_in_failed(inbox: Inbox) -> None:
    (inbox.failed / "mix.jsonl.rejects.jsonl").write_text("an earlier list")
    (inbox.root / "mix.jsonl").write_text(SEED + '{"raw_text": ""}\n')
    inbox.sweep(RecordingPublisher())
    assert (inbox.failed / "mix.jsonl.rejects.jsonl").read_text() == "an earlier list"
    assert "raw_text is empty" in (inbox.failed / "mix.jsonl.rejects-1.jsonl").read_text()


def test_partly_bad_file_publishes_good_rows_and_lists_rejects(inbox: Inbox) -> None:
    (inbox.root / "mix.jsonl").write_text(SEED + '{"raw_text": ""}\n{"oops"\n')
    pub = RecordingPublisher()
    summary = inbox.sweep(pub)
    assert (summary.reports_published, summary.rows_rejected, summary.files_failed) == (1, 2, 0)
    lines = (inbox.failed / "mix.jsonl.rejects.jsonl").read_text().splitlines()
    assert [json.loads(x)["line"] for x in lines] == [2, 3]
    assert (inbox.processed / "2024-08-01" / "mix.jsonl").exists()


def test_file_with_only_bad_rows_fails(inbox: Inbox) -> None:
    (inbox.root / "bad.jsonl").write_text('{"raw_text": ""}\n')
    summary = inbox.sweep(RecordingPublisher())
    assert summary.files_failed == 1
    reason = json.loads((inbox.failed / "bad.jsonl.error.json").read_text())["reason"]
    assert reason.startswith("no valid reports: all 1 rejected (first, line 1: raw_text is empty)")


def test_file_over_the_size_limit_fails_without_being_read_and_its_size_is_recorded(
    inbox: Inbox,
) -> None:
    (inbox.root / "huge.txt").write_bytes(b"a" * 10_001)
    summary = inbox.sweep(RecordingPublisher())
    error = json.loads((inbox.failed / "huge.txt.error.json").read_text())
    assert "10001 bytes, over the limit of 10000 bytes (FINPIPE_MAX_FILE_BYTES)" in error["reason"]
    assert error["size_bytes"] == 10_001
    assert summary.outcomes[0].size_bytes == 10_001


def test_error_sidecar_quotes_only_a_short_excerpt_of_a_garbage_file(inbox: Inbox) -> None:
    garbage = bytes(0xA0 + (i * 37) % 0x60 for i in range(10_000))  # Windows-1252, no newline
    (inbox.root / "garbage.csv").write_bytes(garbage)
    inbox.sweep(RecordingPublisher())
    sidecar = (inbox.failed / "garbage.csv.error.json").read_text()
    assert "no text column" in sidecar
    assert len(sidecar) < 1000


def test_file_that_cannot_be_opened_fails_and_the_sweep_goes_on(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.inbox.trip

    real = ingest.inbox.trip.take_snapshot

    def no_permission(path: Path, limits: ReadLimits) -> object:
        if path.name == "locked.jsonl":
            raise PermissionError(13, "Permission denied")
        return real(path, limits)

    monkeypatch.setattr(ingest.inbox.trip, "take_snapshot", no_permission)
    (inbox.root / "locked.jsonl").write_text(SEED)
    (inbox.root / "open.jsonl").write_text(SEED)
    summary = inbox.sweep(RecordingPublisher())
    assert (summary.files_failed, summary.reports_published) == (1, 1)
    error = json.loads((inbox.failed / "locked.jsonl.error.json").read_text())
    assert error["reason"] == "cannot read the file: Permission denied"


def test_symlink_out_of_the_inbox_is_not_followed(inbox: Inbox, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("Outside reported revenue of $1 million for Q1 2024.")
    os.symlink(secret, inbox.root / "link.txt")
    pub = RecordingPublisher()
    summary = inbox.sweep(pub)
    assert pub.published == []
    assert summary.files_failed == 1
    assert (inbox.failed / "link.txt").is_symlink()
    assert "outside the inbox" in (inbox.failed / "link.txt.error.json").read_text()
    assert secret.exists()


def test_broker_failure_leaves_files_in_the_inbox(inbox: Inbox) -> None:
    (inbox.root / "a.jsonl").write_text(SEED)
    (inbox.root / "b.txt").write_text("B reported revenue of $1 million for Q1 2024.")
    summary = inbox.sweep(RecordingPublisher(fail=True))
    assert summary.left == 2
    assert (inbox.root / "a.jsonl").exists() and (inbox.root / "b.txt").exists()


def test_ingest_leaves_files_outside_the_inbox_where_they_are(inbox: Inbox, tmp_path: Path) -> None:
    outside = tmp_path / "samples"
    outside.mkdir()
    (outside / "feed.jsonl").write_text(SEED)
    (outside / "notes.docx").write_bytes(b"PK\x03\x04")
    (outside / "empty.txt").write_text("")
    (inbox.root / "in.jsonl").write_text(SEED)
    pub = RecordingPublisher()
    summary = ingest_paths(expand_paths([outside, inbox.root], inbox), inbox, pub)
    assert (summary.files, summary.reports_published, summary.files_failed) == (3, 2, 1)
    assert (outside / "feed.jsonl").exists() and (outside / "empty.txt").exists()
    assert not (inbox.failed / "empty.txt").exists()
    assert (inbox.processed / "2024-08-01" / "in.jsonl").exists()


def test_file_still_being_written_is_left_for_the_next_run(tmp_path: Path) -> None:
    box = Inbox(tmp_path / "in", settle_s=5.0)
    box.ensure_layout()
    (box.root / "fresh.jsonl").write_text(SEED)
    summary = box.sweep(RecordingPublisher(), max_wait_s=0.0)
    assert summary.left == 1
    assert (box.root / "fresh.jsonl").exists()


# --- a file that is still being written when it is read ------------------------------------------

CSV_HEADER = "company,raw_text\n"


def csv_rows(first: int, last: int) -> str:
    return "".join(
        f"Slow{n},Slow{n} reported revenue of ${n} million for Q1 2024.\n"
        for n in range(first, last + 1)
    )


def published_rows(pub: RecordingPublisher) -> set[str]:
    return {m.raw_text for m in pub.published}


def rows_in(path: Path) -> set[str]:
    return {line.split(",", 1)[1] for line in path.read_text().splitlines()[1:]}


class AppendingPublisher(RecordingPublisher):
    """Publishes, and meanwhile the writer appends ``more`` to ``path`` (``times`` times)."""

    def __init__(self, path: Path, more: str, times: int = 1) -> None:
        super().__init__()
        self.path, self.more, self.times = path, more, times

    def publish_many(self, messages: Iterable[ReportMessage]) -> int:
        n = super().publish_many(messages)
        if self.times > 0:
            self.times -= 1
            with self.path.open("a") as fh:
                fh.write(self.more)
        return n


def test_file_that_grows_while_it_is_published_is_read_again_before_it_is_moved(
    inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    path = inbox.root / "slow.csv"
    path.write_text(CSV_HEADER + csv_rows(1, 10))
    pub = AppendingPublisher(path, csv_rows(11, 20))
    summary = inbox.sweep(pub)
    (moved,) = inbox.processed.glob("*/slow.csv")
    assert len(rows_in(moved)) == 20
    assert rows_in(moved) <= published_rows(pub), "rows moved to processed/ were not published"
    assert summary.reports_published == 20
    assert "slow.csv changed while it was read (" in caplog.text
    assert "rename them when complete" in caplog.text


def test_file_that_keeps_changing_is_left_in_the_inbox(inbox: Inbox) -> None:
    path = inbox.root / "busy.csv"
    path.write_text(CSV_HEADER + csv_rows(1, 2))
    pub = AppendingPublisher(path, csv_rows(3, 3), times=100)
    summary = inbox.sweep(pub)
    assert summary.left == 1
    assert path.exists() and not list(inbox.processed.glob("*/busy.csv"))


def test_file_that_grows_while_it_is_read_is_not_failed_for_what_was_missing(
    inbox: Inbox,
) -> None:
    path = inbox.root / "header-first.csv"
    path.write_text(CSV_HEADER)
    pub = RecordingPublisher()
    real = inbox.ledger.get

    def writer_finishes_meanwhile(sha256: str) -> dict[str, object] | None:
        if path.read_text() == CSV_HEADER:
            path.write_text(CSV_HEADER + csv_rows(1, 3))
        return real(sha256)

    inbox.ledger.get = writer_finishes_meanwhile  # type: ignore[method-assign]
    summary = inbox.sweep(pub)
    assert (summary.files_failed, summary.reports_published) == (0, 3)
    assert not list(inbox.failed.iterdir())


def test_file_changed_after_it_was_moved_goes_back_to_the_inbox_to_be_read_whole(
    inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    path = inbox.root / "slow.csv"
    path.write_text(CSV_HEADER + csv_rows(1, 10))
    pub = RecordingPublisher()
    outcome = inbox.process(path, pub)
    assert outcome.moved_to is not None
    with outcome.moved_to.open("a") as fh:  # the writer still had it open
        fh.write(csv_rows(11, 20))
    assert inbox.reclaim_if_changed(outcome) == path
    assert "moved back to the inbox" in caplog.text
    inbox.sweep(pub)
    (moved,) = inbox.processed.glob("*/slow.csv")
    assert rows_in(moved) == published_rows(pub) and len(published_rows(pub)) == 20


def test_unchanged_moved_file_stays_in_processed(inbox: Inbox) -> None:
    path = inbox.root / "done.csv"
    path.write_text(CSV_HEADER + csv_rows(1, 2))
    outcome = inbox.process(path, RecordingPublisher())
    assert inbox.reclaim_if_changed(outcome) is None
    assert outcome.moved_to is not None and outcome.moved_to.exists()


def test_watcher_returns_a_file_written_after_it_was_moved_and_publishes_every_row(
    inbox: Inbox,
) -> None:
    from ingest.watcher import InboxWatcher

    pub = RecordingPublisher()
    watcher = InboxWatcher(inbox, pub)
    with (inbox.root / "slow.csv").open("w") as fh:  # one handle, as a slow writer keeps it
        fh.write(CSV_HEADER + csv_rows(1, 10))
        fh.flush()
        watcher.nominate_all()
        watcher.tick()
        assert len(published_rows(pub)) == 10
        fh.write(csv_rows(11, 20))
    watcher.tick()  # compares the moved file, returns it, reads it whole
    (moved,) = inbox.processed.glob("*/slow.csv")
    assert len(rows_in(moved)) == 20
    assert rows_in(moved) == published_rows(pub)


# --- names in log lines --------------------------------------------------------------------------

FORGED = "q2\nERROR finpipe: forged line.jsonl"


@pytest.mark.parametrize(
    "content",
    [SEED, "", SEED + '{"raw_text": ""}\n'],
    ids=["published", "failed", "with rejects"],
)
def test_a_newline_in_a_file_name_cannot_split_a_log_line(
    inbox: Inbox, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    caplog.set_level("INFO")
    (inbox.root / FORGED).write_text(content)
    pub = RecordingPublisher()
    inbox.sweep(pub)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / FORGED).write_text(content)
    ingest_paths([outside / FORGED], inbox, pub)
    assert len(pub.published) == (0 if not content else 2)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("ingest.")]
    assert len(messages) >= 2
    assert not [m for m in messages if "\n" in m], messages
    assert all("q2\\nERROR" in m for m in messages if "forged" in m)


def test_printable_names_are_logged_as_they_are() -> None:
    assert quote_name("Q2 results é.csv") == "Q2 results é.csv"
    assert quote_name("a\nb.csv") == "'a\\nb.csv'"
    assert quote_name("bad\udcffbyte.csv") == "'bad\\udcffbyte.csv'"


# --- hostile entries: one never stops the inbox ------------------------------------------------


def test_a_symlink_loop_fails_with_its_reason_and_the_files_after_it_go_through(
    inbox: Inbox,
) -> None:
    os.symlink("a-loop.txt", inbox.root / "a-loop.txt")
    (inbox.root / "c.jsonl").write_text(SEED)
    summary = inbox.sweep(RecordingPublisher())
    assert (summary.files_failed, summary.reports_published) == (1, 1)
    error = json.loads((inbox.failed / "a-loop.txt.error.json").read_text())
    assert "loop" in error["reason"]
    assert (inbox.failed / "a-loop.txt").is_symlink()


def test_an_unexpected_error_on_one_file_fails_that_file_and_the_sweep_goes_on(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.inbox.trip

    real = ingest.inbox.trip.read_items

    def explode(path: Path, *args: object) -> object:
        if path.name == "a.jsonl":
            raise ValueError("reader bug")
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest.inbox.trip, "read_items", explode)
    (inbox.root / "a.jsonl").write_text(SEED)
    (inbox.root / "b.jsonl").write_text(SEED.replace("XYZ", "ABC"))
    summary = inbox.sweep(RecordingPublisher())
    assert (summary.files_failed, summary.reports_published) == (1, 1)
    error = json.loads((inbox.failed / "a.jsonl.error.json").read_text())
    assert error["reason"] == "unexpected error while reading the file: ValueError: reader bug"


def _long_name(suffix: str) -> str:
    return "r" * (250 - len(suffix)) + suffix


def test_a_failing_file_with_a_250_byte_name_lands_in_failed_with_its_reason(
    inbox: Inbox,
) -> None:
    name = _long_name(".csv")
    (inbox.root / name).write_text("headline\nno text column here\n")
    summary = inbox.sweep(RecordingPublisher())
    assert summary.files_failed == 1
    names = sorted(p.name for p in inbox.failed.iterdir())
    assert len(names) == 2 and all(len(n.encode()) <= 255 for n in names)
    moved, error_file = (n for n in sorted(names, key=len))
    assert error_file == moved + ".error.json"
    error = json.loads((inbox.failed / error_file).read_text())
    assert error["file"] == name and "no text column" in error["reason"]


def test_rejects_that_cannot_be_listed_are_logged_and_the_file_still_moves(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ingest.inbox.rejects

    def disk_full(folder: Path, name: str, text: str) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ingest.inbox.rejects, "create_file", disk_full)
    (inbox.root / "mixed.csv").write_text(
        "raw_text,reported_at\nA reported revenue of $1 million for Q1 2024.,2024-05-01\n"
        "B reported revenue of $2 million.,autumn\n"
    )
    summary = inbox.sweep(RecordingPublisher())
    assert (summary.reports_published, summary.rows_rejected) == (1, 1)
    assert (inbox.processed / "2024-08-01" / "mixed.csv").exists()
    assert "cannot list the rejected rows of mixed.csv" in caplog.text
    assert "rejected mixed.csv line 3: field reported_at" in caplog.text
    entry = json.loads(inbox.ledger.path.read_text())
    assert (entry["reports"], entry["rejects"]) == (1, 1)


def test_a_partly_bad_csv_with_a_long_name_is_published_once_and_moved(inbox: Inbox) -> None:
    name = _long_name(".csv")
    (inbox.root / name).write_text(
        "raw_text,reported_at\nA reported revenue of $1 million for Q1 2024.,2024-05-01\n"
        "B reported revenue of $2 million.,autumn\n"
    )
    pub = RecordingPublisher()
    summary = inbox.sweep(pub)
    assert (summary.reports_published, summary.rows_rejected) == (1, 1)
    assert not (inbox.root / name).exists()
    (rejects,) = inbox.failed.iterdir()
    assert rejects.name.endswith(".rejects.jsonl") and len(rejects.name.encode()) <= 255
    assert json.loads(rejects.read_text())["file"] == name
    assert len(inbox.sweep(pub).outcomes) == 0 and len(pub.published) == 1


def test_a_name_clash_in_failed_keeps_a_long_name_and_its_sidecar_within_255_bytes(
    inbox: Inbox,
) -> None:
    name = "é" * 125 + ".txt"  # 254 bytes
    for _ in range(2):
        (inbox.root / name).write_text("")
        inbox.sweep(RecordingPublisher())
    names = [p.name for p in inbox.failed.iterdir()]
    assert len(names) == 4 and all(len(n.encode()) <= 255 for n in names)


@pytest.mark.parametrize(
    ("name", "room"),
    [("a.csv", 255), ("r" * 300 + ".csv", 255), ("é" * 200 + ".jsonl", 241), ("x" * 300, 10)],
)
def test_fitted_names_keep_their_extension_and_fit(name: str, room: int) -> None:
    fitted = fit_name(name, room)
    assert len(fitted.encode()) <= room
    assert fitted == name or fitted != fit_name(name + "x", room)
    if "." in name and room > 20:
        assert fitted.endswith(name[name.rfind(".") :])


# --- reading streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["big.csv", "big.jsonl"])
def test_a_big_file_is_published_chunk_by_chunk_as_it_is_read(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    import ingest.inbox.publishing
    import ingest.readers.base

    monkeypatch.setattr(ingest.inbox.publishing, "PUBLISH_CHUNK", 100)
    built = 0
    real = ReportMessage.build

    def counted(*args: object, **kwargs: object) -> ReportMessage:
        nonlocal built
        built += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest.readers.base.ReportMessage, "build", counted)
    texts = [f"Company {i} reported revenue of ${i} million for Q1 2024." for i in range(1000)]
    if name.endswith(".csv"):
        body = "raw_text\n" + "".join(f"{t}\n" for t in texts)
    else:
        body = "".join(json.dumps({"raw_text": t}) + "\n" for t in texts)
    big = Inbox(inbox.root, ReadLimits(max_file_bytes=10_000_000), settle_s=0.0, clock=lambda: NOW)
    (inbox.root / name).write_text(body)

    built_at_each_call: list[int] = []

    class Watching(RecordingPublisher):
        def publish_many(self, messages: Iterable[ReportMessage]) -> int:
            built_at_each_call.append(built)
            return super().publish_many(messages)

    pub = Watching()
    summary = big.sweep(pub)
    assert summary.reports_published == 1000 and len(pub.published) == 1000
    assert built_at_each_call == list(range(100, 1001, 100))


def test_a_slow_pdf_fails_with_its_reason_and_the_next_file_goes_through(inbox: Inbox) -> None:
    from tests.unit.test_readers import shared_stream_pdf

    quick = Inbox(
        inbox.root,
        ReadLimits(max_file_bytes=10_000, pdf_time_s=0.5),
        settle_s=0.0,
        clock=lambda: NOW,
    )
    (inbox.root / "a-slow.pdf").write_bytes(shared_stream_pdf(8, 20_000))
    (inbox.root / "b.jsonl").write_text(SEED)
    summary = quick.sweep(RecordingPublisher())
    assert (summary.files_failed, summary.reports_published) == (1, 1)
    error = json.loads((inbox.failed / "a-slow.pdf.error.json").read_text())
    assert "took more than 0.5 s to read" in error["reason"]


_CSV_HEAD = b"raw_text,company\n"
_ROW = b'"Acme reported revenue of $1 million for Q1 2024.",Acme\n'


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.csv", _CSV_HEAD + _ROW * 3),
        ("a.csv", _CSV_HEAD + _ROW + b'"Caf\xe9 reported\nrevenue of $2 million.",X\n' + _ROW),
        ("a.csv", (_CSV_HEAD + _ROW).replace(b"\n", b"\r\n")),
        ("a.csv", (_CSV_HEAD + _ROW * 2).replace(b"\n", b"\r")),
        ("a.csv", "raw_text\nCafé made €3 million.\n".encode("cp1252")),
        ("a.csv", "\ufeffraw_text\nÁcme made €3 million.\n".encode()),
        ("a.csv", "raw_text\nAcme made $3 million.\n".encode("utf-16")),
        ("a.csv", b"\n\n  \n" + _CSV_HEAD + _ROW),
        ("a.csv", b"   \n"),
        ("a.csv", b"\x00\x01PK" * 100),
        ("a.csv", b"headline\nno text\n"),
        ("b.jsonl", b'{"raw_text": "A made $1 million."}\n{"raw_text": "B \xff"}\n{"raw_'),
        ("b.jsonl", b'{"raw_text": "A made $1 million."}\r\n\r\n[1]\n'),
        ("b.ndjson", '{"raw_text": "Zoë made €1 million."}'.encode("cp1252")),
    ],
)
def test_a_file_read_line_by_line_gives_what_its_bytes_give(
    tmp_path: Path, name: str, data: bytes
) -> None:
    from ingest.readers import ReadOptions, UnreadableFile, read_bytes

    path = tmp_path / name
    path.write_bytes(data)
    limits = ReadLimits()
    snapshot = take_snapshot(path, limits)
    options = ReadOptions(name, snapshot.sha256, NOW, max_report_bytes=limits.max_report_bytes)

    def outcome(read: Callable[[], Iterable[object]]) -> object:
        try:
            return [
                (m.raw_text, m.company_hint, m.provenance.line, m.provenance.row, m.metadata)
                if isinstance(m, ReportMessage)
                else m
                for m in read()
            ]
        except UnreadableFile as exc:
            return exc.reason

    def whole() -> list[object]:
        result = read_bytes(data, options)
        return [*result.messages, *result.rejects]

    expected = outcome(whole)
    got = outcome(lambda: read_items(path, snapshot, limits, NOW))
    if isinstance(expected, list) and isinstance(got, list):
        key = repr
        assert sorted(got, key=key) == sorted(expected, key=key)
    else:
        assert got == expected
    assert snapshot.size == len(data)
    assert snapshot.sha256 == hashlib.sha256(data).hexdigest()


def test_ingest_of_a_symlink_loop_outside_the_inbox_fails_it_and_goes_on(
    inbox: Inbox, tmp_path: Path
) -> None:
    outside = tmp_path / "drop"
    outside.mkdir()
    os.symlink("a.jsonl", outside / "a.jsonl")
    (outside / "b.jsonl").write_text(SEED)
    summary = ingest_paths([outside / "a.jsonl", outside / "b.jsonl"], inbox, RecordingPublisher())
    assert (summary.files_failed, summary.reports_published) == (1, 1)
