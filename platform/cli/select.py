"""`driftloop select`: a selection round (faiss, torch and the strategies are imported when it
runs, not with the module: the CLI imports it to answer ``--help``)."""

from dataclasses import asdict

import typer
from rich.table import Table

from driftloop.platform.cli.console import as_typed, err, json_option, out, print_json, print_queued, stage_progress
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings

_NO_ARGILLA = "no Argilla configured: the picks wait as pending pushes (see `driftloop argilla up`)"


def select_command(
    name: str = typer.Argument(..., help="Task."),
    budget: int = typer.Option(..., "--budget", min=1, help="How many texts to pick."),
    strategy: str = typer.Option(
        "hybrid", help="random | least-confidence | margin | entropy | kmeans | kcenter | hybrid (uncertainty × diversity)."
    ),
    window_days: float | None = typer.Option(None, help="Only texts received in the last N days."),
    random_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of the budget picked uniformly at random (flagged)."),
    seed: int = typer.Option(0, help="Random seed."),
    as_json: bool = json_option(),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Queue the round as a job, print its id and return; follow it with `driftloop jobs watch ID`."
    ),
) -> None:
    """Pick the texts worth labeling next and record them as a selection round.

    --json: the round (round_id, strategy, pool_size, picks with their full text...) and its push, or null."""
    from driftloop.platform.selection.round_requests import SelectionRequest, submit_selection

    settings = get_settings()
    engine = current_engine()
    request = SelectionRequest(
        task=name, budget=budget, strategy=strategy, window_days=window_days, random_fraction=random_fraction, seed=seed
    )
    if no_wait:  # the picks then wait in the outbox for `driftloop labeling push` or `driftloop sync`
        print_queued(submit_selection(engine, settings, request, runner="process"), settings)
        return
    from driftloop.platform.cli.labeling import print_push
    from driftloop.platform.selection.rounds import run_selection

    with stage_progress() as report:
        result = run_selection(engine, settings, request, progress=report)
    if not as_json:
        champion = f"champion v{result.model_version}" if result.model_version else "no champion (cold start)"
        out.print(f"round {result.round_id}: {len(result.picks)} picks by {result.strategy} from a pool of {result.pool_size:,}, {champion}")
        table = Table("#", "id", result.score_name, "cluster", "reason", "text", title=f"selection round {result.round_id}")
        for pick in result.picks:
            table.add_row(
                str(pick.rank + 1),
                pick.external_id,
                "-" if pick.score is None else f"{pick.score:.3f}",
                "-" if pick.cluster is None else str(pick.cluster),
                pick.reason,
                pick.text[:60].replace("\n", " "),
            )
        out.print(table)
    from driftloop.labeling.push import push_if_configured

    push = push_if_configured(engine, settings, name)
    if as_json:
        print_json({**asdict(result), "push": push})
    if push is None:
        (err if as_json else out).print(as_typed(_NO_ARGILLA), markup=False)
    else:
        print_push(push, as_json=as_json)

