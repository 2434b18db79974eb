"""An API key is printed once by `keys create` and never logged, even at DEBUG: not by the command,
not by `energyhub api` when the key is used, mistyped, sent where it does not belong, or used to
log in to /ui."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from energyhub.store.embedded import free_port
from tests.conftest import REPO

from .conftest import SITE_FILE, KeyedDatabase

START_S = 30.0


def _env(db_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    return env | {
        "ENERGYHUB_DB_URL": db_url,
        "ENERGYHUB_SITE_FILE": str(SITE_FILE),
        "ENERGYHUB_LOG_LEVEL": "DEBUG",
        "ENERGYHUB_API_PORT": str(port),
    }


def _wait_until_serving(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if client.get("/health").status_code in (200, 503):
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the API did not answer within {START_S} s:\n{log.read_text()}")


def _use_the_key(client: httpx.Client, token: str) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/sites", headers=bearer).status_code == 200
    assert client.get("/sites", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    assert client.get("/sites", params={"api_key": token}).status_code == 401
    assert client.get(f"/sites/{token}", headers=bearer).status_code in (404, 422)
    big = b"[" + b"0," * 5_000_000 + b"0]"
    assert client.post("/plans", content=big, headers=bearer).status_code == 413
    login = client.post("/ui/login", data={"key": token, "next": "/ui"}, follow_redirects=False)
    assert login.status_code == 303
    assert client.get("/ui", headers={"Cookie": f"energyhub_key={token}"}).status_code == 200


def test_a_key_is_printed_once_and_never_logged(keyed_db: KeyedDatabase, tmp_path: Path) -> None:
    port = free_port()
    env = _env(keyed_db.url, port)
    created = subprocess.run(
        [sys.executable, "-m", "energyhub", "keys", "create", "--role", "viewer", "--site", "b01"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ehk_") and len(token) > 40
    assert created.stdout.count(token) == 1
    assert token not in created.stderr

    log = tmp_path / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "energyhub", "api"], env=env, cwd=REPO, stdout=out, stderr=out
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait_until_serving(client, api, log)
            _use_the_key(client, token)
            _use_the_key(client, keyed_db.token)
    finally:
        api.terminate()
        api.wait(30)
    text = log.read_text(errors="replace")
    assert " DEBUG " in text, "the API did not log at DEBUG"
    for secret in (token, keyed_db.token):
        assert secret not in text
        assert secret[12:24] not in text  # no part of it past the public prefix either
