"""The Great Expectations engine: validates suites against the warehouse in SQL.

One ephemeral GX context per process and configuration, created on first use: suites live in code
(registered in memory), validation results are kept as JSON under LATAM_QUALITY_DIR, and the Data
Docs site is written to LATAM_QUALITY_DOCS_DIR. Everything is computed by Postgres; Python only
ever holds counts and a bounded sample of failing rows, whatever the size of the table.

A validation runs in two passes. The first asks GX for counts only (a sample size of 0 turns every
"fetch some failing rows" query into `LIMIT 0`, which Postgres answers without scanning), so a
clean table costs little more than the aggregate queries themselves. Only the expectations that
failed are evaluated again, this time with a sample of their failing rows.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from latam_dagster.quality.failing_rows import Relation, failing_rows_sql
from latam_dagster.quality.outcome import (
    OBSERVED_KEYS,
    ExpectationOutcome,
    RuleOutcome,
    SuiteOutcome,
    jsonable,
)
from latam_dagster.settings import normalize_pg_url
from latam_dagster.tables.rules import Expect, Scope, TableSuite

DATASOURCE = "warehouse"
SITE = "latam_quality"
QUERY_EXPECTATION = "UnexpectedRowsExpectation"
_JOIN = re.compile(r"\bJOIN\b", re.IGNORECASE)


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine validates and where it writes; one engine per distinct configuration."""

    warehouse_url: str
    quality_dir: str
    data_docs_dir: str
    sample_size: int = 20
    build_data_docs: bool = True
    docs_retention: int = 50


_engines: dict[EngineConfig, GxEngine] = {}
_engines_lock = threading.Lock()


def get_engine(config: EngineConfig) -> GxEngine:
    """The process's engine for `config`, created (and GX imported) on first use."""
    with _engines_lock:
        engine = _engines.get(config)
        if engine is None:
            engine = _engines[config] = GxEngine(config)
        return engine


class GxEngine:
    """A GX context bound to one warehouse, with a results store and a Data Docs site on disk."""

    def __init__(self, config: EngineConfig) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        import great_expectations.expectations as gx_expectations

        from latam_dagster.quality.gx_expectations import CUSTOM_EXPECTATIONS, register_pg_types

        register_pg_types()
        self.config = config
        self._gx = gx
        self._classes = {**vars(gx_expectations), **CUSTOM_EXPECTATIONS}
        self._lock = threading.RLock()
        Path(config.quality_dir).mkdir(parents=True, exist_ok=True)
        Path(config.data_docs_dir).mkdir(parents=True, exist_ok=True)
        self.context = gx.get_context(mode="ephemeral", project_config=self._project_config())
        self.datasource = self.context.data_sources.add_postgres(
            DATASOURCE, connection_string=normalize_pg_url(config.warehouse_url)
        )
        self._suite_pages_built: set[str] = set()
        for suite in _all_suites():
            self._register_docs_suite(suite)

    def _project_config(self):
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        defaults = InMemoryStoreBackendDefaults()
        stores = dict(defaults.stores)
        stores[defaults.validation_results_store_name] = {
            "class_name": "ValidationResultsStore",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(self.config.quality_dir) / "gx_validations"),
            },
        }
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(self.config.data_docs_dir)),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        return DataContextConfig(
            store_backend_defaults=defaults,
            stores=stores,
            data_docs_sites={SITE: site},
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )

    # -- assets and expectations ---------------------------------------------------------------

    def _relation(self, suite: TableSuite, scope: Scope) -> tuple[str, str | None]:
        """(asset name, query) for the rows to validate; query None means the whole table."""
        if suite.query:
            return suite.name, suite.query.strip()
        if scope.is_whole_table or not suite.date_column:
            return suite.name, None
        predicate = scope.predicate(suite.date_column)
        return f"{suite.name}@{scope.label}", f"SELECT * FROM {suite.table} WHERE {predicate}"

    @contextmanager
    def _batch(self, suite: TableSuite, scope: Scope) -> Iterator[Any]:
        """The batch definition of the rows to validate.

        Table assets are kept for the life of the process; the query asset of a date range is
        dropped afterwards, so a long-lived process does not accumulate one per range.
        """
        name, query = self._relation(suite, scope)
        yield self._batch_definition(name, query, suite)
        if query is not None and not suite.query:
            self.datasource.delete_asset(name)

    def _batch_definition(self, name: str, query: str | None, suite: TableSuite):
        try:
            asset = self.datasource.get_asset(name)
        except LookupError:
            if query is None:
                schema, _, table = suite.table.rpartition(".")
                asset = self.datasource.add_table_asset(
                    name, table_name=table, schema_name=schema or None
                )
            else:
                asset = self.datasource.add_query_asset(name, query=query)
        try:
            return asset.get_batch_definition("all")
        except KeyError:
            return asset.add_batch_definition_whole_table("all")

    def _rows_relation(self, suite: TableSuite, scope: Scope) -> Relation:
        """The validated rows, for the SQL that lists failing ones."""
        if suite.query:
            return Relation(f"({suite.query.strip()}) AS q")
        if scope.is_whole_table or not suite.date_column:
            return Relation(suite.table)
        return Relation(suite.table, scope.predicate(suite.date_column))

    def _batch_sql(self, suite: TableSuite, scope: Scope, expectation_query: str) -> str:
        """The relation `{batch}` stands for in a query expectation, as GX substitutes it.

        GX aliases the batch itself unless the query joins, in which case the query names it.
        """
        _name, query = self._relation(suite, scope)
        relation = f"(SELECT * FROM {suite.table})" if query is None else f"({query})"
        return relation if _JOIN.search(expectation_query) else f"{relation} AS subselect"

    def _expectation(self, expect: Expect, suite: TableSuite, scope: Scope, meta: dict):
        cls = self._classes.get(expect.kind)
        if cls is None:
            raise ValueError(f"{suite.name}: unknown expectation {expect.kind}")
        return cls(**expect.rendered(scope.predicate(suite.date_column)), meta=meta)

    def _register_docs_suite(self, suite: TableSuite) -> None:
        """Make the suite known to Data Docs (its page renders it for the whole table)."""
        expectations = [
            self._expectation(e, suite, Scope(), {"rule": r.name})
            for r in suite.rules
            for e in r.expectations
        ]
        self.context.suites.add_or_update(
            self._gx.ExpectationSuite(name=suite.name, expectations=expectations)
        )

    # -- validation -----------------------------------------------------------------------------

    def validate(
        self,
        suite: TableSuite,
        scope: Scope | None = None,
        rule_names: Iterable[str] | None = None,
        run_id: str | None = None,
    ) -> SuiteOutcome:
        """Validate the selected rules of `suite` over `scope`; store the result, build Data Docs."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.validator.v1_validator import Validator

        scope = scope or Scope()
        wanted = set(rule_names) if rule_names is not None else None
        rules = [r for r in suite.rules if wanted is None or r.name in wanted]
        planned: list[tuple[str, Expect]] = [(r.name, e) for r in rules for e in r.expectations]
        started = time.perf_counter()
        evaluated_at = datetime.now(UTC)
        with self._lock, self._batch(suite, scope) as batch_definition:
            suite_gx = self._gx.ExpectationSuite(
                name=suite.name,
                expectations=[
                    self._expectation(e, suite, scope, {"rule": rule, "index": i})
                    for i, (rule, e) in enumerate(planned)
                ],
            )
            validator = Validator(
                batch_definition=batch_definition, result_format=self._result_format(suite, 0)
            )
            result = validator.validate_expectation_suite(suite_gx)
            # GX returns results in its own order; the meta index ties each to its expectation
            by_index = {_index_of(r): r for r in result.results}
            failed = sorted(i for i, r in by_index.items() if not r.success)
            if failed and self.config.sample_size > 0:
                self._add_samples(suite, scope, batch_definition, planned, by_index, failed)
            run = RunIdentifier(run_name=run_id or "manual", run_time=evaluated_at)
            result.meta.update(
                {
                    "run_id": run,
                    "validation_time": evaluated_at,
                    "latam": {"asset_key": suite.asset_key_str, "partition": scope.label},
                }
            )
            docs_page = self._store(suite, result, run, validator.active_batch_id)
        outcome = SuiteOutcome(
            suite=suite,
            scope=scope,
            rules=[],
            run_id=run_id,
            evaluated_at=evaluated_at,
            seconds=time.perf_counter() - started,
            data_docs_page=docs_page,
            sample_size=self.config.sample_size,
        )
        by_rule: dict[str, list[ExpectationOutcome]] = {r.name: [] for r in rules}
        for i, (rule, expect) in enumerate(planned):
            by_rule[rule].append(self._outcome(rule, expect, by_index[i], suite, scope))
        outcome.rules = [RuleOutcome(r, by_rule[r.name]) for r in rules]
        return outcome

    def _result_format(self, suite: TableSuite, sample: int, complete: bool = False) -> dict:
        return {
            "result_format": "COMPLETE" if complete else "SUMMARY",
            "partial_unexpected_count": sample,
            "unexpected_index_column_names": list(suite.key_columns),
            # GX's own failing-row SQL is unreliable on Postgres; see quality.failing_rows
            "return_unexpected_index_query": False,
            "include_unexpected_rows": False,
        }

    def _add_samples(self, suite, scope, batch_definition, planned, by_index, failed) -> None:
        """Evaluate the failed expectations again, now fetching a sample of their failing rows.

        Counts stay those of the first pass; only the sample fields are taken from the second.
        Query expectations return their rows only in the COMPLETE format; their queries read the
        suite's own rows (bounded by the table or partition), never a whole history.
        """
        from great_expectations.validator.v1_validator import Validator

        for complete in (False, True):
            chosen = [i for i in failed if (planned[i][1].kind == QUERY_EXPECTATION) == complete]
            if not chosen:
                continue
            sub_suite = self._gx.ExpectationSuite(
                name=f"{suite.name}.samples",
                expectations=[
                    self._expectation(planned[i][1], suite, scope, {"index": i}) for i in chosen
                ],
            )
            sampler = Validator(
                batch_definition=batch_definition,
                result_format=self._result_format(suite, self.config.sample_size, complete),
            )
            sampled = sampler.validate_expectation_suite(sub_suite)
            for res in sampled.results:
                target = by_index[_index_of(res)].result
                extra = res.result or {}
                for key in (
                    "partial_unexpected_list",
                    "partial_unexpected_index_list",
                    "partial_unexpected_counts",
                ):
                    if key in extra:
                        target[key] = extra[key]
                rows = (extra.get("details") or {}).get("unexpected_rows")
                if rows is not None:
                    target["details"] = {"unexpected_rows": rows[: self.config.sample_size]}

    def _outcome(self, rule, expect, res, suite, scope) -> ExpectationOutcome:
        data = res.result or {}
        observed = {k: jsonable(data[k]) for k in OBSERVED_KEYS if k in data}
        if isinstance(observed.get("unexpected_percent"), float):
            observed["unexpected_percent"] = round(observed["unexpected_percent"], 6)
        sample = self._sample(expect, data)
        dates = scope.predicate(suite.date_column)
        if expect.kind == QUERY_EXPECTATION:
            text = expect.rendered(dates)["unexpected_rows_query"]
            query = text.replace("{batch}", self._batch_sql(suite, scope, text)).strip()
        else:
            query = failing_rows_sql(
                expect, self._rows_relation(suite, scope), suite.key_columns, dates
            )
        return ExpectationOutcome(
            rule=rule,
            label=expect.label()
            if expect.kind != QUERY_EXPECTATION
            else f"{expect.kind}({expect.kwargs.get('description', 'query')})",
            kind=expect.kind,
            kwargs={
                k: jsonable(v) for k, v in expect.kwargs.items() if k != "unexpected_rows_query"
            },
            success=bool(res.success),
            observed=observed,
            sample=sample,
            unexpected_index_query=query,
            error=_exception_message(res.exception_info),
        )

    def _sample(self, expect: Expect, data: dict) -> list[dict[str, Any]]:
        limit = self.config.sample_size
        rows = (data.get("details") or {}).get("unexpected_rows")
        if rows:
            return [jsonable(dict(r)) for r in rows[:limit]]
        indexed = data.get("partial_unexpected_index_list")
        if indexed and isinstance(indexed[0], dict):
            return [jsonable(r) for r in indexed[:limit]]
        values = data.get("partial_unexpected_list") or []
        name = ",".join(expect.columns) or "value"
        return [{name: jsonable(v)} for v in values[:limit]]

    # -- results store and Data Docs ------------------------------------------------------------

    @contextmanager
    def _docs_lock(self) -> Iterator[None]:
        """Serialise store pruning and Data Docs builds across the processes sharing the folder."""
        path = Path(self.config.quality_dir) / "data_docs.lock"
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _store(self, suite: TableSuite, result, run, batch_id: str | None) -> str | None:
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        suite_id = ExpectationSuiteIdentifier(name=suite.name)
        result_id = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=run, batch_identifier=batch_id
        )
        store = self.context.validation_results_store
        with self._docs_lock():
            store.store_validation_results(result, result_id, suite_id)
            if not self.config.build_data_docs:
                return None
            self._prune(suite.name, store)
            # the suite's page changes only with the code: render it once per process
            pages = [result_id]
            if suite.name not in self._suite_pages_built:
                pages.append(suite_id)
                self._suite_pages_built.add(suite.name)
            self.context.build_data_docs(site_names=[SITE], resource_identifiers=pages)
            return self._page_of(result_id)

    def _prune(self, suite_name: str, store) -> None:
        """Keep the newest `docs_retention` results of the suite, with their pages."""
        keys = [k for k in store.list_keys() if k.expectation_suite_identifier.name == suite_name]
        if len(keys) <= self.config.docs_retention:
            return
        keys.sort(key=lambda k: (str(k.run_id.run_time), k.run_id.run_name or ""))
        for key in keys[: len(keys) - self.config.docs_retention]:
            page = self._page_of(key)
            if page:
                (Path(self.config.data_docs_dir) / page).unlink(missing_ok=True)
            store.remove_key(key)

    def build_index(self) -> str:
        """Rebuild the Data Docs index page (and every suite page); returns the index path."""
        with self._docs_lock():
            self.context.build_data_docs(site_names=[SITE])
        return str(Path(self.config.data_docs_dir) / "index.html")

    def _page_of(self, resource_id) -> str | None:
        """Path of a resource's page relative to the Data Docs folder."""
        urls = self.context.get_docs_sites_urls(
            resource_identifier=resource_id, site_name=SITE, only_if_exists=False
        )
        url = urls[0].get("site_url") if urls else None
        if not url:
            return None
        path = Path(unquote(urlsplit(url).path))
        try:
            return str(path.relative_to(Path(self.config.data_docs_dir).resolve()))
        except ValueError:
            return str(path)


def _all_suites() -> list[TableSuite]:
    from latam_dagster.tables import REGISTRY

    return REGISTRY.suites()


def _index_of(result) -> int:
    return int(result.expectation_config.meta["index"])


def _exception_message(info: Any) -> str | None:
    """The first raised exception's message in GX's `exception_info`, whatever its nesting."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "GX raised an exception")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "GX raised an exception")
    return None
