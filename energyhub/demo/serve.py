"""The API in the demo's own process, until the demo is told to stop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http import HTTPStatus

import httpx
import uvicorn

from energyhub.api.app import create_app
from energyhub.config import Settings
from energyhub.errors import EmbeddedServiceError
from energyhub.store.embedded import free_port

START_TIMEOUT_S = 30.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the demo stops it (and everything else) itself."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def available_port(host: str, wanted: int) -> int:
    """`wanted` if it is free on `host`, else any free port."""
    with socket.socket() as probe:
        try:
            probe.bind((host, wanted))
        except OSError:
            return free_port()
    return wanted


async def has_ui(url: str) -> bool:
    """Whether the API answers /ui (the plan review page) with anything but 404."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        return (await client.get(f"{url}/ui")).status_code != HTTPStatus.NOT_FOUND


@asynccontextmanager
async def serving(settings: Settings, host: str, port: int) -> AsyncIterator[tuple[str, bool]]:
    """The API on host:port; yields its base URL and whether it serves /ui; stopped on exit."""
    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        while not server.started:
            if task.done() or asyncio.get_running_loop().time() > deadline:
                raise EmbeddedServiceError(f"the API did not start on {host}:{port}")
            await asyncio.sleep(0.05)
        url = f"http://{host}:{port}"
        yield url, await has_ui(url)
    finally:
        server.should_exit = True
        await task
