"""Every command module imports first, alone, in a fresh interpreter: none is in an import cycle
with energyhub.cli (they take their helpers from energyhub.cli_support)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "energyhub.cli",
        "energyhub.cli_support",
        "energyhub.alerts.cli",
        "energyhub.carbon.cli",
        "energyhub.grafana.cli",
        "energyhub.plans.cli",
        "energyhub.scheduler.cli",
        "simulators.cli",
        "energyhub.api.cli",
        "energyhub.optimize.cli",
    ],
)
def test_a_command_module_imports_on_its_own(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
