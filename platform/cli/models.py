"""`driftloop models`: a task's model versions. The registry (and with it numpy) is imported by
the commands, not with the module: the CLI imports it to answer ``--help``."""

from typing import TYPE_CHECKING

import typer
from rich.table import Table
from sqlalchemy import Engine

from driftloop.platform.cli.console import command_group, json_option, out, print_json
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings
from driftloop.platform.store.engine import session_scope

if TYPE_CHECKING:
    from driftloop.platform.modeling.freeze import FreezeNotice, GateStatus
    from driftloop.platform.modeling.registry import ComparableMetrics, VersionInfo

app = command_group("Model versions: list, promote, roll back.")


@app.command("list")
def list_(name: str = typer.Argument(..., help="Task."), as_json: bool = json_option()) -> None:
    """List a task's model versions with their lineage and the metrics that compare them, and the freeze notice
    when the gate has refused candidates in a row.

    --json: {"task", "versions", "notice", "gate"}, each version as the API's GET .../models gives it,
    "gate" the newest gate decision with every term, its weight and its interval (as GET .../gate's "latest")."""
    engine = current_engine()
    status = _gate_status(engine, name)
    if as_json:
        print_json({"task": name, "versions": _versions(engine, name), "notice": status.notice, "gate": status.latest})
        return
    out.print(models_table(engine, name))
    latest = status.latest
    if latest is not None:
        from driftloop.platform.cli.train import decision_table

        table = decision_table([vars(r) for r in latest.rules], {})
        table.title = f"latest gate decision: v{latest.version}, {'passed' if latest.passed else 'failed'} ({latest.decided_at})"
        out.print(table)
    for line in notice_lines(status.notice):
        out.print(line, markup=False)


def _versions(engine: Engine, name: str) -> "list[VersionInfo]":
    from driftloop.platform.modeling import registry

    with session_scope(engine) as session:
        return registry.list_versions(session, name)


def models_table(engine: Engine, name: str) -> Table:
    versions = _versions(engine, name)
    table = Table(
        "version",
        "status",
        "mode",
        "parent",
        "classes",
        "macro-F1 ¹",
        "accuracy ¹",
        "own eval macro-F1 ²",
        "created",
        "promoted",
        title=f"models of {name}",
        caption=_footnotes(next((v.comparable for v in versions if v.comparable), None)),
        caption_justify="left",
    )
    for v in versions:
        table.add_row(
            str(v.version),
            f"{v.status} (provisional)" if v.provisional else v.status,
            v.mode,
            str(v.parent or "-"),
            str(len(v.labels)),
            f"{v.comparable.macro_f1:.3f}" if v.comparable else "-",
            f"{v.comparable.accuracy:.3f}" if v.comparable else "-",
            f"{_metric(v.metrics, 'macro_f1')} (n={v.metrics.get('n', '?')})" if "macro_f1" in v.metrics else "-",
            v.created_at,
            v.promoted_at or "-",
        )
    return table


def _gate_status(engine: Engine, name: str) -> "GateStatus":
    from driftloop.platform.modeling.freeze import gate_status

    with session_scope(engine) as session:
        return gate_status(session, name, get_settings().gate_freeze_after)


def freeze_notice(engine: Engine, name: str) -> "FreezeNotice | None":
    """The task's freeze notice; None while the gate lets candidates through."""
    return _gate_status(engine, name).notice


def _footnotes(compared: "ComparableMetrics | None") -> str:
    if compared is None:
        first = "¹ no gate decision has measured a version yet"
    else:
        who = f"v{compared.candidate} and champion v{compared.champion}" if compared.champion else f"first model v{compared.candidate}"
        first = (
            f"¹ the latest gate decision ({compared.decided_at}): {who} on the same {compared.n} labels "
            f"(slice {compared.slice}); - for versions it did not measure"
        )
    return f"{first}\n² on the labels that judged the version in its own round, n each: not comparable across versions"


def freeze_lines(engine: Engine, name: str) -> list[str]:
    """The task's freeze notice as lines to print under a table; none while the gate lets
    candidates through."""
    return notice_lines(freeze_notice(engine, name))


def notice_lines(notice: "FreezeNotice | None") -> list[str]:
    if notice is None:
        return []
    lines = [f"NOTICE: {notice.message}"]
    for refused in notice.rounds:
        reasons = "; ".join(f"{f.rule} on {f.slice or '-'}: {f.value:.3f} vs {f.threshold:.3f} ({f.detail})" for f in refused.failed)
        lines.append(f"  v{refused.version} refused {refused.decided_at}: {reasons}")
    return lines


@app.command()
def promote(
    name: str = typer.Argument(..., help="Task."),
    version: int = typer.Argument(..., help="Version to promote (see `driftloop models list NAME`)."),
    force: bool = typer.Option(False, "--force", help="Promote without a passed gate (needs --reason)."),
    reason: str | None = typer.Option(None, help="Why the gate is overridden; recorded."),
) -> None:
    """Promote a candidate that passed the gate against the current champion.

    With --force and --reason, promote any version but the champion: a candidate the gate refused,
    or a version that is no candidate any more (one rolled back, or a former champion). That is
    the only way back for a rolled-back version; the reason is recorded as a gate override."""
    if force and not reason:
        raise typer.BadParameter("--force needs --reason", param_hint="--reason")
    from driftloop.platform.modeling import registry

    with session_scope(current_engine()) as session:
        promoted = registry.promote(
            session, name, version, replay_capacity=get_settings().replay_capacity, force_reason=reason if force else None
        )
        out.print(f"version {promoted.version} is now the champion of {name}")


@app.command()
def rollback(name: str = typer.Argument(..., help="Task.")) -> None:
    """Put the previous champion back. The current one is marked rejected: promoting it again needs
    `models promote --force --reason`."""
    from driftloop.platform.modeling import registry

    with session_scope(current_engine()) as session:
        restored = registry.rollback(session, name)
        out.print(f"version {restored.version} is the champion of {name} again")


def _metric(metrics: dict, key: str) -> str:  # type: ignore[type-arg]
    value = metrics.get(key)
    return f"{value:.3f}" if isinstance(value, int | float) else "-"
