"""Drains collect garbage less often while they run, and leave the collector as they found it,
however many drains of the process overlap (they run in threads)."""

from __future__ import annotations

import gc

from latam_dagster.ingest.drain import _GC_YOUNG_THRESHOLD, _fewer_collections


def test_collector_settings_come_back_after_overlapping_drains() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with _fewer_collections():
        assert gc.get_threshold()[0] == max(_GC_YOUNG_THRESHOLD, before[0])
        assert gc.get_freeze_count() > 0  # what existed before is not looked at again
        with _fewer_collections():  # a second drain starts, and ends first
            pass
        assert gc.get_threshold()[0] == max(_GC_YOUNG_THRESHOLD, before[0])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_collector_settings_come_back_when_a_drain_fails() -> None:
    before = gc.get_threshold()
    try:
        with _fewer_collections():
            raise RuntimeError("the broker went away")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
