"""`energyhub ingest --workers N`: N worker processes splitting the stream, kept running."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from energyhub.config import Settings
from energyhub.ingest.metrics import IngestMetrics
from energyhub.ingest.worker import IngestWorker
from energyhub.waiting import set_within

log = logging.getLogger(__name__)

RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def run_worker(settings: Settings, index: int, workers: int) -> None:
    """Worker `index` of a group of `workers`, in this process, until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    metrics = IngestMetrics()
    if settings.ingest_metrics_port:
        metrics.serve(settings.ingest_metrics_port + index, settings.ingest_metrics_host)
    await IngestWorker(settings, index, metrics, workers).run(stop)


async def _keep_running(index: int, workers: int, stop: asyncio.Event) -> None:
    """Start worker `index` as a child process and restart it (with backoff) until stopped."""
    delay = RESTART_FIRST_S
    while not stop.is_set():
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "energyhub", "ingest", "--workers", str(workers), "--worker-index", str(index)),
        )
        stopping = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(child.wait())
        await asyncio.wait([stopping, exited], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            if child.returncode is None:
                child.terminate()
                await child.wait()
            exited.cancel()
            return
        stopping.cancel()
        log.warning(
            "ingest worker %s exited with %s; restarting in %.0f s", index, child.returncode, delay
        )
        await set_within(stop, delay)  # a stop during the backoff ends it at once
        delay = min(delay * 2, RESTART_MAX_S)


async def run_workers(workers: int) -> None:
    """N workers as child processes, each its own persistent MQTT session."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    await asyncio.gather(*(_keep_running(i, workers, stop) for i in range(workers)))
