"""energyhub's one exception tree; `api/` turns it into HTTP errors, the CLI into exit codes."""

from __future__ import annotations

import re

CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
"""Unicode's control characters (category Cc) as a regex class body: C0, DEL and C1. A C1 one
(U+0085 next line, U+009B a terminal's CSI) rewrites a terminal or splits a log line as a C0 one
does."""
CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
"""Control characters: refused in stored text (energyhub.bounds), site files and MQTT topics,
escaped where echoed."""


def printable(text: str) -> str:
    """`text` with each control character written as its escape (`\\x1b`, `\\n`): an echoed
    value must not rewrite the terminal or the log that shows it."""
    return CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


class EnergyhubError(Exception):
    """Base of every error energyhub raises on purpose."""


class ConfigError(EnergyhubError):
    """A setting (environment variable or TOML key) has a value of the wrong form."""


class SiteFileError(EnergyhubError):
    """A site file cannot be read or breaks the site-file contract.

    `problems` holds one `path: message` line per problem, e.g.
    `city.parks[0].buildings[3].assets[1].energy_kwh: must be > 0, got -5`.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = [printable(p) for p in problems]  # keys and values are echoed in them
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class StoreError(EnergyhubError):
    """Base of storage errors."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached; the message carries the masked URL and what to check,
    `reason` only what went wrong (for a line a long-running role repeats while it lasts)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class StoredSiteError(StoreError):
    """A site's attributes in the database break the site-file rules of this version (stored by
    an older one that took them): loading its site file again names what to change."""


class MigrationError(StoreError):
    """The schema cannot be brought to the current version."""


class SchedulerLockError(EnergyhubError):
    """Another scheduler holds the database's scheduler lock, or took it over from this one."""


class EmbeddedServiceError(EnergyhubError):
    """An embedded server (PostgreSQL for the demo or a test) failed to start or stop."""


def not_utf8(exc: UnicodeDecodeError) -> str:
    """What a file's read ended on, for the one line that names the file: `not UTF-8 text (byte
    0xff at offset 17)`."""
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
