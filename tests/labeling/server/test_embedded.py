"""up / down / status of the embedded server, through its functions and the `driftloop argilla` group."""

import json
import os
import stat
from pathlib import Path

import argilla as rg
import httpx
import pytest
from typer.testing import CliRunner

from driftloop.labeling.server import embedded
from driftloop.labeling.server.errors import EmbeddedServerError
from driftloop.labeling.server.state import StateDir
from driftloop.platform.cli.argilla import app
from driftloop.platform.config import get_settings


@pytest.fixture
def home_env(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Point the settings (read by the CLI) at a home, for the length of a test."""

    def use(home: Path) -> None:
        monkeypatch.setenv("DRIFTLOOP_HOME", str(home))
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def test_status_and_connection_describe_the_running_server(argilla_server):
    current = embedded.status(argilla_server.home)
    assert current.running and current.answering and current.worker_pid and current.redis_pid
    assert current.url == argilla_server.url

    connection = embedded.connection(argilla_server.home)
    assert connection is not None
    assert (connection.url, connection.api_key, connection.workspace) == (
        argilla_server.url,
        argilla_server.api_key,
        argilla_server.workspace,
    )
    assert set(connection.annotators) == {"annotator-1", "annotator-2"}
    assert all(len(password) >= 8 for password in connection.annotators.values())

    state = StateDir.of_home(argilla_server.home)
    for secret in (state.credentials_file, state.root / "auth-secret"):
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600


def test_restart_keeps_port_database_and_logins(argilla_server, argilla_client, dataset_name):
    rg.Dataset(
        name=dataset_name,
        workspace=argilla_server.workspace,
        settings=rg.Settings(fields=[rg.TextField("text")], questions=[rg.LabelQuestion("label", labels=["a", "b"])]),
        client=argilla_client,
    ).create().records.log([rg.Record(id="kept", fields={"text": "survives a restart"})])
    url, api_key = argilla_server.url, argilla_server.api_key

    argilla_server.stop()
    try:
        assert not embedded.status(argilla_server.home).running
        assert embedded.connection(argilla_server.home) is None
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/api/v1/status", timeout=2)
    finally:
        argilla_server.start()

    assert (argilla_server.url, argilla_server.api_key) == (url, api_key)
    client = rg.Argilla(api_url=url, api_key=api_key)
    dataset = client.datasets(name=dataset_name, workspace=argilla_server.workspace)
    assert [record.id for record in dataset.records] == ["kept"]
    with argilla_server.annotator_http("annotator-1") as annotator:
        assert annotator.get("/api/v1/me").json()["username"] == "annotator-1"


def test_up_again_is_idempotent_and_adds_annotators(argilla_server):
    result = embedded.up(argilla_server.home, annotators=["annotator-3"], workspace=argilla_server.workspace)
    assert result.already_running
    assert result.connection.url == argilla_server.url
    assert set(result.connection.annotators) == {"annotator-1", "annotator-2", "annotator-3"}
    assert result.connection.annotators["annotator-1"] == argilla_server.annotators["annotator-1"]

    token = httpx.post(
        f"{argilla_server.url}/api/v1/token",
        data={"username": "annotator-3", "password": result.connection.annotators["annotator-3"]},
    )
    assert token.status_code == 201


def test_up_refuses_a_port_in_use(argilla_server, tmp_path):
    with pytest.raises(EmbeddedServerError, match=f"port {argilla_server.port} .* in use"):
        embedded.up(tmp_path, port=argilla_server.port, redis_url="embedded")
    assert not embedded.status(tmp_path).running


def test_cli_status_and_up_on_a_running_server(argilla_server, home_env):
    home_env(argilla_server.home)
    runner = CliRunner()

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    assert f"running at {argilla_server.url}, answering" in status.output
    as_json = runner.invoke(app, ["status", "--json"])
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.stdout)
    assert (shown["running"], shown["answering"], shown["url"]) == (True, True, argilla_server.url)
    assert isinstance(shown["server_pid"], int) and isinstance(shown["worker_pid"], int)

    up = runner.invoke(app, ["up", "--annotators", "annotator-1", "--workspace", argilla_server.workspace])
    assert up.exit_code == 0, up.output
    assert f"already running at {argilla_server.url}" in up.output
    assert f"annotator-1 / {argilla_server.annotators['annotator-1']}" in up.output
    assert f"DRIFTLOOP_ARGILLA_API_KEY={argilla_server.api_key}" in up.output


def test_cli_status_and_down_when_nothing_runs(tmp_path, home_env):
    home_env(tmp_path)
    runner = CliRunner()

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 1
    assert "not running" in status.output
    as_json = runner.invoke(app, ["status", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) == {
        "running": False,
        "answering": False,
        "url": None,
        "server_pid": None,
        "worker_pid": None,
        "redis_pid": None,
        "state_dir": str(tmp_path / "argilla"),
    }
    down = runner.invoke(app, ["down"])
    assert down.exit_code == 0
    assert "was not running" in down.output
