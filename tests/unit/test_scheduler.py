"""Scheduler wiring: cron from settings in the configured time zone, coalescing, one at a time."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ingest import scheduler
from ingest.scheduler import Job, build_scheduler, cron_trigger, next_fire_time
from schemas.errors import ConfigError, Interrupted
from schemas.settings import Settings
from schemas.topology import HEADER_PREFILLED


def test_default_sweep_runs_at_two_at_night_in_the_configured_zone() -> None:
    settings = Settings.from_env({}, timezone="Europe/Helsinki")
    job = scheduler.inbox_sweep_job(settings)
    now = datetime(2024, 6, 30, 22, 0, tzinfo=ZoneInfo("UTC"))  # 01:00 in Helsinki
    fire = next_fire_time(job, settings.timezone, now)
    assert fire is not None
    assert (fire.month, fire.day, fire.hour, fire.minute) == (7, 1, 2, 0)
    assert str(fire.utcoffset()) == "3:00:00"


def test_bad_cron_expression_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"FINPIPE_SWEEP_CRON='0 25 \* \* \*' is not a valid"):
        cron_trigger("0 25 * * *", "UTC", "FINPIPE_SWEEP_CRON")


def test_jobs_coalesce_and_never_overlap() -> None:
    jobs = [Job("a", "*/5 * * * *", lambda: None), Job("b", "30 2 * * *", lambda: None)]
    sched = build_scheduler(jobs, "UTC", blocking=False)
    sched.start(paused=True)
    try:
        got = {j.id: j for j in sched.get_jobs()}
        assert set(got) == {"a", "b"}
        for job in got.values():
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
    finally:
        sched.shutdown(wait=False)


def _run_first_jobs(
    jobs: list[Job], *, run_now: bool = False, catch_up: list[Job] | None = None
) -> list[str]:
    """Start a real scheduler with ``jobs`` and wait for what it runs at once; the events."""
    events: list[str] = []
    done = threading.Event()

    def job(name: str, last: bool) -> Job:
        def func() -> None:
            events.append(f"{name} start")
            time.sleep(0.2)  # long enough for a job started in parallel to show
            events.append(f"{name} end")
            if last:
                done.set()

        return Job(name, "0 2 * * *", func)

    first = catch_up or jobs
    built = [job(j.name, j is first[-1]) for j in jobs]
    chosen = [b for b in built if any(b.name == c.name for c in first)] if catch_up else []
    options: dict[str, Any] = {"catch_up": chosen} if chosen else {}
    sched = build_scheduler(built, "UTC", blocking=False, run_now=run_now, **options)
    sched.start()
    try:
        assert done.wait(10), events
        time.sleep(0.3)  # anything else that was started would show by now
    finally:
        sched.shutdown(wait=True)
    return events


def test_run_now_runs_the_sweep_then_the_export_one_after_the_other() -> None:
    jobs = [Job("sweep", "0 2 * * *", lambda: None), Job("export", "30 2 * * *", lambda: None)]
    assert _run_first_jobs(jobs, run_now=True) == [
        "sweep start",
        "sweep end",
        "export start",
        "export end",
    ]


def test_a_catch_up_runs_the_missed_jobs_once_in_order_and_nothing_else() -> None:
    jobs = [Job("sweep", "0 2 * * *", lambda: None), Job("export", "30 2 * * *", lambda: None)]
    assert _run_first_jobs(jobs, catch_up=jobs[1:]) == ["export start", "export end"]


def test_a_job_run_outside_its_schedule_is_logged_as_such(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        scheduler._logged(Job("export", "30 2 * * *", lambda: "ok"), label="catch-up")()
    assert [r.getMessage() for r in caplog.records] == [
        "job export (catch-up) starting",
        "job export (catch-up) done: ok",
    ]


UTC_ = ZoneInfo("UTC")


def _at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=UTC_)


@pytest.mark.parametrize(
    ("last_run", "now", "missed"),
    [
        (None, _at(4, 10), None),  # never run: nothing known to be missed
        (_at(4, 2, 0, 0), _at(4, 10), None),  # ran right at its fire time
        (_at(4, 2, 0, 3), _at(4, 10), None),  # ran a moment after it
        (_at(3, 2, 0, 1), _at(4, 1, 55), None),  # tonight's is not due yet
        (_at(3, 2, 0, 1), _at(4, 2, 10), _at(4, 2)),  # restarted at 02:10: tonight's was missed
        (_at(1, 2, 0, 1), _at(4, 2, 10), _at(2, 2)),  # several nights: the first missed, once
        (_at(3, 15, 0), _at(4, 2, 0, 0), _at(4, 2)),  # a manual run in the day counts for nothing
    ],
)
def test_a_missed_run_is_a_fire_time_between_the_last_run_and_now(
    last_run: datetime | None, now: datetime, missed: datetime | None
) -> None:
    assert scheduler.missed_fire("0 2 * * *", "UTC", last_run, now) == missed


def test_missed_jobs_keep_their_order_and_skip_jobs_without_a_record() -> None:
    sweep = Job("sweep", "0 2 * * *", lambda: None, record="last_sweep")
    export = Job("export", "30 2 * * *", lambda: None, record="last_export")
    other = Job("other", "0 1 * * *", lambda: None)
    last = {"last_sweep": _at(3, 2, 0, 1), "last_export": _at(3, 2, 30, 5)}
    assert scheduler.missed_jobs([sweep, export, other], last, "UTC", _at(4, 2, 10)) == [
        (sweep, _at(4, 2))
    ]
    assert scheduler.missed_jobs([sweep, export, other], last, "UTC", _at(4, 3)) == [
        (sweep, _at(4, 2)),
        (export, _at(4, 2, 30)),
    ]


def test_schedule_runs_the_sweep_then_the_export_on_their_own_crons() -> None:
    from finpipe.context import Context
    from ops.nightly import nightly_jobs

    settings = Settings.from_env(
        {"FINPIPE_SWEEP_CRON": "0 1 * * *", "FINPIPE_EXPORT_CRON": "0 3 * * *"}
    )
    jobs = nightly_jobs(Context(settings), {})
    assert [(j.name, j.cron, j.env_var) for j in jobs] == [
        ("inbox-sweep", "0 1 * * *", "FINPIPE_SWEEP_CRON"),
        ("export", "0 3 * * *", "FINPIPE_EXPORT_CRON"),
    ]


def test_the_nightly_export_uses_the_aliases_read_when_the_scheduler_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from export import run
    from finpipe.context import Context
    from ops.nightly import nightly_jobs

    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("Google: Alphabet\n", encoding="utf-8")
    seen: list[Any] = []

    def export_after_drain(*_args: Any, aliases: Any = None) -> str:
        seen.append(aliases)
        return "exported"

    monkeypatch.setattr(run, "export_after_drain", export_after_drain)
    ctx = Context(Settings.from_env({}, company_aliases=aliases))
    jobs = nightly_jobs(ctx, ctx.company_aliases("schedule"))
    aliases.write_text("Google: ''\n", encoding="utf-8")  # broken after the start: not read again
    export = next(j for j in jobs if j.name == "export")
    assert export.func() == "exported"
    assert export.func() == "exported"
    assert seen == [{"Google": "Alphabet"}, {"Google": "Alphabet"}]


class _Pub:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.headers: dict[str, Any] = {}

    def publish_many(self, messages: Any, **headers: Any) -> int:
        self.published.extend(m.report_id for m in messages)
        self.headers.update((m.report_id, headers) for m in messages)
        return len(messages)

    def close(self) -> None:
        pass


class _Runs:
    def record_run(self, name: str, now: datetime, **fields: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _inbox_with_a_file(tmp_path: Path) -> Settings:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text(
        '{"raw_text": "Company ABC had revenue of $1 million."}\n'
        '{"raw_text": "Company DEF had revenue of $2 million."}\n'
    )
    return Settings.from_env({}, inbox=str(inbox))


def test_prepare_sees_the_waiting_reports_before_they_are_published(tmp_path: Path) -> None:
    settings = _inbox_with_a_file(tmp_path)
    pub, seen = _Pub(), []

    def prepare(reports: list[Any]) -> scheduler.Prepared:
        assert pub.published == [] and (settings.inbox / "a.jsonl").exists()
        seen.extend(r.report_id for r in reports)
        return scheduler.Prepared("prepared", frozenset(seen[:1]))

    job = scheduler.inbox_sweep_job(settings, publisher=lambda: pub, runs=_Runs, prepare=prepare)
    job.func()
    assert len(seen) == 2 and sorted(seen) == sorted(pub.published)
    assert not (settings.inbox / "a.jsonl").exists()
    # the report the step prefilled carries the header that sends workers to the cache
    assert pub.headers == {seen[0]: {HEADER_PREFILLED: 1}, seen[1]: {}}


def test_a_failing_prepare_never_stops_the_sweep(tmp_path: Path) -> None:
    settings = _inbox_with_a_file(tmp_path)
    pub = _Pub()

    def prepare(reports: list[Any]) -> scheduler.Prepared:
        raise RuntimeError("batch API down")

    scheduler.inbox_sweep_job(settings, publisher=lambda: pub, runs=_Runs, prepare=prepare).func()
    assert len(pub.published) == 2


def test_a_prepare_interrupted_by_a_stop_leaves_the_files_for_the_next_run(tmp_path: Path) -> None:
    settings = _inbox_with_a_file(tmp_path)
    pub = _Pub()

    def prepare(reports: list[Any]) -> scheduler.Prepared:
        raise Interrupted("stopping while a batch job runs")

    job = scheduler.inbox_sweep_job(settings, publisher=lambda: pub, runs=_Runs, prepare=prepare)
    with pytest.raises(Interrupted):
        job.func()
    scheduler._logged(job)()  # logged as stopped, not as a failure
    assert pub.published == [] and (settings.inbox / "a.jsonl").exists()


def test_a_job_refused_by_configuration_is_logged_on_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from schemas.errors import ConfigError

    def refused() -> str:
        raise ConfigError("RabbitMQ refused the login for user 'guest' (check FINPIPE_AMQP_URL)")

    job = scheduler.Job("sweep", "0 2 * * *", refused, "FINPIPE_SWEEP_CRON")
    with caplog.at_level("ERROR"):
        scheduler._logged(job)()
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == (
        "job sweep failed: RabbitMQ refused the login for user 'guest' (check FINPIPE_AMQP_URL)"
    )
    assert record.exc_info is None
