"""MkDocs hooks: the pages that describe code are generated from it at every build.

- `openapi.json` (rendered on the HTTP API page) is the app's own OpenAPI document.
- `<!-- generated: settings -->` in a page becomes the table of every `ENERGYHUB_*` setting, read
  from the Settings class (type, default, limits, description).
- `<!-- generated: routes -->` becomes the table of the API's routes, from the same document.
- `<!-- generated: commands -->` becomes the reference of every `energyhub` command, from the CLI.

Nothing generated is committed, so none of it can drift from the code.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from pydantic.fields import FieldInfo

REPO = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- generated: (\w+) -->")

SETTING_GROUPS: dict[str, str] = {
    "db": "Database",
    "timescaledb": "Storage",
    "retention": "Storage",
    "partitions": "Storage",
    "compress": "Storage",
    "rollup": "Storage",
    "mqtt": "MQTT",
    "ingest": "Ingest",
    "api": "HTTP API",
    "scheduler": "Scheduler",
    "alerts": "Alerts",
    "dask": "Planning",
}
"""A setting's section by the first word of its name; any other goes under General."""


# --- settings ---------------------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (types.UnionType, typing.Union):
        names = [_type_name(arg) for arg in get_args(annotation) if arg is not type(None)]
        return " \\| ".join(names)
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    return getattr(annotation, "__name__", str(annotation))


def _default(name: str, field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, Path):
        try:
            value = value.relative_to(REPO)
        except ValueError:
            pass
        return f"`{value}`"
    if isinstance(value, list):
        return "none" if not value else ", ".join(f"`{item}`" for item in value)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _limits(field: FieldInfo) -> str:
    words = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    found = []
    for item in field.metadata:
        for attribute, word in words.items():
            bound = getattr(item, attribute, None)
            if bound is not None:
                found.append(f"{word} {bound}")
    return ", ".join(found)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def settings_markdown() -> str:
    """One table per section: every field of Settings as its ENERGYHUB_* variable."""
    from energyhub.config import Settings

    sections: dict[str, list[str]] = {}
    for name, field in Settings.model_fields.items():
        section = SETTING_GROUPS.get(name.split("_", 1)[0], "General")
        limits = _limits(field)
        kind = _type_name(field.annotation) + (f" ({limits})" if limits else "")
        row = (
            f"| `ENERGYHUB_{name.upper()}` | {kind} | {_default(name, field)} | "
            f"{_cell(field.description or '')} |"
        )
        sections.setdefault(section, []).append(row)
    order = ["General", *dict.fromkeys(SETTING_GROUPS.values())]
    parts = []
    for section in order:
        if section in sections:
            parts.append(f"### {section}\n")
            parts.append("| variable | type | default | meaning |\n|---|---|---|---|")
            parts.extend(sections[section])
            parts.append("")
    return "\n".join(parts)


# --- the HTTP API -----------------------------------------------------------------------------


@cache
def openapi() -> dict[str, Any]:
    """The OpenAPI document `energyhub api` serves at /openapi.json, for default settings."""
    from energyhub.api.app import create_app
    from energyhub.config import Settings

    document: dict[str, Any] = create_app(Settings.model_construct()).openapi()
    return document


def routes_markdown() -> str:
    rows = ["| method | path | what |", "|---|---|---|"]
    for path, operations in openapi()["paths"].items():
        for method, operation in operations.items():
            summary = _cell(operation.get("summary") or "")
            rows.append(f"| `{method.upper()}` | `{path}` | {summary} |")
    return "\n".join(rows) + "\n"


# --- the command line -------------------------------------------------------------------------


def _commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    for name in sorted(subcommands):
        yield from _commands(subcommands[name], [*path, name])


def commands_markdown() -> str:
    """Every `energyhub` command with its help text and options, from the typer app."""
    from energyhub.cli import loaded_commands

    root = loaded_commands()
    parts = []
    for path, command in _commands(root, ["energyhub"]):
        name = " ".join(path)
        parts.append(f"### `{name}`\n")
        parts.append(_cell(command.help or "") + "\n")
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        names = [p.metavar or str(p.name).upper() for p in arguments]
        usage = " ".join([name, "[OPTIONS]", *names])
        parts.append(f"```\n{usage}\n```\n")
        options = [p for p in command.params if p.param_type_name == "option" and p.help]
        if options:
            parts.append("| option | meaning |\n|---|---|")
            for option in options:
                flags = " / ".join(f"`{flag}`" for flag in [*option.opts, *option.secondary_opts])
                parts.append(f"| {flags} | {_cell(option.help)} |")
            parts.append("")
    return "\n".join(parts)


GENERATORS = {
    "settings": settings_markdown,
    "routes": routes_markdown,
    "commands": commands_markdown,
}


# --- MkDocs events ----------------------------------------------------------------------------


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the API's OpenAPI document to the site (it is not in docs/)."""
    content = json.dumps(openapi(), indent=1, ensure_ascii=False)
    files.append(File.generated(config, "openapi.json", content=content))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    def generate(match: re.Match[str]) -> str:
        name = match[1]
        if name not in GENERATORS:
            raise ValueError(
                f"{page.file.src_uri}: no generator {name!r} ({', '.join(GENERATORS)})"
            )
        return GENERATORS[name]()

    return MARKER.sub(generate, markdown)
