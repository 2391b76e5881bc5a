"""The Argilla server's own virtualenv: built once per requirements set and Python version, shared by
every ``DRIFTLOOP_HOME``.

argilla-server pins fastapi, pydantic, httpx and typer ranges that clash with the project's, so it
runs from a separate virtualenv as a separate process. Building it downloads and installs about
580 MB (minutes); a marker written last tells a finished virtualenv from a half-built one, which
is rebuilt.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from driftloop.labeling.server.errors import EmbeddedServerError
from driftloop.labeling.server.state import exclusive
from driftloop.platform.config import get_settings

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
LAUNCHER = Path(__file__).with_name("backend") / "launch.py"
READY_MARKER = ".driftloop-ready"

Progress = Callable[[str], None]


def requirements_digest() -> str:
    """Names a requirements set on this Python: a change of either gets a new virtualenv."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:12]


def default_venv_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "driftloop" / f"argilla-server-{requirements_digest()}"


def venv_path() -> Path:
    return get_settings().argilla_venv or default_venv_path()


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def is_ready(venv: Path) -> bool:
    marker = venv / READY_MARKER
    return marker.is_file() and marker.read_text().strip() == requirements_digest()


def ensure_server_venv(venv: Path | None = None, progress: Progress | None = None) -> Path:
    """The Python of a complete server virtualenv at ``venv`` (default: ``venv_path()``), built first
    when missing or half-built. Safe to call from several processes at once."""
    venv = venv or venv_path()
    if is_ready(venv):
        return venv_python(venv)
    report = progress or (lambda line: None)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(venv.parent / f".{venv.name}.lock"):
        if not is_ready(venv):  # another process may have built it while this one waited
            _build(venv, report)
    return venv_python(venv)


def _build(venv: Path, report: Progress) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    report(f"creating the Argilla server's virtualenv at {venv} (once: it installs about 580 MB, a few minutes)")
    _run([sys.executable, "-m", "venv", str(venv)], report)
    python = str(venv_python(venv))
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)], report)
    _run([python, "-m", "pip", "check", "--disable-pip-version-check"], report)
    (venv / READY_MARKER).write_text(requirements_digest() + "\n")
    report("the Argilla server's virtualenv is ready")


def _run(command: list[str], report: Progress) -> None:
    """Run a build step, passing on the lines that say how far it is; fail with the output's tail."""
    tail: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail = [*tail[-29:], line]
                shown = _worth_showing(line)
                if shown:
                    report(shown)
    if process.returncode != 0:
        shown = "\n".join(tail)
        raise EmbeddedServerError(
            f"building the Argilla server's virtualenv failed ({' '.join(command[:4])} … exited "
            f"{process.returncode}):\n{shown}"
        )


def _worth_showing(line: str) -> str | None:
    """What a user watching the build needs of a pip line: which package it is at, and the totals.
    Download bars, index warnings and "Requirement already satisfied" are pip's, not ours; they
    stay in the tail that a failure reports."""
    if line.startswith("Collecting "):
        return "resolving " + line.removeprefix("Collecting ").split(" ", 1)[0]
    if line.startswith("Installing collected packages:"):
        return f"installing {len(line.split(':', 1)[1].split(','))} packages (the longest step)"
    if line.startswith("Successfully installed "):
        return f"installed {len(line.split()) - 2} packages"
    if line.startswith(("ERROR", "No broken requirements")):
        return line
    return None
