"""`driftloop keys`: the API's keys, made, listed and revoked on the store directly (no server needed:
this is how the first key of a deployment is made)."""

from datetime import datetime

import typer
from rich.table import Table

from driftloop.platform.api_keys import SCOPES, KeyInfo, create_key, list_keys, revoke_key
from driftloop.platform.cli.console import command_group, err, json_option, out, print_json
from driftloop.platform.cli.store import current_engine
from driftloop.platform.store.engine import session_scope

app = command_group("API keys: create (shown once), list, revoke.")


@app.command()
def create(
    name: str = typer.Option(..., "--name", help="What the key is for, shown in lists (e.g. the client's name)."),
    scopes: str = typer.Option(..., "--scopes", help=f"Comma-separated: {', '.join(SCOPES)} (admin implies every scope)."),
    task: str | None = typer.Option(None, "--task", help="Bind the key to this task: it acts on it alone."),
    expires: str | None = typer.Option(None, "--expires", help="Lifetime: 90d, 12h, 30m; unset = until revoked."),
    as_json: bool = json_option(),
) -> None:
    """Create a key and print it: once, it cannot be shown again (the store keeps only its hash)."""
    with session_scope(current_engine()) as session:
        info, key = create_key(session, name, scopes, task=task, expires_in=expires)
    if as_json:
        print_json({"key": key, **_public(info)})
        return
    err.print(f"key {info.prefix} ({info.name}): {_scope_text(info)}, {_expiry_text(info)}", markup=False)
    err.print("It cannot be shown again: keep it now. Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.", markup=False)
    # alone on stdout, so that KEY=$(driftloop keys create …) catches the key and nothing else
    out.print(key, markup=False)


@app.command("list")
def list_(as_json: bool = json_option()) -> None:
    """List the keys (never the keys themselves): prefix, name, scopes, task, dates, and whether revoked."""
    with session_scope(current_engine()) as session:
        found = list_keys(session)
    if as_json:
        print_json([_public(info) for info in found])
        return
    table = Table("prefix", "name", "scopes", "task", "created", "expires", "last used", "revoked", title="API keys")
    for info in found:
        table.add_row(
            info.prefix,
            info.name,
            ",".join(info.scopes),
            info.task or "(all)",
            _time(info.created_at),
            _time(info.expires_at),
            _time(info.last_used_at),
            _time(info.revoked_at),
        )
    out.print(table)


@app.command()
def revoke(
    key: str = typer.Argument(..., metavar="PREFIX_OR_NAME", help="The key's prefix (from `driftloop keys list`), or its name."),
    as_json: bool = json_option(),
) -> None:
    """Revoke a key: each API process refuses it within DRIFTLOOP_AUTH_CACHE_SECONDS (5)."""
    with session_scope(current_engine()) as session:
        info = revoke_key(session, key)
    if as_json:
        print_json(_public(info))
        return
    out.print(f"key {info.prefix} ({info.name}) revoked", markup=False)


def _public(info: KeyInfo) -> dict[str, object]:
    return {field: value for field, value in vars(info).items() if field != "id"}


def _scope_text(info: KeyInfo) -> str:
    where = f"task {info.task}" if info.task else "every task"
    return f"scopes {','.join(info.scopes)} on {where}"


def _expiry_text(info: KeyInfo) -> str:
    return f"expires {_time(info.expires_at)}" if info.expires_at else "no expiry"


def _time(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"
