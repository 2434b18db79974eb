"""How ingest workers divide the MQTT stream between them, and which filters each one holds.

`partitioned` (the default): worker i of N holds plain subscriptions to the sites (`{prefix}/{park}/
{site}/#`, which also matches the site's gateway topic) and mapped devices whose filter hashes to
i. A plain subscription of a persistent session is restored by Mosquitto 2.0 after a restart, so
messages published before the workers reconnect wait in their sessions: nothing is lost. Topics of
sites that are not in the site file reach no worker (a lone worker still sees and rejects them).

`shared`: every worker holds the MQTT v5 shared subscription `$share/{group}/{prefix}/#` (and the
devices'), so the broker balances messages, not sites — but Mosquitto 2.0 (2.0.11 seen here) does
not restore shared subscriptions from its persistence, so what is published between a broker
restart and the workers' resubscribing is delivered to no one. For brokers that keep them.

A lone worker (N = 1) subscribes plainly to `{prefix}/#`, whatever the mode. Each worker also
drops the filters that other modes or group sizes would have left in its persistent session, so
a change of mode or of N never delivers a message twice to the same worker.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

SubscriptionMode = Literal["partitioned", "shared"]


@dataclass(frozen=True, slots=True)
class Membership:
    """Worker `index` of a group of `workers`, splitting the stream by `mode`."""

    index: int = 0
    workers: int = 1
    mode: SubscriptionMode = "partitioned"

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.workers:
            raise ValueError(
                f"worker index {self.index} is outside a group of {self.workers} workers "
                f"(0 … {self.workers - 1})"
            )


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """The filters a worker subscribes to, and those it removes from its session."""

    hold: list[str]
    drop: list[str]


def owner(topic_filter: str, workers: int) -> int:
    """The worker that holds a plain filter: stable across restarts and site reloads."""
    return zlib.crc32(topic_filter.encode()) % workers


def subscriptions(
    membership: Membership,
    prefix: str,
    share_group: str,
    sites: Iterable[tuple[str, str]],
    device_topics: Iterable[str],
) -> Subscriptions:
    """The filters of one worker, for sites as (park, site) pairs and the mapped device topics."""
    site_filters = sorted({f"{prefix}/{park}/{site}/#" for park, site in sites})
    devices = sorted(set(device_topics))
    everything = f"{prefix}/#"
    shared = [f"$share/{share_group}/{topic}" for topic in (everything, *devices)]
    if membership.workers == 1:
        hold = [everything, *devices]
    elif membership.mode == "shared":
        hold = shared
    else:
        hold = [
            topic
            for topic in (*site_filters, *devices)
            if owner(topic, membership.workers) == membership.index
        ]
    held = set(hold)
    candidates = (everything, *shared, *site_filters, *devices)
    return Subscriptions(hold, [topic for topic in candidates if topic not in held])
