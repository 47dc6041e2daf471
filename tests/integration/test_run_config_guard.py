"""No run config can change where data is read or written.

The attack: from the UI's Launchpad (or its GraphQL API, the same thing), launch `drain_job` with
`resources.warehouse.config.url` pointed at a database of the attacker's. The drain would copy
every queued event there and acknowledge it on the broker: the data leaves and is gone.

Here a real `dagster-webserver` (full, not read-only: what an operator reaches) serves the code
location on a free loopback port, with a Dagster instance, warehouse and topology of the test's
own; its instance launches runs at once, without a daemon. Through `DagsterGraphQLClient`, every
launch that names another location (warehouse, broker, topology, GX and Data Docs directories,
quality history, IO manager directory) is refused before a run exists. Nothing is drained, the
other database stays empty; the same launch without the override does drain, into the
environment's warehouse, which shows the test would have seen a drain. A full refresh, an
operator's action that moves no data elsewhere, stays available as run config.
"""

from __future__ import annotations

import uuid

import pytest
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from latam_dagster.demo import stop_code_servers
from latam_dagster.ingest.topology import queue_depths
from tests.conftest import RUN_ID, _admin_exec, _db_url, drop_database, query
from tests.integration.ingest_helpers import make_flight_event, publish_events, wait_until
from tests.integration.observability_support import free_port
from tests.integration.ui_support import (
    graphql,
    site,
    start_webserver,
    stop,
    wait_for,
    wait_webserver,
)

pytestmark = pytest.mark.integration

FLIGHTS = 7
RAW_FLIGHTS = ["raw", "flight_events"]


@pytest.fixture(scope="module")
def server(template_db, amqp_url, tmp_path_factory):
    """(site, port) of a full Dagster webserver on loopback."""
    home = tmp_path_factory.mktemp("guard_home")
    with site(template_db, amqp_url, home, run_immediately=True) as s:
        port = free_port()
        log = home / "webserver.log"
        proc = start_webserver(s, port, read_only=False, log=log)
        try:
            wait_webserver(f"http://127.0.0.1:{port}", log)
            yield s, port
        finally:
            stop(proc)
            stop_code_servers(home)


@pytest.fixture
def thief_db(template_db):
    """A migrated warehouse of the attacker's: a drain into it would succeed."""
    name = f"latam_thief_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _db_url(name)
    drop_database(name)


def _client(port: int) -> DagsterGraphQLClient:
    return DagsterGraphQLClient("127.0.0.1", port_number=port)


def _runs(port: int) -> list[dict]:
    data = graphql(
        f"http://127.0.0.1:{port}",
        "{ runsOrError { ... on Runs { results { runId jobName status } } } }",
    )
    return data["runsOrError"]["results"]


def _raw_flights(url: str) -> int:
    return query(url, "SELECT count(*) FROM raw.flight_events")[0][0]


def _refused(port: int, job: str, run_config: dict, **selection) -> DagsterGraphQLClientError:
    with pytest.raises(DagsterGraphQLClientError) as refused:
        _client(port).submit_job_execution(job, run_config=run_config, **selection)
    return refused.value


def test_a_drain_pointed_at_another_warehouse_is_refused_and_drains_nothing(server, thief_db):
    s, port = server
    flights_queue = s.topology.queue("flights")
    published = publish_events(
        s.amqp_url, s.topology, [make_flight_event() for _ in range(FLIGHTS)]
    )
    wait_until(lambda: queue_depths(s.amqp_url, s.topology)[flights_queue] == published)
    runs_before = _runs(port)
    steal = {"resources": {"warehouse": {"config": {"url": thief_db}}}}

    # the whole drain job, and the one asset a "Materialize" click would launch
    for job, selection in (("drain_job", {}), ("drain_job", {"asset_selection": [RAW_FLIGHTS]})):
        error = _refused(port, job, steal, **selection)
        assert error.args[0] == "RunConfigValidationInvalid", error
        messages = " ".join(e["message"] for e in error.args[1])
        assert 'unexpected config entry "url"' in messages and "warehouse" in messages, messages

    # no run was created, nothing left the queue, nothing reached either database
    assert _runs(port) == runs_before
    assert queue_depths(s.amqp_url, s.topology)[flights_queue] == published
    assert _raw_flights(thief_db) == 0
    assert _raw_flights(s.warehouse_url) == 0

    # control: the same launch without the override drains, into the environment's warehouse
    run_id = _client(port).submit_job_execution("drain_job", asset_selection=[RAW_FLIGHTS])
    status = wait_for(
        lambda: (st := _client(port).get_run_status(run_id)) in FINISHED and st,
        240,
        f"run {run_id} finished",
    )
    assert status == DagsterRunStatus.SUCCESS
    assert _raw_flights(s.warehouse_url) == published
    assert queue_depths(s.amqp_url, s.topology)[flights_queue] == 0
    assert _raw_flights(thief_db) == 0


FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

# every resource field that names a location or decides what is kept, with another value
OVERRIDES = {
    "rabbitmq amqp_url": ("rabbitmq", "amqp_url", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    "rabbitmq prefix": ("rabbitmq", "prefix", "someone-elses"),
    "gx warehouse_url": ("gx", "warehouse_url", "postgresql://postgres@127.0.0.1:5432/postgres"),
    "gx quality_dir": ("gx", "quality_dir", "/tmp/latam-elsewhere"),
    "gx data_docs_dir": ("gx", "data_docs_dir", "/tmp/latam-elsewhere/docs"),
    "gx history_days (purges quality history)": ("gx", "history_days", 0.0001),
    "gx docs_retention": ("gx", "docs_retention", 1),
    "io_manager base_dir": ("io_manager", "base_dir", "/tmp/latam-elsewhere"),
}


@pytest.mark.parametrize("override", OVERRIDES.values(), ids=OVERRIDES.keys())
@pytest.mark.parametrize("job", ["drain_job", "pipeline_job", "curated_full_refresh_job"])
def test_no_resource_setting_is_run_config(server, job, override):
    _, port = server
    resource, field, value = override
    runs_before = _runs(port)
    error = _refused(port, job, {"resources": {resource: {"config": {field: value}}}})
    assert error.args[0] == "RunConfigValidationInvalid", error
    messages = " ".join(e["message"] for e in error.args[1])
    assert f'unexpected config entry "{field}"' in messages, messages
    assert _runs(port) == runs_before


VALIDATE = """
query ($selector: PipelineSelector!, $config: RunConfigData) {
  isPipelineConfigValid(pipeline: $selector, mode: "default", runConfigData: $config) {
    __typename
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def test_a_full_refresh_stays_an_operator_choice(server):
    """Op config chooses what a run does (rebuild from raw), not where: it stays run config."""
    _, port = server
    base = f"http://127.0.0.1:{port}"
    repo = graphql(
        base,
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }",
    )["repositoriesOrError"]["nodes"][0]
    selector = {
        "repositoryLocationName": repo["location"]["name"],
        "repositoryName": repo["name"],
        "pipelineName": "drain_job",
    }
    refresh = {"ops": {"curated__fact_flight": {"config": {"full_refresh": True}}}}
    answer = graphql(base, VALIDATE, {"selector": selector, "config": refresh})
    assert answer["isPipelineConfigValid"]["__typename"] == "PipelineConfigValidationValid", answer
    # and the check that refuses a location reads the same way through this query
    steal = {"resources": {"warehouse": {"config": {"url": "postgresql://x@elsewhere/db"}}}}
    answer = graphql(base, VALIDATE, {"selector": selector, "config": steal})
    assert answer["isPipelineConfigValid"]["__typename"] == "RunConfigValidationInvalid", answer
