"""docker-compose.yml is validated by Debian's docker-compose (no Docker engine runs here)."""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid_and_has_real_services() -> None:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed; scripts/services.sh up installs it"
    out = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    services = config["services"]
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3-management")
    assert services["mongo"]["image"] == "mongo:7"
    for name in ("rabbitmq", "mongo"):
        assert services[name]["healthcheck"]["test"]
    for name in ("api", "worker"):
        assert services[name]["environment"]["FINPIPE_AMQP_URL"].startswith("amqp://")
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
