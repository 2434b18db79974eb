"""Terminal output survives copy and paste: width follows the terminal, else 120 columns; lines with
a URL or a key are never wrapped, whatever the width."""

from __future__ import annotations

import fcntl
import io
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from energyhub.demo.planning import LevelPlan
from energyhub.demo.run import print_serving

WIDTH = "from energyhub.cli_support import console, err_console; print(console.width, err_console.width)"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**env, **extra}


def test_width_is_120_columns_without_a_terminal() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WIDTH], capture_output=True, text=True, env=_env(), check=True
    )
    assert done.stdout.split() == ["120", "120"]


def test_columns_sets_the_width() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WIDTH],
        capture_output=True,
        text=True,
        env=_env(COLUMNS="97"),
        check=True,
    )
    assert done.stdout.split() == ["97", "97"]


def test_width_follows_the_terminal() -> None:
    leader, follower = os.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 63, 0, 0))
        with subprocess.Popen(
            [sys.executable, "-c", WIDTH],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=_env(TERM="xterm"),
        ) as child:
            child.wait(timeout=60)
        os.close(follower)
        follower = -1
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: all read
                break
            if not chunk:
                break
            output += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert output.decode().split() == ["63", "63"]


def test_site_tree_is_not_wrapped_at_80_columns_in_a_pipe(example_site_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "energyhub", "sites", "check", str(example_site_path)],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    widths = [len(line) for line in done.stdout.splitlines()]
    assert 80 < max(widths) <= 120
    assert any(
        line.endswith("Tower A (headquarters offices) 9 meters, 6 assets")
        for line in done.stdout.splitlines()
    )


def test_urls_and_the_key_are_never_wrapped() -> None:
    url = "http://127.0.0.1:54321"
    token = "ehk_" + "x" * 43
    draft = SimpleNamespace(id=7, level="park", site_id="expo", status="draft")
    plans = [LevelPlan(record=draft, seconds=1.0, method="milp")]  # type: ignore[arg-type]
    for width in (40, 80, 120):
        out = io.StringIO()
        print_serving(Console(file=out, width=width), url, True, "3 of shanghai", token, plans)
        lines = out.getvalue().splitlines()
        assert f'try       curl -H "Authorization: Bearer {token}" {url}/sites' in lines
        assert f"admin key {token}   (key 3 of shanghai, shown once)" in lines
        assert f"plan #7 (park expo) awaits an operator: POST {url}/plans/7/approve" in lines
        assert f"docs      {url}/docs" in lines
        assert len(lines) == 6
