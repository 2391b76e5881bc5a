"""Schemathesis over the whole published OpenAPI spec, on SQLite and PostgreSQL, each busy with
background writers (a running job's heartbeat and progress, ingest batches) the whole time.

Valid and invalid requests generated from the spec (a fixed seed, a bounded number per
operation) must never get a 5xx, only statuses the operation declares, and bodies that match
the declared schema. A task with texts, a model-less job id and so on are not seeded: the point
is what a client can send, and most of it is wrong. Every request carries a valid admin key, in
both headers, so that what is fuzzed is the operation behind the key check (tests/api/test_auth.py
covers the check itself).
"""

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.tasks import create_task
from tests.api_keys import make_key
from tests.conftest import fresh_postgres_database
from tests.store_writers import busy_writers

EXAMPLES_PER_OPERATION = 60


@pytest.fixture(params=["sqlite", "postgresql"])
def api_schema(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:
    """The API on a store of its own: rows other tests leave (a webhook registered under another
    home's key, say) would answer differently than a fresh deployment."""
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'fuzz.db'}" if request.param == "sqlite" else stack.enter_context(fresh_postgres_database())
        engine = make_engine(url)
        stack.callback(engine.dispose)
        schema.upgrade(engine)
        # A task that generated names hit now and then ("a" is among the first strings tried), so
        # that the routes behind a found task are reached too.
        with session_scope(engine) as session:
            create_task(session, "a", ["x", "y"])
        settings_ = Settings(home=tmp_path, database_url=url, ingest_max_records_per_request=20, ingest_max_request_bytes=50_000)
        key = make_key(engine)
        # the store is busy meanwhile, as a deployment's is: a job's heartbeat and progress, ingest
        # batches (on SQLite, every request's write unit competes with them for the write lock)
        stack.enter_context(busy_writers(engine))
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_)), {"Authorization": f"Bearer {key}", "X-API-Key": key}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_5xx_and_every_answer_matches_the_spec(api_schema: tuple[schemathesis.BaseSchema, dict[str, str]], mode: GenerationMode) -> None:
    spec, key_headers = api_schema
    operations = [result.ok() for result in spec.get_all_operations()]
    assert len(operations) >= 9, "every route is in the spec"
    exercised = []
    refused: list[str] = []  # the admin key refused: the fuzzing would stop at the key check
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,  # a fixed seed: the same requests on every run
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                headers=key_headers, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
            )
            if response.status_code in (401, 403) and "webhook" not in case.path:
                refused.append(f"{case.method} {case.formatted_path}: {response.text}")

        try:
            check()
        except Unsatisfiable:
            # Nothing in this request can be made invalid (no parameters, or only free strings).
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        exercised.append(operation.label)
    assert refused == []
    if mode is GenerationMode.NEGATIVE:
        assert {"GET /v1/jobs/{job_id}", "POST /v1/tasks", "POST /v1/tasks/{task}/texts"} <= set(exercised)
