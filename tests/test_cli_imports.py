"""Commands import what they use: every command module imports first, alone, in a fresh interpreter
(none is in an import cycle with energyhub.cli); `energyhub --help` imports none of them; an ingest
worker carries no API, SciPy, pandas or optimizer; the help each command is listed with is its own."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from energyhub.cli import COMMANDS, app
from energyhub.cli_lazy import LazyGroup

COMMAND_MODULES = sorted({command.target.partition(":")[0] for command in COMMANDS})

HEAVY = ("scipy", "pandas", "fastapi", "uvicorn", "highspy", "pyarrow", "grafana_client")
"""Libraries a command that does not plan, serve or report must not import."""


FIRST_IMPORT = """
import importlib, sys, traceback
ours = ("energyhub", "simulators")
failed = 0
for module in sys.argv[1:]:
    for name in [m for m in sys.modules if m.partition(".")[0] in ours]:
        del sys.modules[name]  # each command module is imported first, before any of ours
    try:
        importlib.import_module(module)
    except Exception:
        failed += 1
        print(f"--- import {module} first:", traceback.format_exc(), file=sys.stderr)
sys.exit(failed)
"""


def test_each_command_module_imports_first_on_its_own() -> None:
    """One interpreter imports each module with none of energyhub's loaded before it (libraries
    stay loaded: a fresh interpreter per module cost 4-8 s each on a busy machine)."""
    modules = ["energyhub.cli", "energyhub.cli_support", "energyhub.cli_lazy", *COMMAND_MODULES]
    done = subprocess.run(
        [sys.executable, "-c", FIRST_IMPORT, *modules],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _modules_after(*args: str) -> set[str]:
    """The modules loaded by the time `energyhub ARGS` exits, in a fresh interpreter."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(' '.join(sorted(sys.modules)), file=sys.stderr))\n"
        "from energyhub.cli import app\n"
        f"app({list(args)!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(done.stderr.split())


def _top(modules: set[str]) -> set[str]:
    return {m.partition(".")[0] for m in modules}


def test_help_imports_no_command() -> None:
    loaded = _modules_after("--help")
    assert {m for m in loaded if m.startswith(("energyhub", "simulators"))} == {
        "energyhub",
        "energyhub.cli",
        "energyhub.cli_lazy",
    }
    assert not _top(loaded) & {*HEAVY, "numpy", "psycopg", "pydantic"}


def test_the_ingest_worker_imports_no_planning_api_or_pandas() -> None:
    loaded = _modules_after("ingest", "--help")
    assert "energyhub.ingest.supervisor" in loaded  # the command itself was loaded
    assert not _top(loaded) & set(HEAVY)
    assert not {m for m in loaded if m.startswith(("energyhub.optimize", "energyhub.api"))}


def test_sites_check_imports_no_planning_or_api() -> None:
    loaded = _modules_after("sites", "--help")
    assert "energyhub.sites_cli" in loaded
    assert not _top(loaded) & set(HEAVY)


def _help_screen(group: LazyGroup, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        group.main(["--help"], prog_name="energyhub")
    return capsys.readouterr().out


def test_each_command_is_listed_with_its_own_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    listed = _help_screen(group, capsys)
    group.load_all()
    assert _help_screen(group, capsys) == listed
    for command in COMMANDS:
        assert command.name in listed


def test_commands_are_listed_in_the_tables_order(monkeypatch: pytest.MonkeyPatch) -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    assert list(group.commands) == [command.name for command in COMMANDS]
