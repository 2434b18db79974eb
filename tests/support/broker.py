"""A private Mosquitto on a free port with the production config, for tests that restart it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from energyhub.store.embedded import free_port

REPO = Path(__file__).resolve().parents[2]


def anonymous(config: str) -> str:
    """The production broker config with its queue limits, minus passwords and ACL."""
    kept = [
        line
        for line in config.splitlines()
        if not line.startswith(("password_file", "acl_file", "allow_anonymous"))
    ]
    return "\n".join([*kept, "allow_anonymous true", ""])


class Broker:
    """A private Mosquitto on a free port with persistence, for tests that restart it."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        (root / "data").mkdir(parents=True, exist_ok=True)
        os.chmod(root / "data", 0o777)
        config = anonymous((REPO / "deploy" / "mosquitto.conf").read_text())
        config = config.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        config = config.replace("/mosquitto/data/", f"{root}/data/")
        if os.geteuid() == 0:  # else mosquitto becomes `mosquitto`, who cannot reach tmp_path
            config += "\nuser root\n"
        self.config = root / "mosquitto.conf"
        self.config.write_text(config)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
