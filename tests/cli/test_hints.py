"""The commands driftloop suggests (`driftloop task list`) run as printed in a plain
shell: after `make demo` the virtualenv is not on PATH, so a hint names the driftloop that runs,
by its path, and only says `driftloop` when PATH finds that one."""

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import DRIFTLOOP, REPO

PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"  # a shell without the virtualenv activated


def _hint(home: Path, cwd: Path, path: str) -> str:
    """The command an error tells to run next (`no task named …, see `driftloop task list``), as printed."""
    env = {**os.environ, "DRIFTLOOP_HOME": str(home), "DRIFTLOOP_DATABASE_URL": "", "PATH": path}
    refused = subprocess.run([DRIFTLOOP, "task", "add-labels", "no-such-task", "x"], cwd=cwd, env=env, capture_output=True, check=False)
    assert refused.returncode == 2, refused.stderr.decode()
    hint = re.search(r"`([^`]*task list)`", refused.stderr.decode())
    assert hint, refused.stderr.decode()
    return hint.group(1)


def test_a_hint_runs_as_printed_in_a_shell_without_the_virtualenv_on_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "DRIFTLOOP_HOME": str(home), "DRIFTLOOP_DATABASE_URL": "", "PATH": PLAIN_PATH}
    created = subprocess.run([DRIFTLOOP, "task", "create", "news", "--labels", "a,b"], env=env, capture_output=True, check=False)
    assert created.returncode == 0, created.stderr.decode()

    hint = _hint(home, tmp_path, PLAIN_PATH)
    assert hint == f"{DRIFTLOOP} task list"  # outside the checkout: the whole path
    ran = subprocess.run(["sh", "-c", hint], cwd=tmp_path, env=env, capture_output=True, check=False)
    assert ran.returncode == 0, ran.stderr.decode()
    assert b"news" in ran.stdout  # driftloop answered, from a shell that has no `driftloop` on PATH

    # from the checkout, as after `make demo`: the path as typed there
    assert _hint(home, REPO, PLAIN_PATH) == f"{os.path.relpath(DRIFTLOOP, REPO)} task list"
    # with the virtualenv on PATH (activated), the plain name
    assert _hint(home, tmp_path, f"{Path(DRIFTLOOP).parent}:{PLAIN_PATH}") == "driftloop task list"
