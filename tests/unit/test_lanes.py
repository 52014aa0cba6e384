"""How `bo project` splits the running versions into lanes projected side by side."""

from __future__ import annotations

from projections.registry import DECLARED
from projections.runner import plan_lanes


def names(lanes: list[list[object]]) -> list[list[str]]:
    return [[f"{p.name}:v{p.version}" for p in lane] for lane in lanes]  # type: ignore[attr-defined]


def test_the_pairs_go_alone_and_the_newest_wins_tables_share_the_other_lane() -> None:
    v1 = [cls() for cls in DECLARED if cls.version == 1]
    assert names(plan_lanes(v1, 2)) == [["payment_ledger_pairs:v1"], ["ledger_entries:v1", "payment_orders:v1"]]


def test_one_lane_keeps_every_version_and_more_lanes_than_names_leave_none_empty() -> None:
    v1 = [cls() for cls in DECLARED if cls.version == 1]
    assert sorted(names(plan_lanes(v1, 1))[0]) == sorted(f"{p.name}:v{p.version}" for p in v1)
    assert all(names(plan_lanes(v1, 8))) and len(plan_lanes(v1, 8)) == 3


def test_a_names_versions_stay_in_one_lane() -> None:
    running = [cls() for cls in DECLARED]
    assert len({cls.name for cls in DECLARED}) < len(running)  # some name has two versions
    first, second = ({p.name for p in lane} for lane in plan_lanes(running, 2))
    assert first and second and not first & second
