"""The labeling loop against the real embedded Argilla server: provision → push a round →
annotators answer through the REST calls the UI makes → sync → annotations and labels."""

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from driftloop.labeling.connection import connect
from driftloop.labeling.dataset import configure
from driftloop.labeling.sync import sync, unresolved
from driftloop.platform.labels.outbox import pending_count, requeue, text_id_of
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import AnnotationStatus, Push, PushState, TextRecord
from driftloop.platform.tasks import add_labels, get_task
from tests.conftest import run_cli
from tests.labeling.labeling_loop import LabelingLoop

# The tests whose sync writes most (annotations updated in place, majority labels, agreement,
# re-queues) also run against the production store.
BOTH_STORES = pytest.mark.parametrize("labeling", ["sqlite", "postgresql"], indirect=True)


ANNOTATOR, OTHER = "annotator-1", "annotator-2"


@BOTH_STORES
def test_round_goes_to_argilla_and_answers_come_back_as_labels(labeling: LabelingLoop) -> None:
    picked = labeling.select(12)
    result = labeling.push()
    assert (result.pushed, result.pending, result.error) == (12, 0, None)

    dataset = labeling.connect().datasets(name=labeling.task, workspace=labeling.server.workspace)
    records = list(dataset.records(with_vectors=True, with_suggestions=True))
    assert sorted(text_id_of(r.id) for r in records) == sorted(picked)
    first = records[0]
    assert first.metadata["strategy"] == "hybrid" and "cluster" in first.metadata
    assert len(first.vectors["embedding"]) == labeling.encoder.dim
    with session_scope(labeling.engine) as session:
        assert first.fields["text"] == session.get(TextRecord, text_id_of(first.id)).text

    # re-pushing is harmless: same records, no duplicates
    with session_scope(labeling.engine) as session:
        for push in session.scalars(select(Push).where(Push.task_id == labeling.task_id)):
            push.state = PushState.pending
    assert labeling.push().pushed == 12
    assert len(list(dataset.records)) == 12

    # one record discarded, the rest answered with the truth
    skip = picked[0]
    assert labeling.annotate(ANNOTATOR, lambda t: None if t == skip else labeling.truth[t]) == 12
    synced = labeling.sync()
    assert synced.responses == 12 and synced.labels_changed == 11 and synced.skipped == 1
    annotations = labeling.annotations()
    assert annotations[(skip, ANNOTATOR)] == (None, AnnotationStatus.discarded)
    labels = labeling.labels()
    assert set(labels) == set(picked) - {skip}
    assert all(labels[t].label == labeling.truth[t] for t in labels)
    assert {row.split.value for row in labels.values()} <= {"train", "eval"}

    # a second sync finds nothing new and writes nothing
    assert labeling.sync().labels_changed == 0


@BOTH_STORES
def test_a_response_changed_in_argilla_updates_the_store(labeling: LabelingLoop) -> None:
    picked = labeling.select(3)
    labeling.push()
    labeling.annotate(ANNOTATOR)
    labeling.sync()
    target = picked[0]
    wrong = next(label for label in ("business", "sport", "tech") if label != labeling.truth[target])
    split_before = labeling.labels()[target].split

    # the annotator changes an answer, as the UI does: find their response, PUT /responses/{id}
    dataset = labeling.connect().datasets(name=labeling.task, workspace=labeling.server.workspace)
    with labeling.server.annotator_http(ANNOTATOR) as http:
        found = http.post(f"/api/v1/me/datasets/{dataset.id}/records/search", params={"include": "responses"}, json={})
        assert found.status_code == 200, found.text
        record = next(i["record"] for i in found.json()["items"] if text_id_of(i["record"]["external_id"]) == target)
        response_id = record["responses"][0]["id"]
        changed = http.put(f"/api/v1/responses/{response_id}", json={"values": {"label": {"value": wrong}}, "status": "submitted"})
        assert changed.status_code == 200, changed.text

    assert labeling.sync().labels_changed == 1
    assert labeling.annotations()[(target, ANNOTATOR)] == (wrong, AnnotationStatus.submitted)
    label = labeling.labels()[target]
    assert label.label == wrong and label.split == split_before  # the split is fixed on arrival


@BOTH_STORES
def test_disagreeing_annotators_leave_the_label_unresolved_and_agreement_drops(labeling: LabelingLoop) -> None:
    with session_scope(labeling.engine) as session:
        configure(session, get_task(session, labeling.task), min_submitted=2)
    picked = labeling.select(8)
    labeling.push()
    labeling.annotate(ANNOTATOR)
    first = labeling.sync()
    assert first.labels_changed == 0 and not labeling.labels()  # one opinion of the two required
    labeling.annotate(
        OTHER,
        lambda t: (
            labeling.truth[t] if t not in picked[:2] else "politics" if labeling.truth[t] != "politics" else "sport"
        ),
    )
    second = labeling.sync()
    labels = labeling.labels()
    assert set(labels) == set(picked[2:])  # the two disagreements stay unresolved
    assert second.unresolved == 2
    assert second.agreement is not None and second.agreement.method == "cohen_kappa"
    assert second.agreement.items == 8 and second.agreement.value is not None and second.agreement.value < 0.9

    # re-queued, the two texts come back as new records; annotator-2 now agrees and the tie breaks
    with session_scope(labeling.engine) as session:
        task = get_task(session, labeling.task)
        assert requeue(session, task.id, unresolved(session, task)) == 2
    assert labeling.push().pushed == 2
    assert labeling.annotate(OTHER) == 2 and labeling.annotate(ANNOTATOR) == 2
    third = labeling.sync()
    assert third.unresolved == 0 and set(labeling.labels()) == set(picked)
    assert third.agreement.value == pytest.approx(1.0)  # type: ignore[union-attr]


def test_a_push_through_the_cli_prints_driftloop_s_lines_and_none_of_the_sdk_s(labeling: LabelingLoop) -> None:
    labeling.select(3)  # fewer records than a batch: the SDK's log() warned that it "normalized" its batch size
    env = {
        "DRIFTLOOP_HOME": str(labeling.settings.home),
        "DRIFTLOOP_DATABASE_URL": str(labeling.settings.database_url),
        "DRIFTLOOP_ARGILLA_URL": labeling.server.url,
        "DRIFTLOOP_ARGILLA_API_KEY": labeling.server.api_key,
        "DRIFTLOOP_ARGILLA_WORKSPACE": labeling.server.workspace,
    }
    pushed = run_cli("labeling", "push", labeling.task, env=env)
    assert pushed.returncode == 0, pushed.stderr.decode()
    assert pushed.stdout.decode().splitlines() == [f"pushed 3 records to dataset {labeling.task}"]
    # stderr is no terminal here: driftloop's progress lines at most, and no SDK warning or tqdm bar
    problems = pushed.stderr.decode().splitlines()
    assert all(line.startswith("push records") for line in problems), problems


def test_a_push_while_argilla_is_down_stays_pending_and_goes_through_later(labeling: LabelingLoop) -> None:
    labeling.select(4)
    labeling.push()
    labeling.server.stop()
    try:
        picked = labeling.select(5)
        failed = labeling.push()
        assert failed.pushed == 0 and failed.pending == 5 and failed.error
        with session_scope(labeling.engine) as session:
            assert pending_count(session, labeling.task_id) == 5
            attempts = session.scalars(select(Push.last_error).where(Push.text_id.in_(picked))).all()
            assert all(attempts)
    finally:
        labeling.server.start()
    synced = labeling.sync()  # retries the pending pushes first
    assert synced.push.pushed == 5 and synced.push.pending == 0
    dataset = labeling.connect().datasets(name=labeling.task, workspace=labeling.server.workspace)
    assert len(list(dataset.records)) == 9


def test_labels_added_to_the_task_appear_in_the_dataset_question(labeling: LabelingLoop) -> None:
    picked = labeling.select(6)
    labeling.push()
    labeling.annotate(ANNOTATOR, limit=2)  # two answered before the label set changes
    labeling.sync()
    with session_scope(labeling.engine) as session:
        add_labels(session, labeling.task, ["science"])
    result = labeling.push()
    assert result.moved == 4 and result.dataset == f"{labeling.task}-v2"
    client = labeling.connect()
    current = client.datasets(name=f"{labeling.task}-v2", workspace=labeling.server.workspace)
    assert list(current.settings.questions["label"].labels)[-1] == "science"
    assert len(list(current.records)) == 4
    old = client.datasets(name=labeling.task, workspace=labeling.server.workspace)
    assert len(list(old.records)) == 2  # answered records stay where they were answered
    labeling.annotate(ANNOTATOR)
    labeling.sync()
    assert set(labeling.labels()) == set(picked)


def test_suggestions_can_be_switched_off(labeling: LabelingLoop) -> None:
    labeling.label(labeling.headlines[:150])
    labeling.train()
    with session_scope(labeling.engine) as session:
        configure(session, get_task(session, labeling.task), suggestions=False)
    labeling.select(3)
    labeling.push()
    dataset = labeling.connect().datasets(name=labeling.task, workspace=labeling.server.workspace)
    records = list(dataset.records(with_suggestions=True))
    assert all(not list(r.suggestions) for r in records)
    assert all("predicted_label" in r.metadata for r in records)  # still filterable by the prediction

    with session_scope(labeling.engine) as session:
        configure(session, get_task(session, labeling.task), suggestions=True)
    labeling.select(3)
    labeling.push()
    with_suggestion = [r for r in dataset.records(with_suggestions=True) if list(r.suggestions)]
    assert len(with_suggestion) == 3
    suggestion = with_suggestion[0].suggestions["label"]
    assert suggestion.agent == "champion v1" and 0 < suggestion.score <= 1


def test_sync_without_argilla_reports_it_and_keeps_the_store(labeling: LabelingLoop, tmp_path: Path) -> None:
    labeling.select(2)
    unreachable = labeling.settings.model_copy(update={"argilla_url": "http://127.0.0.1:9"})
    result = sync(
        labeling.engine, unreachable, labeling.task, lambda: connect(unreachable), dimensions=labeling.encoder.dim
    )
    assert result.push.error and result.push.pending == 2
    with session_scope(labeling.engine) as session:
        assert session.scalar(select(func.count()).select_from(Push).where(Push.state == PushState.pending)) >= 2


def test_a_sync_over_http_is_a_job_that_stores_the_answers(labeling: LabelingLoop) -> None:

    from driftloop.platform.api.app import create_app
    from tests.api_keys import admin_client
    from tests.job_watch import wait_for_job

    picked = labeling.select(3)
    labeling.push()
    labeling.annotate(ANNOTATOR)
    with admin_client(create_app(labeling.settings)) as client:
        answer = client.post(f"/v1/tasks/{labeling.task}/sync")
        assert answer.status_code == 202 and answer.headers["location"] == answer.json()["url"]
        job = wait_for_job(client, answer.json()["job"])[-1]
        assert (job["kind"], job["state"], job["progress"]) == ("sync", "succeeded", 1.0), job
        assert (job["result"]["responses"], job["result"]["labels_changed"]) == (3, 3)
        assert set(labeling.labels()) == set(picked)

        # Argilla unreachable: the job fails and says why; the picks stay pending for the next sync
        labeling.select(2)
        down = labeling.settings.model_copy(update={"argilla_url": "http://127.0.0.1:9"})
        with admin_client(create_app(down)) as unreachable:
            failed = wait_for_job(unreachable, unreachable.post(f"/v1/tasks/{labeling.task}/sync").json()["job"])[-1]
        assert failed["state"] == "failed" and "Argilla could not be reached; 2 pushes stay pending" in failed["error"]
        with session_scope(labeling.engine) as session:
            assert pending_count(session, labeling.task_id) == 2
        assert client.post("/v1/tasks/no-such-task/sync").status_code == 404


@pytest.fixture
def driftloop_api(labeling: LabelingLoop):  # type: ignore[no-untyped-def]
    """The driftloop API on a free port of 127.0.0.1, in this process, for Argilla's worker to call."""
    import threading

    import uvicorn

    from driftloop.labeling.server.ports import free_port
    from driftloop.platform.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(labeling.settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_webhook_delivery_syncs_the_task_and_forged_ones_are_refused(labeling: LabelingLoop, driftloop_api: str) -> None:
    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    from driftloop.labeling.webhooks import register
    from driftloop.platform.secrets import decrypt

    url = f"{driftloop_api}/v1/labeling/webhook"
    hook = register(labeling.connect(), labeling.engine, labeling.settings, url)
    try:
        assert register(labeling.connect(), labeling.engine, labeling.settings, url).external_id == hook.external_id  # idempotent
        secret = next(h for h in labeling.connect().webhooks if str(h.id) == hook.external_id).secret
        with labeling.engine.connect() as connection:  # the store alone does not give the secret away
            stored = [str(value) for row in connection.execute(text("SELECT * FROM webhooks")) for value in row]
        assert secret and not any(secret.removeprefix("whsec_") in value for value in stored)
        picked = labeling.select(2)
        labeling.push()
        labeling.annotate(ANNOTATOR)  # Argilla's worker now posts response.created to the API
        deadline = time.monotonic() + 60
        while len(labeling.labels()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert set(labeling.labels()) == set(picked)  # no `driftloop sync` was run

        forged = httpx.post(
            url,
            content=b'{"type": "response.created", "timestamp": "2026-11-22T00:00:00Z", "data": {}}',
            headers={"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,Zm9yZ2Vk"},
        )
        assert forged.status_code == 401 and forged.json()["error"] == "invalid_signature"

        # registering again on a host with another key keeps the webhook and stores its secret under that key
        other_host = labeling.settings.model_copy(update={"secret_key": SecretStr(Fernet.generate_key().decode())})
        again = register(labeling.connect(), labeling.engine, other_host, url)
        assert again.external_id == hook.external_id and decrypt(other_host, again.secret_encrypted) == secret
    finally:
        client = labeling.connect()
        next(h for h in client.webhooks if str(h.id) == hook.external_id).delete()
