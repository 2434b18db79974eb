"""Ingest metrics in Prometheus format, and the periodic summary line of the log."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from energyhub.errors import ConfigError

log = logging.getLogger(__name__)


def serve_metrics(registry: CollectorRegistry, port: int, host: str, named: str) -> None:
    """Serve the registry's /metrics on host:port; a host no resolver knows or a port taken is a
    ConfigError naming the settings or options in `named` (it was a socket traceback)."""
    try:
        start_http_server(port, addr=host, registry=registry)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"{named}: cannot serve metrics on {host!r} port {port}: {reason}"
        ) from None


@dataclass
class IngestMetrics:
    """One registry per worker process, served on its own port."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.received = Counter(
            "energyhub_ingest_messages_received", "MQTT messages received", registry=r
        )
        self.written = Counter(
            "energyhub_ingest_readings_written", "Readings stored (new rows)", registry=r
        )
        self.duplicates = Counter(
            "energyhub_ingest_readings_duplicate",
            "Readings already stored (idempotent)",
            registry=r,
        )
        self.rejected = Counter(
            "energyhub_ingest_rejected", "Rejected messages or readings", ["reason"], registry=r
        )
        self.batch_readings = Histogram(
            "energyhub_ingest_batch_readings",
            "Readings per write",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "energyhub_ingest_batch_seconds", "Seconds to commit one batch", registry=r
        )
        self.pending = Gauge(
            "energyhub_ingest_pending_messages",
            "Messages received, not yet acknowledged (committed)",
            registry=r,
        )
        self.lag_seconds = Gauge(
            "energyhub_ingest_lag_seconds",
            "Now minus the newest reading's timestamp, at its commit",
            registry=r,
        )
        self.db_retries = Counter(
            "energyhub_ingest_db_retries", "Writes retried while the database was down", registry=r
        )
        self.commands_sent = Counter(
            "energyhub_ingest_sparkplug_rebirths",
            "Sparkplug rebirth requests (NCMD) sent to edge nodes",
            registry=r,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose /metrics on the port (0: not at all)."""
        if port:
            serve_metrics(
                self.registry,
                port,
                host,
                "ENERGYHUB_INGEST_METRICS_HOST/ENERGYHUB_INGEST_METRICS_PORT",
            )

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def summary(self) -> str:
        rejected = sum(
            sample.value
            for metric in self.rejected.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        return (
            f"received {self.value('energyhub_ingest_messages_received_total'):.0f} messages, "
            f"stored {self.value('energyhub_ingest_readings_written_total'):.0f} readings "
            f"({self.value('energyhub_ingest_readings_duplicate_total'):.0f} duplicates), "
            f"rejected {rejected:.0f}, "
            f"pending {self.value('energyhub_ingest_pending_messages'):.0f}, "
            f"lag {self.value('energyhub_ingest_lag_seconds'):.1f} s"
        )
