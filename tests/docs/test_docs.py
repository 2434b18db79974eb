"""The README and docs/: within the repository, current with the code they describe.

`make docs` (part of `make test`) builds the site with `mkdocs build --strict`, which fails on a
broken link between pages; these tests cover what that build does not: the README, which MkDocs
does not read, and that the generated pages describe every setting, route and command.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest
import yaml

from energyhub.api.app import create_app
from energyhub.cli import COMMANDS, loaded_commands
from energyhub.config import Settings
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
DOCS = REPO / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def test_the_readme_is_a_front_door_that_opens_with_the_two_commands() -> None:
    lines = README.splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail into docs/"
    opening = "\n".join(lines[:8])
    assert "make demo" in opening and "make test" in opening


@pytest.mark.parametrize(
    "path", [REPO / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name
)
def test_links_stay_inside_the_repository_and_exist(path: Path) -> None:
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if path.parent == DOCS and file == "openapi.json":
            continue  # generated into the site by docs/hooks.py
        resolved = (path.parent / file).resolve()
        assert resolved.is_relative_to(REPO), f"{path.name}: {target} is outside the repository"
        assert resolved.exists(), f"{path.name}: {target} does not exist"


def test_every_command_the_readme_names_exists() -> None:
    names = {command.name for command in COMMANDS}
    named = set(re.findall(r"^\| `energyhub (\S+?)[` ]", README, flags=re.MULTILINE))
    assert named, "README.md has no table of commands"
    assert named <= names, named - names


def test_every_page_is_in_the_nav() -> None:
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.Loader)  # noqa: S506
    pages: set[str] = set()

    def walk(entries: list[object]) -> None:
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            if isinstance(value, list):
                walk(value)
            else:
                pages.add(str(value))

    walk(config["nav"])
    missing = {p.name for p in DOCS.glob("*.md")} - pages
    assert not missing, f"pages not in the nav of mkdocs.yml (add them there): {sorted(missing)}"
    assert pages <= {p.name for p in DOCS.glob("*.md")}, pages


def test_the_settings_page_has_every_setting_with_its_default() -> None:
    table = hooks.settings_markdown()
    for name, field in Settings.model_fields.items():
        row = next(line for line in table.splitlines() if f"`ENERGYHUB_{name.upper()}`" in line)
        default = field.get_default(call_default_factory=True)
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            shown = int(default) if float(default).is_integer() else default
            assert f"`{shown}`" in row, row
        if field.description:
            assert " ".join(field.description.split())[:40] in row.replace("\\|", "|"), row


def test_the_routes_table_lists_every_route_of_the_app() -> None:
    table = hooks.routes_markdown()
    document = create_app(Settings.model_construct()).openapi()
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"| `{method.upper()}` | `{path}` |" in table


def test_the_commands_page_lists_every_command_and_option() -> None:
    text = hooks.commands_markdown()
    for command in COMMANDS:  # a group is listed by its sub-commands (`energyhub sites check`)
        assert f"### `energyhub {command.name}" in text
    assert "### `energyhub sites check`" in text
    assert "`--worker-index`" in text


def test_pages_with_generated_parts_name_known_generators() -> None:
    for page in DOCS.glob("*.md"):
        for name in hooks.MARKER.findall(page.read_text()):
            assert name in hooks.GENERATORS, f"{page.name}: {name}"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """What `make docs` runs: a broken link, anchor or page left out of the nav fails it."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "openapi.json").is_file()
    assert "ENERGYHUB_DB_URL" in (tmp_path / "configuration" / "index.html").read_text()


@pytest.mark.parametrize(
    "path", [REPO / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name
)
def test_every_setting_a_page_names_exists(path: Path) -> None:
    known = {f"ENERGYHUB_{name.upper()}" for name in Settings.model_fields} | {"ENERGYHUB_CONFIG"}
    named = set(re.findall(r"\bENERGYHUB_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert named <= known, f"{path.name} names settings that do not exist: {sorted(named - known)}"


def _code(text: str) -> str:
    """Fenced blocks and inline code spans of a Markdown page."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    return "\n".join([*fenced, *inline])


@pytest.mark.parametrize(
    "path", [REPO / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name
)
def test_every_command_a_page_shows_exists(path: Path) -> None:
    root = loaded_commands()
    commands = set(root.commands)
    groups = {name: c for name, c in root.commands.items() if isinstance(c, click.Group)}
    text = path.read_text()
    for first, second in re.findall(
        r"(?:^|\$ |&& |; |\(|^\s+)energyhub ([a-z][\w-]*)(?: ([a-z][\w-]*))?",
        _code(text),
        flags=re.MULTILINE,
    ):
        if f"No such command '{first}'" in text:
            continue  # the page shows what an unknown command answers
        assert first in commands, f"{path.name}: energyhub {first}"
        if first in groups and second:
            assert second in groups[first].commands, f"{path.name}: energyhub {first} {second}"
