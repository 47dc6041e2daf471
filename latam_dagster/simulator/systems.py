"""Names of the source systems that emit events, and which kind of system sends what.

Four families of systems feed the platform: reservations (bookings and cancellations), airport
departure control (check-in, boarding, the boarding status), operations control (schedule,
departures, arrivals) and ADS-B feeds (positions). `systems=N` takes the first N names in a fixed
round-robin over the families, so a small N still covers every family and a large one adds
airports and feeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

RES_NAMES = ("res_core", "res_web", "res_ndc", "res_gds_sabre", "res_gds_amadeus", "res_app")
OPS_NAMES = ("ops_control", "ops_acars", "ops_sched", "ops_mvt")
DCS_AIRPORTS = ("SCL", "LIM", "GRU", "BOG", "GIG", "EZE", "UIO", "MDE", "CUZ", "BSB", "GYE", "AEP")


def _family(names: tuple[str, ...], extra: str) -> Iterator[str]:
    yield from names
    for k in count(1):
        yield f"{extra}_{k}"


@dataclass(frozen=True, slots=True)
class SourceSystems:
    """The N systems of one run, grouped by family (a family may borrow from all if empty)."""

    names: tuple[str, ...]
    res: tuple[str, ...]
    dcs: tuple[str, ...]
    ops: tuple[str, ...]
    adsb: tuple[str, ...]

    def dcs_for(self, airport: str, salt: int) -> str:
        """An airport's own departure control system, else a shared one picked per flight."""
        own = f"dcs_{airport.lower()}"
        if own in self.dcs:
            return own
        return self.dcs[salt % len(self.dcs)]


def source_systems(n: int) -> SourceSystems:
    """The first `n` source system names (n >= 1), deterministic and seed-independent."""
    if n < 1:
        raise ValueError("systems must be >= 1")
    families = {
        "res": _family(RES_NAMES, "res_partner"),
        "dcs": _family(tuple(f"dcs_{a.lower()}" for a in DCS_AIRPORTS), "dcs_aux"),
        "ops": _family(OPS_NAMES, "ops_unit"),
        "adsb": _family((), "adsb_feed"),
    }
    grouped: dict[str, list[str]] = {k: [] for k in families}
    names: list[str] = []
    while len(names) < n:
        for fam, it in families.items():
            if len(names) == n:
                break
            name = next(it)
            grouped[fam].append(name)
            names.append(name)
    everything = tuple(names)
    return SourceSystems(
        everything,
        *(tuple(grouped[f]) or everything for f in ("res", "dcs", "ops", "adsb")),
    )
