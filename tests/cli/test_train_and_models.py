"""`driftloop train` and `driftloop models` as users run them (real processes, SQLite home)."""

import json
import re
from pathlib import Path

from driftloop.platform.modeling import registry
from driftloop.platform.store.engine import make_engine, session_scope
from tests.conftest import run_cli


def test_train_gate_list_promote_and_rollback(tmp_path: Path, headlines) -> None:  # type: ignore[no-untyped-def]
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "COLUMNS": "200"}
    rows = headlines[:500]
    assert run_cli("task", "create", "news", "--labels", "business,entertainment,politics,sports,tech", env=env).returncode == 0
    # an eval split (not the default): versions then compare on every eval label (slice all)
    assert run_cli("task", "set", "news", "--eval-fraction", "0.2", env=env).returncode == 0
    texts = "\n".join(json.dumps({"id": i, "text": t}) for i, t, _ in rows).encode()
    assert run_cli("ingest", "news", "-", env=env, stdin=texts).returncode == 0

    nothing = run_cli("train", "news", env=env)
    assert nothing.returncode == 2 and "has no training labels yet" in nothing.stderr.decode()

    def label(batch: list[tuple[str, str, str]]) -> None:
        answers = "\n".join(json.dumps({"id": i, "label": topic}) for i, _, topic in batch).encode()
        assert run_cli("label", "import", "news", "-", env=env, stdin=answers).returncode == 0

    label(rows[:300])
    first = run_cli("train", "news", env=env)
    assert first.returncode == 0, first.stderr.decode()
    output = first.stdout.decode()
    assert "candidate version 1 (head, from scratch): 240 new labels, 0 replayed" in output
    assert "beats_majority" in output and "gate passed: version 1 promoted to champion" in output

    label([r for r in rows[300:] if r[2] == "tech"])
    second = run_cli("train", "news", "--replay", "none", "--no-promote", env=env).stdout.decode()
    assert "candidate version 2 (head, from champion v1)" in second
    # the gate table: a status, a weight and the difference with its interval per rule, and why
    assert "status" in second and "weight" in second and "difference (CI)" in second
    assert "current_traffic" in second and "class_lost" in second and "90% CI" in second

    listed = run_cli("models", "list", "news", env=env).stdout.decode()
    header = next(line for line in listed.splitlines() if line.startswith("┃"))
    # the column counts a version's classes (its label set), not labels it learned from
    assert [h.strip() for h in header.split("┃")[1:6]] == ["version", "status", "mode", "parent", "classes"]
    assert re.search(r"│ 1 +│ champion +│ head +│ - ", listed), listed
    assert "│ 2       │" in listed
    assert "latest gate decision: v2, " in listed and "current_traffic" in listed  # every term of the newest decision
    models = json.loads(run_cli("models", "list", "news", "--json", env=env).stdout)
    assert (models["task"], models["notice"]) == ("news", None)
    assert models["gate"]["version"] == 2 and {r["rule"] for r in models["gate"]["rules"]} >= {"current_traffic", "calibration"}
    [v1, v2] = models["versions"]
    assert (v1["version"], v1["status"], v1["mode"], v1["parent"], v1["provisional"]) == (1, "champion", "head", None, False)
    assert (v2["version"], v2["parent"], len(v2["labels"])) == (2, 1, 5)
    assert v1["created_at"] in listed and v1["promoted_at"] in listed
    # the figures that compare are those of v2's gate, both versions on its eval labels; each
    # version's own (v1's on fewer labels) stand apart, with their n
    engine = make_engine(f"sqlite:///{tmp_path / 'driftloop.db'}")
    with session_scope(engine) as session:
        v1, v2 = registry.list_versions(session, "news")
    engine.dispose()
    assert v1.comparable and v2.comparable and v1.comparable.n == v2.comparable.n > v1.metrics["n"]
    row_of = {line.split("│")[1].strip(): line for line in listed.splitlines() if line.startswith("│ ") and line.split("│")[1].strip().isdigit()}
    for version in (v1, v2):
        cells = [cell.strip() for cell in row_of[str(version.version)].split("│")]
        assert cells[6:9] == [
            f"{version.comparable.macro_f1:.3f}",
            f"{version.comparable.accuracy:.3f}",
            f"{version.metrics['macro_f1']:.3f} (n={version.metrics['n']})",
        ]
    assert f"¹ the latest gate decision ({v2.comparable.decided_at}): v2 and champion v1 on the same {v2.comparable.n} labels (slice all)" in listed

    refused = run_cli("models", "promote", "news", "2", "--force", env=env)
    assert refused.returncode == 2 and "--force needs --reason" in refused.stderr.decode()
    forced = run_cli("models", "promote", "news", "2", "--force", "--reason", "release", env=env)
    assert forced.returncode == 0 and "version 2 is now the champion" in forced.stdout.decode()
    back = run_cli("models", "rollback", "news", env=env)
    assert back.returncode == 0 and "version 1 is the champion of news again" in back.stdout.decode()
    again = run_cli("models", "rollback", "news", env=env)
    assert again.returncode == 2 and "no earlier champion" in again.stderr.decode()

    # a rolled-back version comes back only by an override, and the refusal says how
    refused_again = run_cli("models", "promote", "news", "2", env=env)
    assert refused_again.returncode == 2
    assert "version 2 was rolled back: it is rejected, not a candidate; promoting it again overrides the gate: --force with --reason" in (
        refused_again.stderr.decode()
    )
    restored = run_cli("models", "promote", "news", "2", "--force", "--reason", "the rollback was a false alarm", env=env)
    assert restored.returncode == 0 and "version 2 is now the champion" in restored.stdout.decode()
    assert "rolled back" in run_cli("models", "promote", "--help", env=env).stdout.decode()


def test_one_class_has_nothing_to_learn_and_a_few_dozen_labels_give_a_provisional_champion(tmp_path: Path, headlines) -> None:  # type: ignore[no-untyped-def]
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "COLUMNS": "200"}
    rows = headlines[:60]
    assert run_cli("task", "create", "news", "--labels", "business,entertainment,politics,sports,tech", env=env).returncode == 0
    texts = "\n".join(json.dumps({"id": i, "text": t}) for i, t, _ in rows).encode()
    assert run_cli("ingest", "news", "-", env=env, stdin=texts).returncode == 0

    def label(batch: list[tuple[str, str, str]]) -> None:
        answers = "\n".join(json.dumps({"id": i, "label": topic}) for i, _, topic in batch).encode()
        assert run_cli("label", "import", "news", "-", env=env, stdin=answers).returncode == 0

    label([r for r in rows if r[2] == "sports"])
    nothing = run_cli("train", "news", env=env)
    assert nothing.returncode == 2 and "one class so far: nothing to learn yet" in nothing.stderr.decode()

    label(rows[:30])
    first = run_cli("train", "news", env=env)
    assert first.returncode == 0, first.stderr.decode()
    output = first.stdout.decode()
    assert "beats_majority_cv" in output and "promoted to champion (provisional" in output
    listed = run_cli("models", "list", "news", env=env).stdout.decode()
    assert "│ 1       │ champion (provisional) │" in listed and "NOTICE" not in listed

    # --json: one document on stdout, the progress bar and any notice on stderr. The champion is
    # provisional, so the next candidate learns every training label from scratch, and is gated
    # against the provisional champion on the labels that champion never saw.
    label(rows[30:40])
    again = run_cli("train", "news", "--no-promote", "--json", env=env)
    assert again.returncode == 0, again.stderr.decode()
    round_ = json.loads(again.stdout)
    assert (round_["task"], round_["mode"], round_["replay"], round_["version"]) == ("news", "head", "reservoir", 2)
    assert (round_["init"], round_["promoted"], round_["notice"]) == ("scratch", False, None)
    assert round_["n_new"] > 24 and round_["fit"]["epochs"] >= 1 and isinstance(round_["job_id"], int)
    rules = round_["gate"]["rules"]
    [current] = [r for r in rules if r["rule"] == "current_traffic"]
    assert current["slice"] == "current" and current["status"] in ("pass", "fail", "undecided") and "weight" in current
    assert round_["gate"]["passed"] == all(r["status"] != "fail" for r in rules)
