"""`driftloop train`: one round of continual learning, and the gate table it prints.

torch and the training code are imported when a round runs, not with this module: the CLI
imports every command module to answer ``--help``."""

from dataclasses import asdict
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from sqlalchemy import Engine

from driftloop.platform.cli.console import fraction_progress, json_option, out, print_json, print_queued
from driftloop.platform.cli.models import freeze_lines, freeze_notice
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import Settings, get_settings
from driftloop.platform.modeling.choices import MODES, REPLAY_STRATEGIES

if TYPE_CHECKING:
    from driftloop.platform.evaluation.gate import GateOutcome
    from driftloop.platform.modeling.round_requests import RoundRequest
    from driftloop.platform.modeling.rounds import RoundResult


def train_command(
    name: str = typer.Argument(..., help="Task to train."),
    mode: str = typer.Option("head", help=f"Training mode: {', '.join(MODES)}."),
    replay: str = typer.Option("reservoir", help=f"Replay buffer: {', '.join(REPLAY_STRATEGIES)}."),
    distill: float = typer.Option(0.0, min=0.0, help="Weight of distillation from the champion (LwF); 0 = off."),
    epochs: int | None = typer.Option(None, min=1, help="Maximum epochs (default per mode)."),
    seed: int = typer.Option(0, help="Random seed."),
    promote: bool = typer.Option(True, help="Promote the candidate when it passes the gate."),
    as_json: bool = json_option(),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Queue the round as a job, print its id and return; follow it with `driftloop jobs watch ID`."
    ),
) -> None:
    """Train a candidate from the champion on new labels plus replay, gate it, promote it if it passed.

    --json: the round (version, init, n_new, n_replay, fit, gate, promoted, provisional...) and the freeze notice."""
    from driftloop.platform.modeling.round_requests import RoundRequest, TrainingConfig, submit_train

    if mode not in MODES:
        raise typer.BadParameter(f"use one of {', '.join(MODES)}", param_hint="--mode")
    if replay not in REPLAY_STRATEGIES:
        raise typer.BadParameter(f"use one of {', '.join(REPLAY_STRATEGIES)}", param_hint="--replay")
    settings = get_settings()
    engine = current_engine()
    request = RoundRequest(
        task=name,
        mode=mode,
        replay=replay,
        replay_ratio=settings.replay_ratio,
        replay_capacity=settings.replay_capacity,
        training=TrainingConfig(epochs=epochs, distill_weight=distill, seed=seed),
        promote=promote,
    )
    if no_wait:
        print_queued(submit_train(engine, settings, request, runner="process"), settings)
        return
    result = train_with_progress(engine, settings, request, f"train {name} ({mode}, replay {replay})")
    if as_json:
        print_json({"task": name, "mode": mode, "replay": replay, **asdict(result), "notice": freeze_notice(engine, name)})
        return
    out.print(
        f"candidate version {result.version} ({mode}, from {result.init}): "
        f"{result.n_new} new labels, {result.n_replay} replayed, {result.fit.epochs} epochs in {result.fit.seconds:.1f}s"
    )
    out.print(gate_table(result.gate))
    verdict = "passed" if result.gate.passed else "failed"
    fate = "promoted to champion" if result.promoted else ("kept as candidate" if result.gate.passed else "rejected")
    provisional = ""
    if result.provisional:
        evidence = "nothing decided either way on a superset candidate" if result.gate.provisional else "passed on cross-validation of its recipe"
        provisional = f" (provisional: {evidence}; the labels that arrive next re-judge it)"
    out.print(f"gate {verdict}: version {result.version} {fate}{provisional}")
    if not result.gate.passed:
        for line in freeze_lines(engine, name):
            out.print(line, markup=False)


def train_with_progress(engine: Engine, settings: Settings, request: "RoundRequest", description: str) -> "RoundResult":
    """A training round with a bar showing the job's own progress and latest message."""
    from driftloop.platform.modeling.rounds import train_round

    with fraction_progress() as progress:
        bar = progress.add_task(description, total=1.0, summary="")
        return train_round(
            engine, settings, request, on_progress=lambda done, message: progress.update(bar, completed=done, summary=message)
        )


def gate_table(outcome: "GateOutcome") -> Table:
    """One row per rule: its status, the difference it tested with the interval, and why."""
    report = outcome.to_dict()
    return decision_table(report["rules"], {s["name"]: s for s in report["slices"]})


def decision_table(rules: list[dict], slices: dict[str, dict]) -> Table:  # type: ignore[type-arg]
    """A gate decision as the store keeps it (its rules and per-slice reports), as a table."""
    from driftloop.platform.modeling.freeze import slice_size

    table = Table("rule", "slice", "n", "status", "weight", "difference (CI)", "detail", title="gate")
    for rule in rules:
        status = "FAIL" if rule.get("status") == "fail" else str(rule.get("status", "pass" if rule.get("passed") else "fail"))
        size = rule.get("n") if rule.get("n") is not None else slice_size(rule.get("slice", ""), slices)
        n = "" if size is None else size
        weight = f"{rule['weight']:.2f}" if "weight" in rule and rule["rule"] != "evaluation_data" else ""
        table.add_row(rule["rule"], rule.get("slice", ""), str(n), status, weight, _interval(rule), rule.get("detail", ""))
    return table


def _interval(rule: dict) -> str:  # type: ignore[type-arg]
    if rule["rule"] in _WITHOUT_INTERVAL or "value" not in rule:
        return ""
    return f"{rule['value']:+.3f} ({rule['low']:+.3f}..{rule['high']:+.3f})"


# Rules that test a level (a recall, an accuracy), not a candidate - champion difference.
_WITHOUT_INTERVAL = frozenset({"class_lost", "beats_majority", "evaluation_data"})
