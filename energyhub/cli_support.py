"""What every `energyhub` subcommand shares: the consoles, one-line errors and their exit status,
settings, logging, running a coroutine. A module of its own so that energyhub.cli can import the
command modules at its top while they import these."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, ParamSpec, TextIO, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from energyhub.bounds import no_control
from energyhub.config import Settings, load_settings
from energyhub.errors import ConfigError, EnergyhubError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_BAD_INPUT = 2
"""Exit status for bad input: a site file, a CLI argument, a setting, an unreachable database."""

NO_TERMINAL_WIDTH_COLUMNS = 120
"""Width of tables and wrapped text when the output is no terminal (a log file, a pipe to `tee`):
rich's own 80 broke the demo's tables; lines with a URL or a key are never wrapped at any width."""


def output_width(stream: TextIO) -> int | None:
    """None (rich follows the terminal, or COLUMNS) when there is one; else 120 columns."""
    if os.environ.get("COLUMNS", "").isdigit():
        return None
    try:
        if stream.isatty():
            return None
    except ValueError:  # a closed stream
        pass
    return NO_TERMINAL_WIDTH_COLUMNS


# emoji=False: Rich would print an echoed value's `:x:` (an id, a name, a file's cell) as ❌
console = Console(width=output_width(sys.stdout), emoji=False)
err_console = Console(stderr=True, width=output_width(sys.stderr), emoji=False)


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


FREE_TEXT_MAX_CHARS = 200
"""Longest `--by`, `--name` or `--reason` taken: what the API takes for the same fields."""


def free_text(value: str | None) -> str | None:
    """Typer callback of options stored as text and shown again in tables (who acted, a key's
    name, a reason): no control character (an escape sequence would rewrite the terminal of
    whoever lists them) and at most FREE_TEXT_MAX_CHARS, as the API's fields."""
    if value is None:
        return None
    if len(value) > FREE_TEXT_MAX_CHARS:
        raise typer.BadParameter(f"at most {FREE_TEXT_MAX_CHARS} characters, got {len(value)}")
    try:
        return no_control(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}, got {value!r}") from None


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
