"""docker-compose.yml, Dockerfile and .env.example, checked without Docker (none runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from energyhub.cli import app
from energyhub.config import Settings
from energyhub.grafana.provisioning import DASHBOARDS_PATH
from tests.conftest import REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENERGYHUB = {name: s for name, s in SERVICES.items() if s.get("image") == "energyhub:local"}
LONG_RUNNING = [name for name, s in SERVICES.items() if s.get("restart") != "no"]
INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


EXAMPLE_ENV = _env_file(REPO / ".env.example")


def interpolate(value: object, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$, from the given environment."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match[1] or match[4]
        if name in env and (env[name] or not match[2] or ":" not in match[2]):
            return env[name]
        if match[2] and match[2].endswith("?"):
            raise KeyError(f"{name}: {match[3]}")
        return match[3] or ""

    return INTERPOLATION.sub(replace, str(value))


def test_services_of_the_production_stack() -> None:
    assert {
        "timescaledb", "mosquitto", "grafana", "migrate", "load-sites", "ingest-0", "ingest-1",
        "api", "scheduler", "alerts", "modbus", "simulator",
    } == set(SERVICES)  # fmt: skip
    assert SERVICES["simulator"]["profiles"] == ["demo"]
    assert all("profiles" not in s for name, s in SERVICES.items() if name != "simulator")


def test_images_are_pinned_to_the_required_versions() -> None:
    timescaledb = SERVICES["timescaledb"]["image"]
    assert re.fullmatch(r"timescale/timescaledb:2\.\d+\.\d+-pg(\d+)", timescaledb)
    assert int(timescaledb.rsplit("-pg", 1)[1]) >= 16
    assert re.fullmatch(r"eclipse-mosquitto:2\.\d+\.\d+", SERVICES["mosquitto"]["image"])
    assert re.fullmatch(r"grafana/grafana-oss:\d+\.\d+\.\d+", SERVICES["grafana"]["image"])


def _command_id(name: str) -> str:
    return f"{name}: energyhub {' '.join(ENERGYHUB[name]['command'][:2])}"


@pytest.mark.parametrize(
    "service", sorted(ENERGYHUB), ids=[_command_id(n) for n in sorted(ENERGYHUB)]
)
def test_every_service_command_is_an_energyhub_subcommand(service: str) -> None:
    """`energyhub <command> --help` exits 0; api and scheduler are other engineers' work."""
    command = [str(part) for part in ENERGYHUB[service]["command"]]
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, (
        f"service {service!r}: `energyhub {' '.join(command)}` is not a registered subcommand "
        f"(exit {result.exit_code}): {result.output.strip()[:300]}"
    )


@pytest.mark.parametrize("service", sorted(ENERGYHUB))
def test_energyhub_variables_are_settings_with_valid_values(service: str) -> None:
    environment = ENERGYHUB[service].get("environment", {})
    variables = {k: interpolate(v, EXAMPLE_ENV) for k, v in environment.items()}
    names = {k.removeprefix("ENERGYHUB_").lower() for k in variables if k.startswith("ENERGYHUB_")}
    assert names <= set(Settings.model_fields), names - set(Settings.model_fields)
    values = {k.removeprefix("ENERGYHUB_").lower(): v for k, v in variables.items()}
    Settings(**values)


def test_env_example_sets_every_variable_compose_requires() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    required = {m[1] for m in INTERPOLATION.finditer(text) if m[2] == ":?"}
    assert required <= set(EXAMPLE_ENV), required - set(EXAMPLE_ENV)
    energyhub = {k.removeprefix("ENERGYHUB_").lower() for k in EXAMPLE_ENV if "ENERGYHUB_" in k}
    assert energyhub <= set(Settings.model_fields)


def test_ingest_replicas_are_distinct_workers_with_their_metrics_probed() -> None:
    """Each replica must know the group's size too: alone, a worker would take every site."""
    indexes = []
    for name in ("ingest-0", "ingest-1"):
        command = SERVICES[name]["command"]
        index = int(command[command.index("--worker-index") + 1])
        assert int(command[command.index("--workers") + 1]) == 2, name
        indexes.append(index)
        port = int(SERVICES[name]["environment"]["ENERGYHUB_INGEST_METRICS_PORT"]) + index
        assert f"http://127.0.0.1:{port}/metrics" in " ".join(SERVICES[name]["healthcheck"]["test"])
    assert sorted(indexes) == [0, 1]


def test_long_running_services_have_healthchecks() -> None:
    unchecked = {name for name in LONG_RUNNING if "healthcheck" not in SERVICES[name]}
    assert unchecked == {"scheduler", "alerts", "simulator"}  # they serve nothing to probe


def _mounts(service: str) -> dict[str, str]:
    """Container path → host path of a service's bind mounts."""
    mounts = {}
    for entry in SERVICES[service].get("volumes", []):
        host, container, *_ = interpolate(entry, EXAMPLE_ENV).split(":")
        if host.startswith("."):
            mounts[container] = host
    return mounts


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_bind_mounts_exist_in_the_repository(service: str) -> None:
    for host in _mounts(service).values():
        assert (REPO / host).exists(), f"{service}: {host} is missing"


def test_grafana_gets_the_provisioning_and_the_dashboards() -> None:
    mounts = _mounts("grafana")
    assert mounts["/etc/grafana/provisioning"] == "./dashboards/provisioning"
    assert mounts[DASHBOARDS_PATH] == "./dashboards"
    datasources = (REPO / "dashboards/provisioning/datasources/energyhub.yaml").read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", datasources))
    assert placeholders <= set(SERVICES["grafana"]["environment"])


def test_mosquitto_runs_the_repository_config_through_start_sh() -> None:
    mounts = _mounts("mosquitto")
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto.conf"
    assert mounts["/mosquitto/deploy"] == "./deploy/mosquitto"
    config = (REPO / "deploy/mosquitto.conf").read_text()
    assert "password_file /mosquitto/run/passwd" in config
    assert "acl_file /mosquitto/deploy/acl" in config
    assert "/mosquitto/run" in SERVICES["mosquitto"]["tmpfs"]


def test_timescaledb_runs_the_grafana_reader_script_at_first_start() -> None:
    mounts = _mounts("timescaledb")
    script = "./deploy/timescaledb/grafana-reader.sh"
    assert mounts["/docker-entrypoint-initdb.d/900_grafana_reader.sh"] == script


def test_dockerfile_installs_energyhub_and_runs_it() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["energyhub"]' in dockerfile
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.MULTILINE)
    sources = {source for line in copied for source in line.split()}
    assert sources == {"pyproject.toml", "README.md", "energyhub", "simulators", "examples"}
    assert all((REPO / source).exists() for source in sources)
    admitted = {
        line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }  # fmt: skip
    assert sources <= admitted
