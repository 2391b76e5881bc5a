"""`driftloop argilla up` (and the demo, which says the same) tells how long the start takes from
what it will do: "a few minutes" only when the server's virtualenv must be built. Its failure is
one line, and the stage's progress line says it failed."""

import os
import socket
import subprocess
from pathlib import Path

from driftloop.labeling.server import embedded
from driftloop.labeling.server.environment import READY_MARKER, requirements_digest
from tests.conftest import DRIFTLOOP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _built_venv(root: Path) -> Path:
    """A virtualenv marked built for these requirements, whose Python fails as a broken install would."""
    (root / "bin").mkdir(parents=True)
    python = root / "bin" / "python"
    python.write_text("#!/bin/sh\necho 'alembic: migration exploded' >&2\necho 'second line of its log' >&2\nexit 3\n")
    python.chmod(0o755)
    (root / READY_MARKER).write_text(requirements_digest() + "\n")
    return root


def test_up_work_says_build_only_for_a_virtualenv_not_built_yet(tmp_path: Path) -> None:
    home, venv = tmp_path / "home", tmp_path / "venv"
    venv.mkdir()
    assert embedded.up_work(home, venv) == "build"
    _built_venv(tmp_path / "built")
    assert embedded.up_work(home, tmp_path / "built") == "start"


def test_a_start_with_the_virtualenv_built_says_seconds_and_its_failure_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "DRIFTLOOP_HOME": str(home),
        "DRIFTLOOP_DATABASE_URL": "",
        "DRIFTLOOP_ARGILLA_VENV": str(_built_venv(tmp_path / "venv")),
        "DRIFTLOOP_ARGILLA_PORT": str(_free_port()),
        # only pinged before the (failing) migration; nothing is written to it
        "DRIFTLOOP_ARGILLA_REDIS_URL": "redis://127.0.0.1:6379/14",
    }
    up = subprocess.run([DRIFTLOOP, "argilla", "up"], env=env, capture_output=True, timeout=300, check=False)
    stderr = up.stderr.decode()
    assert up.returncode == 1, stderr
    assert "starting the embedded Argilla (seconds" in stderr and "minutes" not in stderr
    log = home / "logs" / "driftloop.log"
    assert stderr.splitlines()[-1] == f"error: migrating the Argilla database failed: (all of it in {log})"
    assert "starting the embedded Argilla (seconds; a minute on a busy machine): failed after " in stderr
    assert "migration exploded" not in stderr and "migration exploded" in log.read_text()
