"""The alert rules and the dashboard in ``monitoring/``: promtool checks the rules and runs their
unit tests (``alerts_test.yml``); every metric they query is one finpipe defines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from adapters import metrics

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: scripts/services.sh up installs Debian's prometheus")
    return found


def test_promtool_accepts_the_alert_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_fire_as_their_unit_tests_expect() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def alert_expressions() -> dict[str, str]:
    doc = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def dashboard_queries() -> dict[str, str]:
    doc = json.loads((MONITORING / "dashboard.json").read_text())
    return {
        f"{p['title']} [{t.get('refId', i)}]": t["expr"]
        for p in doc["panels"]
        for i, t in enumerate(p.get("targets", []))
    }


def exposed_names() -> set[str]:
    """Every sample name the metrics module can expose."""
    names = set()
    for collector in list(metrics.REGISTRY._collector_to_names):
        names.update(metrics.REGISTRY._collector_to_names[collector])
    return names


@pytest.mark.parametrize("source", [alert_expressions, dashboard_queries])
def test_every_metric_queried_is_one_finpipe_exposes(source) -> None:  # type: ignore[no-untyped-def]
    metrics.watch_queues(lambda: [])
    metrics.watch_batch_jobs(lambda: {})
    known = exposed_names()
    for title, expr in source().items():
        for name in re.findall(r"\bfinpipe_[a-z_]+", expr):
            assert name in known, f"{title}: {name} is not a finpipe metric"
