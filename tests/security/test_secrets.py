"""Secrets come from the environment only: no setting defaults to one, the compose file requires
each from .env, and .env.example holds placeholders, never a usable password."""

from __future__ import annotations

import re

import yaml

from energyhub.config import Settings
from tests.conftest import REPO

SECRET = re.compile(r"secret|password|token|_key$", re.IGNORECASE)


def test_no_setting_defaults_to_a_secret() -> None:
    secrets = {name: f for name, f in Settings.model_fields.items() if SECRET.search(name)}
    assert "alerts_webhook_secret" in secrets
    assert all(f.default is None for f in secrets.values())
    for url in ("db_url", "mqtt_url"):  # credentials ride in the URLs: none by default
        assert Settings.model_fields[url].default is None


def test_env_example_holds_placeholders_only() -> None:
    pairs = [
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    passwords = {key: value for key, value in pairs if "PASSWORD" in key}
    assert len(passwords) >= 6
    assert all(value.startswith("change-me") for value in passwords.values()), passwords


def test_compose_requires_every_password_from_the_environment() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    services = yaml.safe_load(compose)["services"]
    for service in services.values():
        environment = service.get("environment", {})
        for key, value in environment.items() if isinstance(environment, dict) else ():
            if "PASSWORD" in key:
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*|:-)?\}", str(value)), (key, value)
    # the URLs that carry a password take it from the same variables
    for url in re.findall(r"(?:postgresql|mqtt)://[^\s\"']+@", compose):
        assert re.search(r":\$\{\w+(:\?[^}]*)?\}@$", url), url
