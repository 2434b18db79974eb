"""A private, throwaway PostgreSQL cluster from the machine's own binaries (initdb + pg_ctl).

Used by `energyhub demo` when no ENERGYHUB_DB_URL is set, and by tests that stop or restart a
database. As root, initdb refuses to run, so the cluster belongs to the `postgres` user and every
server command runs through `runuser -u postgres`. We do not use the `pgserver` wheel as root: it
runs `useradd` and opens permissions on parent folders of its data directory.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from energyhub.errors import EmbeddedServiceError

SERVER_USER = "postgres"


def find_bindir() -> Path:
    """The newest PostgreSQL bin folder with initdb and pg_ctl."""
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in reversed(candidates):
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise EmbeddedServiceError(
        "no PostgreSQL server binaries (initdb, pg_ctl) found: install the distribution's "
        "postgresql package (apt-get install postgresql) or set ENERGYHUB_DB_URL"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """One cluster in its own folder; start, stop and start again keep the data."""

    def __init__(self, data_dir: Path | None = None, port: int | None = None) -> None:
        self.bindir = find_bindir()
        self.root = Path(data_dir or tempfile.mkdtemp(prefix="energyhub-pg-"))
        self.port = port or free_port()
        self._as_root = os.geteuid() == 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            text = output.decode(errors="replace").strip().splitlines()
            raise EmbeddedServiceError(
                f"{args[0]} failed (exit {process.returncode}): {' / '.join(text[-3:])}"
            )

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise EmbeddedServiceError(
                    f"running as root needs the {SERVER_USER!r} user to own the cluster "
                    "(it comes with the postgresql package)"
                ) from None
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.root.chmod(0o700)

    async def start(self) -> None:
        """Create the cluster on first start, then start the server and wait until it accepts."""
        if not self.data_dir.exists():
            self._prepare_root()
            await self._run(
                "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
                "-E", "UTF8", "--no-sync", "--no-instructions",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.root / "server.log"
        await self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(log), "-w",
                        "-t", "60", "start")  # fmt: skip

    async def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` disconnects clients; `immediate` is a crash)."""
        await self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@asynccontextmanager
async def embedded_postgres(data_dir: Path | None = None) -> AsyncIterator[EmbeddedPostgres]:
    """A started private cluster, stopped and (if we made its folder) removed on every path."""
    server = EmbeddedPostgres(data_dir)
    try:
        await server.start()
    except BaseException:
        if data_dir is None:
            server.remove()
        raise
    try:
        yield server
    finally:
        try:
            await server.stop()
        finally:
            if data_dir is None:
                server.remove()
