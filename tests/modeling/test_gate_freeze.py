"""Never freeze silently: candidates refused in a row raise a notice with the failed rules and
their figures, shown by the CLI and the API; a promotion clears it. The refused rounds' labels
stay in the next candidate's data. Real headlines, the real encoder, head mode; the refusals are
real ones (candidates trained on one topic without replay forget the others)."""


from sqlalchemy import func, select

from driftloop.platform.api.app import create_app
from driftloop.platform.cli.models import freeze_lines
from driftloop.platform.modeling.freeze import gate_status
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Label, Split, TrainingRun
from driftloop.platform.tasks import get_task
from tests.api_keys import admin_client
from tests.learning_loop import Loop


def train_labels(loop: Loop) -> int:
    with session_scope(loop.engine) as session:
        task_id = get_task(session, loop.task).id
        return session.scalar(select(func.count()).select_from(Label).where(Label.task_id == task_id, Label.split == Split.train))


def status(loop: Loop):  # type: ignore[no-untyped-def]
    with session_scope(loop.engine) as session:
        return gate_status(session, loop.task, freeze_after=3)


def test_three_refusals_raise_the_notice_with_figures_and_a_promotion_clears_it(loop: Loop) -> None:
    loop.gate(policy="strict")  # every past window a veto: three refusals in a row, for sure
    loop.label(loop.headlines[:300])
    assert loop.train().promoted
    learned = train_labels(loop)
    tech = [h for h in loop.headlines[300:] if h[2] == "tech"]

    refused = []
    for batch in (tech[:30], tech[30:60], tech[60:90]):
        assert status(loop).notice is None  # fewer than three refusals: no notice yet
        loop.label(batch)
        result = loop.train(replay="none", past_windows=1)
        assert not result.gate.passed and not result.promoted
        # the cutoff moves only with a champion: every refused round's labels are in this one
        assert result.n_new == train_labels(loop) - learned
        refused.append(result)

    current = status(loop)
    assert current.refused_in_a_row == 3 and current.champion == 1
    notice = current.notice
    assert notice is not None and "refused the last 3 candidates" in notice.message
    assert [r.version for r in notice.rounds] == [4, 3, 2]
    for round_ in notice.rounds:
        assert round_.failed, round_
        forgot = [f for f in round_.failed if f.rule == "no_forgetting"]
        assert forgot and all(f.value < f.threshold for f in forgot)  # the figures that failed
    lines = freeze_lines(loop.engine, loop.task)
    assert lines[0].startswith("NOTICE: the gate refused the last 3 candidates") and "no_forgetting on past1:" in lines[1]

    with admin_client(create_app(loop.settings)) as client:
        gate = client.get(f"/v1/tasks/{loop.task}/gate").json()
        assert (gate["refused_in_a_row"], gate["freeze_after"], gate["champion"]) == (3, 3, 1)
        assert [r["version"] for r in gate["notice"]["rounds"]] == [4, 3, 2]
        # the newest decision, every term with its weight and its interval
        latest = gate["latest"]
        assert (latest["version"], latest["passed"]) == (4, False)
        forgot = next(r for r in latest["rules"] if r["rule"] == "no_forgetting" and r["status"] == "fail")
        assert forgot["low"] <= forgot["value"] <= forgot["high"] < forgot["threshold"] and forgot["weight"] == 1.0 and forgot["n"] > 0
        assert isinstance(client.get(f"/v1/tasks/{loop.task}/models").json(), list)

    # A candidate that learns the new topic without forgetting passes, and the notice is gone.
    loop.label([h for h in loop.headlines[300:] if h[2] != "tech"][:200])
    passed = loop.train(replay="balanced", replay_ratio=2.0, past_windows=1)
    assert passed.promoted, passed.gate.rules
    assert passed.n_new == train_labels(loop) - learned  # the refused rounds' tech labels included
    with session_scope(loop.engine) as session:
        run = session.get(TrainingRun, passed.run_id)
        first_run = session.get(TrainingRun, refused[0].run_id)
        assert run.params["data_from"] == first_run.params["data_from"]  # the champion's cutoff, not a refused one's
    after = status(loop)
    assert after.notice is None and after.refused_in_a_row == 0 and after.champion == passed.version
    assert freeze_lines(loop.engine, loop.task) == []
