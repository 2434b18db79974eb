"""Reading a site file: YAML to typed models, every problem listed in one SiteFileError."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from pydantic import ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from energyhub.bounds import no_control
from energyhub.errors import CONTROL, SiteFileError, not_utf8
from energyhub.sites.assets import ASSET_TYPES
from energyhub.sites.checks import reference_problems
from energyhub.sites.tree import SiteFile
from energyhub.userfiles import read_text

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


_EXPONENT_TEXT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+")
"""A number in exponent form that YAML 1.1 (PyYAML) reads as text: it takes only `1.0e+10`, a
dot and a signed exponent, where JSON and YAML 1.2 also take `1e10`, `1.0e10` and `1e+10`."""


_MISSING_HINTS = {
    ("grid",): "every park has its grid connection, as plans and bills are per connection: "
    "grid: {import_max_kw, tariff}",
    ("grid", "import_max_kw"): "in kW; a connection with no contractual limit states its "
    "physical one, the transformer's rating",
}
"""What to write where a key every site file needs is missing, by the end of its path."""


def _missing_hint(loc: tuple[str | int, ...]) -> str:
    names = tuple(part for part in loc if isinstance(part, str))
    hint = next((h for end, h in _MISSING_HINTS.items() if names[-len(end) :] == end), None)
    return f" ({hint})" if hint else ""


def _format_error(error: Any) -> str:
    location = _format_location(tuple(error["loc"]))
    template = _MESSAGES.get(error["type"])
    text = error.get("input")
    if (
        error["type"] in ("float_type", "int_type")
        and isinstance(text, str)
        and _EXPONENT_TEXT.fullmatch(text)
    ):
        mantissa, _, exponent = text.lower().partition("e")
        mantissa += "" if "." in mantissa else ".0"
        exponent = exponent if exponent[0] in "+-" else f"+{exponent}"
        return (
            f"{location}: YAML reads {text} as text, not a number: write it with a dot and a "
            f"signed exponent ({mantissa}e{exponent}) or in full, got {text!r}"
        )
    if template is not None:
        context = {
            key: f"{value:g}" if isinstance(value, float) else value
            for key, value in error.get("ctx", {}).items()
        }
        message = template.format(**context)
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message += _missing_hint(tuple(error["loc"]))
    else:
        message += f", got {error['input']!r}" if not isinstance(error["input"], dict) else ""
    return f"{location}: {message}" if location else message


def _control_problems(value: Any, loc: tuple[str | int, ...] = ()) -> dict[str, str]:
    """Every text of the document (key or value) with a control character, by location:
    PostgreSQL refuses NUL in the names and attributes `sites load` stores, and the others would
    rewrite the terminal that prints the tree."""
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return {}
    found: dict[str, str] = {}
    for key, item in items:
        where = _format_location((*loc, key if isinstance(key, int | str) else str(key)))
        for text in (key, item):
            if isinstance(text, str) and CONTROL.search(text):
                found.setdefault(where, f"{_why(text)}, got {text!r}")
        found.update(_control_problems(item, (*loc, key if isinstance(key, int) else str(key))))
    return found


def _why(text: str) -> str:
    try:
        no_control(text)
    except ValueError as exc:
        return str(exc)
    return "has a control character"


def parse_site(data: Any, source: str = "<site>") -> SiteFile:
    """Validate an already-parsed site document; raise SiteFileError listing every problem."""
    if data is None:  # YAML's empty document
        raise SiteFileError(source, ["the document is empty: a site file starts with version: 1"])
    if not isinstance(data, dict):
        raise SiteFileError(source, [f"the document must be a mapping, got {type(data).__name__}"])
    control = _control_problems(data)
    try:
        site = SiteFile.model_validate(data)
    except ValidationError as exc:
        problems = [_format_error(e) for e in exc.errors()]
        at = {p.partition(": ")[0] for p in problems}
        problems += [f"{where}: {why}" for where, why in control.items() if where not in at]
        raise SiteFileError(source, problems) from None
    problems = [f"{where}: {why}" for where, why in control.items()]
    problems += reference_problems(site)
    if problems:
        raise SiteFileError(source, problems)
    return site


MAX_DEPTH = 64
"""Deepest nesting of mappings and lists taken: a site file needs about ten levels; a deeper one
would exhaust Python's recursion while it is read or checked."""
MAX_NODES = 1_000_000
"""Most values a site file may stand for once its aliases are expanded: a city of a thousand
buildings is about 100,000; a YAML alias bomb ("billion laughs") stands for billions in a few
hundred bytes, which would take the check hours and all the memory."""


class _Checks(Composer, SafeConstructor, Resolver):
    """PyYAML's safe loading that refuses what it would take silently or die on: a key given
    twice in one mapping (the later value would win unseen), nesting deeper than MAX_DEPTH,
    aliases that expand beyond MAX_NODES values. The events come from libyaml where PyYAML has it
    (a 5,000-meter site file in 2 s instead of 9), else from PyYAML's Python parser; the nodes
    are composed here, where the depth is counted."""

    if TYPE_CHECKING:  # what the event parser beside it gives (declared here, it would hide it)

        def peek_event(self) -> yaml.Event | None: ...
        def dispose(self) -> None: ...

    def _start_checks(self) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                mark = cast("yaml.Mark | None", event.start_mark if event else None)
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        expanded = _expanded_size(node)
        if expanded > MAX_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"its aliases expand to more than {MAX_NODES:,} values: an alias "
                "bomb?", node.start_mark,
            )  # fmt: skip
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, yaml.Node] = {}
        for key_node, _ in node.value:
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "in a mapping", node.start_mark, f"key {key!r} is given twice",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node
        return super().construct_mapping(node, deep)


class _PythonLoader(
    _Checks, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser
):  # fmt: skip
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        self._start_checks()


_LOADERS: list[type[_Checks]] = [_PythonLoader]
"""The loaders this PyYAML has, the fastest first."""
try:
    from yaml._yaml import CParser
except ImportError:  # a PyYAML built without libyaml: its events parsed in Python
    pass
else:

    class _LibyamlLoader(_Checks, CParser):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            self._start_checks()

    _LOADERS.insert(0, _LibyamlLoader)


def read_yaml(text: str, loader: type[_Checks] = _LOADERS[0]) -> Any:
    """The YAML document in `text`, through the site-file checks (yaml.YAMLError if refused)."""
    reader = loader(text)  # type: ignore[call-arg]
    try:
        return reader.get_single_data()
    finally:
        reader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    """How many values the document stands for with every alias expanded, counted without
    expanding it (each node once, by identity): linear in the file's size."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack: list[yaml.Node] = [root]
    while stack:  # nodes in an order where each comes before its children
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = 1
        order.append(node)
        stack.extend(_children(node))
    for node in reversed(order):  # children first: an alias shares its node, counted each time
        sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes[id(c)] for c in _children(node)))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_site(path: Path | str) -> SiteFile:
    """Read and validate a YAML (or JSON) site file."""
    path = Path(path)
    try:
        text = read_text(path)
    except OSError as exc:
        raise SiteFileError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise SiteFileError(str(path), [f"cannot read the file: {not_utf8(exc)}"]) from None
    try:
        data = read_yaml(text)
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
