"""docker-compose.yml is validated by Debian's docker-compose (no Docker engine runs here)."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_services(*profiles: str, **env: str) -> dict[str, Any]:
    """The services of docker-compose.yml as ``docker-compose config`` resolves them, with the
    ``profiles`` enabled and ``env`` as the environment."""
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed; scripts/services.sh up installs it"
    args = [a for p in profiles for a in ("--profile", p)]
    out = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), *args, "config"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert out.returncode == 0, out.stderr
    services: dict[str, Any] = yaml.safe_load(out.stdout)["services"]
    return services


def test_compose_file_is_valid_and_has_real_services() -> None:
    services = compose_services()
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3-management")
    assert services["mongo"]["image"] == "mongo:7"
    for name in ("rabbitmq", "mongo"):
        assert services[name]["healthcheck"]["test"]
    for name in ("api", "worker"):
        assert services[name]["environment"]["FINPIPE_AMQP_URL"].startswith("amqp://")
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_cluster_profile_has_three_rabbitmq_nodes_and_workers_that_know_all_of_them() -> None:
    from schemas.settings import amqp_addresses

    services = compose_services("cluster")
    nodes = [f"rabbit{i}" for i in (1, 2, 3)]
    for name in nodes:
        node = services[name]
        assert node["image"].startswith("rabbitmq:3")
        assert node["hostname"] == name
        assert node["healthcheck"]["test"]
        assert "classic_config.nodes.3 = rabbit@rabbit3" in " ".join(node["command"])
    worker = services["cluster-worker"]
    urls = amqp_addresses(worker["environment"]["FINPIPE_AMQP_URL"])
    assert [u.split("@")[1].split(":")[0] for u in urls] == nodes
    assert set(nodes) <= set(worker["depends_on"])


def test_monitoring_profile_runs_prometheus_with_the_rules_and_grafana_with_the_dashboard() -> None:
    import json

    services = compose_services("monitoring")

    def mounts(name: str) -> dict[str, Path]:
        found = {}
        for volume in services[name]["volumes"]:  # short form: source:target[:mode]
            source, target = volume.split(":")[:2]
            if source.startswith("/"):
                assert Path(source).is_file(), f"{name} mounts {source}, which does not exist"
                found[target] = Path(source)
        return found

    prometheus = mounts("prometheus")
    assert prometheus["/etc/prometheus/alerts.yml"] == ROOT / "monitoring" / "alerts.yml"
    config = yaml.safe_load(prometheus["/etc/prometheus/prometheus.yml"].read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"finpipe-serve", "finpipe-worker", "finpipe-scheduler"}
    for name in ("worker", "scheduler"):
        assert services[name]["environment"]["FINPIPE_METRICS_PORT"] == "9100"
        assert services[name]["environment"]["FINPIPE_METRICS_HOST"] == "0.0.0.0"

    grafana = mounts("grafana")
    dashboard = json.loads(grafana["/var/lib/grafana/dashboards/finpipe.json"].read_text())
    datasource = yaml.safe_load(
        grafana["/etc/grafana/provisioning/datasources/finpipe.yml"].read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True
    # every query goes to the dashboard's data source variable, which picks a Prometheus (the
    # default one: the provisioned one here, whatever a Grafana it is imported into calls it)
    [variable] = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {"${" + variable["name"] + "}"}
    # outside the profile, neither runs
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]


def _environments(**env: str) -> dict[str, dict[str, str]]:
    services = compose_services("cluster", **env)
    return {
        name: {k: "" if v is None else str(v) for k, v in (svc.get("environment") or {}).items()}
        for name, svc in services.items()
        if name in ("api", "worker", "scheduler", "cluster-worker")
    }


def test_the_compose_file_uses_finpipes_own_default_model_unless_one_is_set() -> None:
    from schemas.settings import Settings

    default = Settings.model_fields["model"].default
    for name, env in _environments().items():
        assert Settings.from_env(env).model == default, name
    for name, env in _environments(FINPIPE_MODEL="gpt-6-sol").items():
        assert Settings.from_env(env).model == "gpt-6-sol", name
