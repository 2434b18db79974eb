"""Which filters each ingest worker holds and drops, in every mode and group size."""

from __future__ import annotations

import pytest

from energyhub.ingest.partition import Membership, owner, subscriptions

SITES = [("expo", f"b{i:02d}") for i in range(40)] + [("expo", "expo")]
DEVICES = ["tele/plug-1/SENSOR", "shelly-7/status/em:0"]


def group(workers: int, mode: str = "partitioned") -> list[list[str]]:
    return [
        subscriptions(Membership(i, workers, mode), "eh", "grp", SITES, DEVICES).hold  # type: ignore[arg-type]
        for i in range(workers)
    ]


def test_a_lone_worker_holds_everything_plainly_whatever_the_mode() -> None:
    for mode in ("partitioned", "shared"):
        plan = subscriptions(Membership(0, 1, mode), "eh", "grp", SITES, DEVICES)  # type: ignore[arg-type]
        assert plan.hold == ["eh/#", *sorted(DEVICES)]
        assert "$share/grp/eh/#" in plan.drop and "eh/expo/b01/#" in plan.drop


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_partitions_cover_every_site_and_device_once(workers: int) -> None:
    holds = group(workers)
    every = [topic for hold in holds for topic in hold]
    assert sorted(every) == sorted([f"eh/{p}/{s}/#" for p, s in SITES] + DEVICES)
    assert all(holds), "with 43 filters every worker holds some"


def test_a_partitioned_worker_drops_what_other_modes_and_partitions_hold() -> None:
    plan = subscriptions(Membership(1, 2), "eh", "grp", SITES, DEVICES)
    assert {"eh/#", "$share/grp/eh/#", "$share/grp/tele/plug-1/SENSOR"} <= set(plan.drop)
    assert set(plan.drop).isdisjoint(plan.hold)
    assert set(group(2)[0]) <= set(plan.drop)


def test_shared_workers_hold_the_same_shared_filters() -> None:
    holds = group(3, "shared")
    assert holds[0] == holds[1] == holds[2]
    assert holds[0] == ["$share/grp/eh/#", *(f"$share/grp/{d}" for d in sorted(DEVICES))]


def test_owners_are_stable_and_split_sites_about_evenly() -> None:
    assert owner("eh/expo/b07/#", 2) == owner("eh/expo/b07/#", 2)
    sizes = [len(hold) for hold in group(2)]
    assert min(sizes) >= 15, sizes


def test_a_worker_index_outside_the_group_is_refused() -> None:
    with pytest.raises(ValueError, match="worker index 2 is outside a group of 2 workers"):
        Membership(2, 2)
