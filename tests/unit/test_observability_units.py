"""Pure parts of the observability package: the queue-head age arithmetic, label bounds,
settings parsing, and metric families."""

from __future__ import annotations

import pytest

from latam_dagster.observability.broker import HeadAgeEstimator, ManagementClient
from latam_dagster.observability.config import (
    get_exporter_config,
    management_url_from_amqp,
    vhost_of,
)
from latam_dagster.observability.families import OTHER, Families, LabelGuard


def test_head_age_interpolates_between_samples():
    est = HeadAgeEstimator()
    assert est.observe(100.0, 0, 0) == 0.0
    # 100 messages arrived between t=100 and t=110; none consumed
    assert est.observe(110.0, 100, 100) == pytest.approx(10.0, abs=0.11)
    # 50 consumed: the head is message 51, which arrived around t=105
    assert est.observe(120.0, 100, 50) == pytest.approx(15.0, abs=0.11)
    # everything consumed
    assert est.observe(130.0, 100, 0) == 0.0


def test_head_age_keeps_only_plateau_ends():
    est = HeadAgeEstimator()
    est.observe(0.0, 10, 0)
    for t in range(1, 100):
        est.observe(float(t), 10, 0)
    assert len(est.samples) == 2  # the two ends of the plateau
    # 10 messages arrive between t=99 and t=100: the head is dated inside that step, not at t=0
    assert est.observe(100.0, 20, 10) == pytest.approx(1.0, abs=0.11)


def test_head_age_before_history_is_a_lower_bound_and_resets():
    est = HeadAgeEstimator(window_seconds=60)
    est.observe(0.0, 1000, 500)  # the exporter starts with 500 messages waiting
    assert est.observe(30.0, 1000, 500) == 30.0  # at least as old as our history
    est.observe(40.0, 5, 5)  # the counter went backwards: broker restarted
    assert len(est.samples) == 1
    assert est.observe(45.0, 5, 5) == 5.0


def test_head_age_while_the_publish_counter_lags_the_queue_length():
    est = HeadAgeEstimator()
    assert est.observe(0.0, 0, 0) == 0.0
    assert est.observe(1.0, 0, 0) == 0.0
    # 300 messages are in the queue, the broker's publish counter has not caught up yet:
    # no history dates them, so the estimate carries on from the last one (0 at t=1)
    assert est.observe(2.0, 0, 300) == pytest.approx(1.0)
    assert est.observe(4.0, 0, 300) == pytest.approx(3.0)
    # the counter catches up: the head is dated inside the last step where the counter moved
    # (t=4..6), within the documented accuracy of one interval plus the statistics lag
    assert est.observe(6.0, 300, 300) == pytest.approx(2.0, abs=0.1)
    assert est.observe(8.0, 300, 300) == pytest.approx(4.0, abs=0.1)


def test_head_age_ignores_a_lagging_message_count():
    """Messages counted exactly while the counter already moved: dated by the counter."""
    est = HeadAgeEstimator()
    est.observe(10.0, 0, 0)
    assert est.observe(11.0, 294, 294) == pytest.approx(1.0, abs=0.01)
    assert est.observe(13.0, 294, 294) == pytest.approx(3.0, abs=0.01)


def test_head_age_forgets_history_beyond_the_window():
    est = HeadAgeEstimator(window_seconds=100)
    for t in range(0, 1000, 10):
        est.observe(float(t), t, 1)  # one new message every 10 s, one waiting
    assert len(est.samples) <= 12


def test_label_guard_bounds_distinct_values():
    guard = LabelGuard(limit=2)
    assert [guard("a"), guard("b"), guard("c"), guard("a"), guard(None)] == [
        "a", "b", OTHER, "a", OTHER,
    ]  # fmt: skip


def test_families_keep_label_sets_fixed():
    fam = Families()
    fam.gauge("latam_x", "x", 1, queue="q1")
    fam.gauge("latam_x", "x", 2, queue="q2")
    with pytest.raises(ValueError, match="labels"):
        fam.gauge("latam_x", "x", 3, table="t")
    fam.counter("latam_y_total", "y", 5)
    assert [m.name for m in fam.metrics()] == ["latam_x", "latam_y"]


def test_management_url_and_vhost_from_the_amqp_url():
    assert management_url_from_amqp("amqp://u:p@broker:5672/%2F") == "http://u:p@broker:15672"
    assert management_url_from_amqp("amqps://broker/prod") == "https://guest:guest@broker:15672"
    assert vhost_of("amqp://guest:guest@localhost:5672/%2F") == "/"
    assert vhost_of("amqp://guest:guest@localhost:5672/latam-test-1") == "latam-test-1"
    assert vhost_of("amqp://localhost") == "/"


def test_exporter_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("LATAM_EXPORTER_PORT", "9999")
    monkeypatch.setenv("LATAM_RABBITMQ_MANAGEMENT_URL", "off")
    config = get_exporter_config()
    assert config.port == 9999 and config.management_url is None
    assert get_exporter_config(interval_seconds=2.0).interval_seconds == 2.0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "127.0.0.1:15672"])
def test_the_management_client_takes_only_http_urls(url: str) -> None:
    with pytest.raises(ValueError, match="must be http"):
        ManagementClient(url)
