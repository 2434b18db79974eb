"""Prometheus metrics of the API: requests by route template and status, latency, plan jobs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HitMiss = tuple[Counter, Counter]

LATENCY_BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class ApiMetrics:
    """One registry per app (tests create many apps in one process)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "energyhub_api_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.seconds = Histogram(
            "energyhub_api_request_seconds",
            "Seconds to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.plans_running = Gauge(
            "energyhub_api_plans_running", "Plans being solved or waiting to be", registry=r
        )
        self.plans_finished = Counter(
            "energyhub_api_plans_finished", "Plans solved or failed", ["outcome"], registry=r
        )
        self.load_cache_hits, self.load_cache_misses = _hits_and_misses(
            r, "energyhub_api_load_cache", "Load answers reused (hit) or queried (miss)"
        )
        self.access_cache_hits, self.access_cache_misses = _hits_and_misses(
            r,
            "energyhub_api_access_cache",
            "Key and scope checks answered from the process's cache (hit) or the database (miss)",
        )


def _hits_and_misses(registry: CollectorRegistry, name: str, documentation: str) -> HitMiss:
    """A cache's counter by `outcome`, as its `hit` and `miss` children."""
    counter = Counter(name, documentation, ["outcome"], registry=registry)
    return counter.labels("hit"), counter.labels("miss")


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (`/sites/{site_id}/load`)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.seconds.labels(route).observe(time.perf_counter() - started)
