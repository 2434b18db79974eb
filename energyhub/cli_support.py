"""What every `energyhub` subcommand shares: the consoles, one-line errors and their exit status,
settings, logging, running a coroutine. A module of its own so that energyhub.cli can import the
command modules at its top while they import these."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.exceptions import TyperException

from energyhub.config import Settings, load_settings
from energyhub.errors import ConfigError, EnergyhubError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_BAD_INPUT = 2
"""Exit status for bad input: a site file, a CLI argument, a setting, an unreachable database."""

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print a one-line (or short) error to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn energyhub's own errors into a clear message and exit status 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except EnergyhubError as exc:
            raise fail(str(exc)) from None

    return wrapper


def run_async(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine to completion; Ctrl-C ends it quietly."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        sys.exit(130)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None


def require_db_url(settings: Settings) -> str:
    if not settings.db_url:
        raise fail("ENERGYHUB_DB_URL is not set: give the PostgreSQL URL (or run `energyhub demo`)")
    return settings.db_url


class OneLineTyper(typer.Typer):
    """A typer app whose usage errors (an unknown command or option, a missing argument, a value
    out of range) are one line on stderr and exit status 2, like every other bad input."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            code = super().__call__(*args, **{**kwargs, "standalone_mode": False})
        except TyperException as exc:  # click's usage errors and typer's own
            context = getattr(exc, "ctx", None)
            where = context.command_path if context is not None else ""
            hint = f" (see `{where} --help`)" if where else ""
            prefix = f"{where}: " if where else ""
            fail(f"{prefix}{exc.format_message()}{hint}")
            sys.exit(EXIT_BAD_INPUT)
        except typer.Abort:
            err_console.print("aborted")
            sys.exit(130)
        if isinstance(code, int) and code:
            sys.exit(code)
        return code
