"""Commands that import their module only when they run: `energyhub --help` lists every command
from a one-line help registered beside its name, so it loads none of them, and an ingest worker
carries the ingest and nothing else (not the API, SciPy or the optimizer).

A command is `LazyCommand(name, "package.module:attribute", help)`, where the attribute is a command
function or a `typer.Typer` sub-app; tests/test_cli_imports.py checks that each help equals the
command's own and that `--help` imports no command module.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    """One `energyhub` command: its name, where it lives, the line `energyhub --help` shows."""

    name: str
    target: str
    """`module:attribute`: a command function, or a typer.Typer of sub-commands."""
    help: str
    panel: str | None = None
    """The heading `energyhub --help` lists it under (None: Commands)."""

    def load(self) -> _click.Command:
        """Import the module and build the click command exactly as `app.command(name)` or
        `app.add_typer(sub_app, name=name)` on the top-level app would."""
        module, _, attribute = self.target.partition(":")
        found: Any = getattr(importlib.import_module(module), attribute)
        holder = typer.Typer(add_completion=False)
        holder.callback()(_no_options)
        if isinstance(found, typer.Typer):
            holder.add_typer(found, name=self.name, rich_help_panel=self.panel)
        else:
            holder.command(self.name, rich_help_panel=self.panel)(found)
        group = typer.main.get_command(holder)
        assert isinstance(group, TyperGroup)  # noqa: S101 - a callback makes it a group
        return group.commands[self.name]


class OneLineTyper(typer.Typer):
    """The top-level app: its usage errors (an unknown command or option, a missing argument, a
    value out of range) are one line on stderr and exit status 2, like every other bad input."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from typer.exceptions import TyperException

        try:
            code = super().__call__(*args, **{**kwargs, "standalone_mode": False})
        except TyperException as exc:  # click's usage errors and typer's own
            context = getattr(exc, "ctx", None)
            where = context.command_path if context is not None else ""
            hint = f" (see `{where} --help`)" if where else ""
            prefix = f"{where}: " if where else ""
            from energyhub.cli_support import EXIT_BAD_INPUT, fail

            fail(f"{prefix}{exc.format_message()}{hint}")
            sys.exit(EXIT_BAD_INPUT)
        except typer.Abort:
            from energyhub.cli_support import err_console

            err_console.print("aborted")
            sys.exit(130)
        if isinstance(code, int) and code:
            sys.exit(code)
        return code


def _no_options() -> None:
    """A holder's callback, only so that typer builds a group around one command."""


class _Listed(TyperCommand):
    """A command as `--help` lists it before its module is imported."""


class LazyGroup(TyperGroup):
    """The top-level group: lazy commands listed in their table's order after any eager ones,
    loaded when they are invoked (their own `--help` included)."""

    lazy: ClassVar[Sequence[LazyCommand]] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._targets = {command.name: command for command in self.lazy}
        for command in self.lazy:
            self.commands.setdefault(
                command.name,
                _Listed(command.name, help=command.help, rich_help_panel=command.panel),
            )

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, _Listed):
            command = self.commands[name] = self._targets[name].load()
        return name, command, rest

    def load_all(self) -> None:
        """Replace every listed command by the real one (tests compare the two help screens)."""
        for name, command in list(self.commands.items()):
            if isinstance(command, _Listed):
                self.commands[name] = self._targets[name].load()


def lazy_group(commands: Sequence[LazyCommand]) -> type[LazyGroup]:
    """The group class for a typer.Typer(cls=...) whose commands are `commands`."""
    names = [command.name for command in commands]
    if len(set(names)) != len(names):
        raise ValueError(f"a command name is registered twice: {names}")
    return type("EnergyhubGroup", (LazyGroup,), {"lazy": tuple(commands)})
