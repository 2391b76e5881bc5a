"""The embedded Argilla server of a ``DRIFTLOOP_HOME``: a real Argilla (UI included) on 127.0.0.1 with
its SQLite database, background worker and credentials under ``$DRIFTLOOP_HOME/argilla``.

``up`` builds the server's virtualenv the first time (minutes), migrates the database and creates
the owner once, starts the worker and the server, and adds annotators to a workspace. It is
idempotent. ``down`` stops what ``up`` started; ``connection`` tells other code how to reach the
running server.
"""

import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from driftloop.labeling.server import private_redis
from driftloop.labeling.server.accounts import OwnerApi, ensure_workspace_members, is_answering
from driftloop.labeling.server.environment import LAUNCHER, ensure_server_venv, is_ready, requirements_digest, venv_path
from driftloop.labeling.server.errors import EmbeddedServerError
from driftloop.labeling.server.ports import port_is_free
from driftloop.labeling.server.processes import ManagedProcess
from driftloop.labeling.server.state import Credentials, StateDir, exclusive, new_password
from driftloop.platform.config import get_settings

Progress = Callable[[str], None]
_USERNAME = re.compile(r"^[a-z0-9_-]+$")


@dataclass(frozen=True)
class EmbeddedConnection:
    """How to reach a running embedded server, as the owner or as an annotator."""

    url: str
    api_key: str
    owner_username: str
    owner_password: str
    workspace: str
    annotators: dict[str, str] = field(default_factory=dict)  # username -> password


@dataclass(frozen=True)
class EmbeddedStatus:
    state_dir: Path
    url: str | None
    server_pid: int | None
    worker_pid: int | None
    redis_pid: int | None
    answering: bool

    @property
    def running(self) -> bool:
        return self.server_pid is not None


@dataclass(frozen=True)
class UpResult:
    connection: EmbeddedConnection
    already_running: bool


def up(
    home: Path | None = None,
    *,
    port: int | None = None,
    workspace: str | None = None,
    annotators: Sequence[str] = (),
    redis_url: str | None = None,
    venv: Path | None = None,
    progress: Progress | None = None,
    timeout: float = 180.0,
) -> UpResult:
    """Start the embedded server of ``home`` unless it runs, and make sure ``workspace`` holds
    ``annotators`` (new ones get generated passwords). Arguments left out come from the settings:
    ``DRIFTLOOP_ARGILLA_PORT``, ``DRIFTLOOP_ARGILLA_REDIS_URL``, ``DRIFTLOOP_ARGILLA_VENV``."""
    state = _state(home)
    state.create()
    with exclusive(state.lock_file):
        return _up(state, port, workspace, annotators, redis_url, venv, progress or (lambda message: None), timeout)


def up_work(home: Path | None = None, venv: Path | None = None) -> Literal["running", "start", "build"]:
    """What :func:`up` has ahead of it: nothing but its users (the server runs), a start (its
    virtualenv is built: seconds), or a build of the virtualenv first (minutes), so that a caller
    can say how long to wait before it waits."""
    if _server_process(_state(home)).pid() is not None:
        return "running"
    return "start" if is_ready(venv or venv_path()) else "build"


def _up(
    state: StateDir,
    port: int | None,
    workspace: str | None,
    annotators: Sequence[str],
    redis_url: str | None,
    venv: Path | None,
    report: Progress,
    timeout: float,
) -> UpResult:
    settings = get_settings()
    credentials, new_annotators = _updated_credentials(state, workspace, annotators)
    server, worker = _server_process(state), _worker_process(state)

    if server.pid() is not None:
        endpoint = state.read_endpoint() or {}
        if worker.pid() is None and endpoint.get("redis_url"):
            python = ensure_server_venv(venv or venv_path(), report)
            worker.start(_launch(python, state, "worker"), _server_env(state, endpoint["redis_url"]))
        url = endpoint.get("url") or f"http://127.0.0.1:{settings.argilla_port}"
        ensure_workspace_members(
            OwnerApi(url, credentials.owner_api_key), credentials.workspace, credentials.annotators, new_annotators
        )
        return UpResult(_connection(url, credentials), already_running=True)

    port = port or settings.argilla_port
    if not port_is_free(port):
        raise EmbeddedServerError(
            f"port {port} on 127.0.0.1 is in use; choose another with --port or DRIFTLOOP_ARGILLA_PORT"
        )
    python = ensure_server_venv(venv or venv_path(), report)
    redis = _redis(state, redis_url or settings.argilla_redis_url, report)
    env = _server_env(state, redis)
    _prepare_database(state, python, env, credentials, report)

    report("starting the Argilla worker and server (seconds; a minute on a busy machine)")
    if worker.pid() is None:
        worker.start(_launch(python, state, "worker"), env)
    server.start([*_launch(python, state, "server"), "--host", "127.0.0.1", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    _wait_until_answering(server, url, timeout, stop_on_failure=[server, worker])
    if worker.pid() is None:
        server.stop()
        raise EmbeddedServerError(f"the Argilla worker stopped at start-up; its log ends:\n{worker.log_tail()}")
    state.write_endpoint(url, port, redis)
    ensure_workspace_members(
        OwnerApi(url, credentials.owner_api_key), credentials.workspace, credentials.annotators, new_annotators
    )
    return UpResult(_connection(url, credentials), already_running=False)


def down(home: Path | None = None, *, timeout: float = 15.0) -> list[str]:
    """Stop the server, the worker and a private Redis of ``home``: the names of those that ran."""
    state = _state(home)
    if not state.root.exists():
        return []
    with exclusive(state.lock_file):
        processes = [_server_process(state), _worker_process(state)]
        redis = private_redis.process(state)
        if redis is not None:
            processes.append(redis)
        return [process.name for process in processes if process.stop(timeout)]


def status(home: Path | None = None) -> EmbeddedStatus:
    state = _state(home)
    server_pid = _server_process(state).pid()
    redis = private_redis.process(state)
    endpoint = state.read_endpoint() or {}
    url = endpoint.get("url") if server_pid is not None else None
    return EmbeddedStatus(
        state_dir=state.root,
        url=url,
        server_pid=server_pid,
        worker_pid=_worker_process(state).pid(),
        redis_pid=redis.pid() if redis is not None else None,
        answering=url is not None and is_answering(url),
    )


def connection(home: Path | None = None) -> EmbeddedConnection | None:
    """How to reach the embedded server of ``home``; None when it is not running."""
    state = _state(home)
    credentials = state.read_credentials()
    endpoint = state.read_endpoint()
    if credentials is None or endpoint is None or _server_process(state).pid() is None:
        return None
    return _connection(endpoint["url"], credentials)


def _state(home: Path | None) -> StateDir:
    return StateDir.of_home(home if home is not None else get_settings().home)


def _connection(url: str, credentials: Credentials) -> EmbeddedConnection:
    return EmbeddedConnection(
        url=url,
        api_key=credentials.owner_api_key,
        owner_username=credentials.owner_username,
        owner_password=credentials.owner_password,
        workspace=credentials.workspace,
        annotators=dict(credentials.annotators),
    )


def _updated_credentials(
    state: StateDir, workspace: str | None, annotators: Sequence[str]
) -> tuple[Credentials, list[str]]:
    """The stored credentials with the requested workspace and annotators; generated the first time."""
    for name in [workspace or "", *annotators]:
        if name and not _USERNAME.match(name):
            raise EmbeddedServerError(f"{name!r}: use lowercase letters, digits, '-' and '_' only")
    credentials = state.read_credentials()
    if credentials is None:
        if state.database.exists():
            raise EmbeddedServerError(
                f"{state.credentials_file} is missing while {state.database} exists: the owner's password and "
                f"API key are lost. Restore the file, or remove {state.root} to start afresh (losing its datasets)"
            )
        credentials = Credentials.generate()
    if workspace:
        credentials.workspace = workspace
    new = [name for name in dict.fromkeys(annotators) if name not in credentials.annotators]
    for name in new:
        credentials.annotators[name] = new_password()
    state.write_credentials(credentials)
    return credentials, new


def _server_process(state: StateDir) -> ManagedProcess:
    return _role_process(state, "server")


def _worker_process(state: StateDir) -> ManagedProcess:
    return _role_process(state, "worker")


def _role_process(state: StateDir, role: str) -> ManagedProcess:
    # The launcher's command line holds "--state-dir\0ROOT\0ROLE\0": a process of this home only.
    marker = f"\0{state.root}\0{role}\0"
    return ManagedProcess(role, state.pid_file(role), state.log_file(role), marker=marker)


def _launch(python: Path, state: StateDir, role: str) -> list[str]:
    return [str(python), str(LAUNCHER), "--state-dir", str(state.root), role]


def _base_env() -> dict[str, str]:
    """This process's environment without what would leak into the server's Python or settings."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("ARGILLA_")}


def _server_env(state: StateDir, redis_url: str) -> dict[str, str]:
    return {
        **_base_env(),
        "ARGILLA_HOME_PATH": str(state.root),
        "ARGILLA_DATABASE_URL": state.database_url,
        "ARGILLA_REDIS_URL": redis_url,
        "ARGILLA_SEARCH_ENGINE": "driftloop-sql",
        "ARGILLA_AUTH_SECRET_KEY": state.auth_secret(),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _redis(state: StateDir, setting: str, report: Progress) -> str:
    if setting == private_redis.EMBEDDED:
        report("starting a private redis-server")
        return private_redis.ensure_running(state, _base_env())
    private_redis.check(setting)
    return setting


def _prepare_database(
    state: StateDir, python: Path, env: dict[str, str], credentials: Credentials, report: Progress
) -> None:
    """Migrate the database and create the owner, once per server version (both are idempotent)."""
    digest = requirements_digest()
    marker = state.database_marker
    if marker.exists() and marker.read_text().strip() == digest:
        return
    report("migrating the Argilla database and creating its owner")
    owner = (
        f"database users create_default --password={shlex.quote(credentials.owner_password)} "
        f"--api-key={shlex.quote(credentials.owner_api_key)} --quiet"
    )
    result = subprocess.run(
        [*_launch(python, state, "cli"), "database migrate", owner],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise EmbeddedServerError(f"migrating the Argilla database failed:\n{tail}")
    marker.write_text(digest + "\n")


def _wait_until_answering(
    server: ManagedProcess, url: str, timeout: float, stop_on_failure: Sequence[ManagedProcess]
) -> None:
    deadline = time.monotonic() + timeout
    while not is_answering(url):
        failure = None
        if server.pid() is None:
            failure = "the Argilla server stopped at start-up"
        elif time.monotonic() > deadline:
            failure = f"the Argilla server did not answer at {url} within {timeout:.0f} s"
        if failure is not None:
            tail = server.log_tail()
            for process in stop_on_failure:
                process.stop()
            raise EmbeddedServerError(f"{failure}; its log ({server.log_file}) ends:\n{tail}")
        time.sleep(0.25)
