"""Reading a site file: YAML to typed models, every problem listed in one SiteFileError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from energyhub.errors import SiteFileError
from energyhub.sites.assets import ASSET_TYPES
from energyhub.sites.checks import reference_problems
from energyhub.sites.tree import SiteFile

_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be ≥ {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be ≤ {le}",
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "literal_error": "must be {expected}",
    "string_pattern_mismatch": "must be an id of letters, digits, '-', '_' or '.'",
    "too_short": "must not be empty",
    "finite_number": "must be a finite number",
}


def _format_location(loc: tuple[str | int, ...]) -> str:
    path = ""
    previous: str | int | None = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in ASSET_TYPES:
            pass  # the discriminated union's tag: the asset's own `type` says it already
        else:
            path += f".{part}" if path else part
        previous = part
    return path


def _format_error(error: Any) -> str:
    location = _format_location(tuple(error["loc"]))
    template = _MESSAGES.get(error["type"])
    if template is not None:
        context = {
            key: f"{value:g}" if isinstance(value, float) else value
            for key, value in error.get("ctx", {}).items()
        }
        message = template.format(**context)
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] not in ("missing",):
        message += f", got {error['input']!r}" if not isinstance(error["input"], dict) else ""
    return f"{location}: {message}" if location else message


def parse_site(data: Any, source: str = "<site>") -> SiteFile:
    """Validate an already-parsed site document; raise SiteFileError listing every problem."""
    if not isinstance(data, dict):
        raise SiteFileError(source, [f"the document must be a mapping, got {type(data).__name__}"])
    try:
        site = SiteFile.model_validate(data)
    except ValidationError as exc:
        raise SiteFileError(source, [_format_error(e) for e in exc.errors()]) from None
    problems = list(reference_problems(site))
    if problems:
        raise SiteFileError(source, problems)
    return site


def load_site(path: Path | str) -> SiteFile:
    """Read and validate a YAML (or JSON) site file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteFileError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SiteFileError(str(path), [f"{where}not valid YAML: {problem}"]) from None
    return parse_site(data, str(path))


def site_json_schema() -> str:
    """The JSON Schema of the site file, for editors and other tools."""
    schema = SiteFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "energyhub site file"
    return json.dumps(schema, indent=2, ensure_ascii=False)
