import typer
from rich.table import Table

from driftloop.platform.cli.console import out, stage_progress
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings
from driftloop.platform.selection.rounds import SelectionRequest, run_selection


def select_command(
    name: str = typer.Argument(..., help="Task."),
    budget: int = typer.Option(..., "--budget", min=1, help="How many texts to pick."),
    strategy: str = typer.Option(
        "hybrid", help="random | least-confidence | margin | entropy | kmeans | kcenter | hybrid (uncertainty × diversity)."
    ),
    window_days: float | None = typer.Option(None, help="Only texts received in the last N days."),
    random_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of the budget picked uniformly at random (flagged)."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Pick the texts worth labeling next and record them as a selection round."""
    settings = get_settings()
    engine = current_engine()
    request = SelectionRequest(
        task=name, budget=budget, strategy=strategy, window_days=window_days, random_fraction=random_fraction, seed=seed
    )
    with stage_progress() as report:
        result = run_selection(engine, settings, request, progress=report)
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
    _push_if_labeling(settings, engine, name)


def _push_if_labeling(settings, engine, name: str) -> None:  # type: ignore[no-untyped-def]
    """Send the round to Argilla when one is configured or running; otherwise the picks wait in
    the outbox for `driftloop labeling push` or `driftloop sync`."""
    from driftloop.labeling.connection import connect, target
    from driftloop.labeling.push import push_pending
    from driftloop.platform.cli.labeling import print_push

    if target(settings) is None:
        out.print("no Argilla configured: the picks wait as pending pushes (see `driftloop argilla up`)")
        return
    print_push(push_pending(engine, settings, name, lambda: connect(settings)))

