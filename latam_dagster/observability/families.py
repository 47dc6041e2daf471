"""A small builder of Prometheus metric families, and a guard on label cardinality.

Collectors fill a `Families` with samples; the exporter serves what the latest collection built.
Every family has a fixed label set, so a series never changes shape between collections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

OTHER = "other"


class Families:
    """Metric families of one collection, keyed by name."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[Metric, tuple[str, ...]]] = {}

    def _family(self, kind: type, name: str, doc: str, labels: Iterable[str]) -> Metric:
        names = tuple(labels)
        found = self._families.get(name)
        if found is None:
            metric = kind(name, doc, labels=names)
            self._families[name] = (metric, names)
            return metric
        metric, known = found
        if known != names:
            raise ValueError(f"{name}: labels {names} differ from {known}")
        return metric

    def gauge(self, name: str, doc: str, value: float, **labels: str) -> None:
        """Add one gauge sample."""
        self._family(GaugeMetricFamily, name, doc, labels).add_metric(
            list(labels.values()), float(value)
        )

    def counter(self, name: str, doc: str, value: float, **labels: str) -> None:
        """Add one counter sample (`name` ends with `_total`)."""
        self._family(CounterMetricFamily, name, doc, labels).add_metric(
            list(labels.values()), float(value)
        )

    def declare_gauge(self, name: str, doc: str, *labels: str) -> None:
        """Make the family exist (with HELP and TYPE) even when it has no sample yet."""
        self._family(GaugeMetricFamily, name, doc, labels)

    def metrics(self) -> list[Metric]:
        return [metric for metric, _ in self._families.values()]

    def extend(self, other: Families) -> None:
        for name, entry in other._families.items():
            if name in self._families:
                raise ValueError(f"{name} is built by two collectors")
            self._families[name] = entry


def per_key(
    add: Callable[..., None],
    name: str,
    doc: str,
    values: Mapping[tuple[str, ...], float],
    *labels: str,
) -> None:
    """One sample per entry of `values`, added with `add` (a `Families.counter` or `.gauge`) in
    key order; a key holds the values of `labels`, in their order."""
    for key, value in sorted(values.items()):
        add(name, doc, value, **dict(zip(labels, key, strict=True)))


class LabelGuard:
    """Bounds the distinct values of one label (e.g. source_system): later newcomers map to
    `other`, so a misbehaving source cannot create unbounded series. Values seen once keep their
    own label for the life of the process, so counters stay continuous."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._known: set[str] = set()

    def __call__(self, value: str | None) -> str:
        value = value or "unknown"
        if value in self._known:
            return value
        if len(self._known) < self.limit:
            self._known.add(value)
            return value
        return OTHER
