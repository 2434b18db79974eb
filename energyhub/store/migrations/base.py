"""What a migration is: a version, a description and an async apply step for one backend choice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from psycopg import AsyncConnection

from energyhub.store.db import Backend


@dataclass(frozen=True)
class MigrationContext:
    """The backend chosen for this database and the settings that shape its policies."""

    backend: Backend
    retention_days: int
    compress_after_days: int
    partitions_ahead_days: int
    progress: Callable[[str], None] | None = None
    """Hears how a long step (a rollup rebuild) advances; `energyhub db migrate` prints it."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[AsyncConnection, MigrationContext], Awaitable[None]]
