"""The server's virtualenv is found by its requirements and rebuilt unless its marker says complete."""

from pathlib import Path

import pytest

from driftloop.labeling.server import environment


def test_only_a_venv_marked_for_these_requirements_is_ready(tmp_path: Path):
    assert not environment.is_ready(tmp_path)
    (tmp_path / environment.READY_MARKER).write_text("0123456789ab\n")
    assert not environment.is_ready(tmp_path)  # built for other requirements: rebuilt

    (tmp_path / environment.READY_MARKER).write_text(environment.requirements_digest() + "\n")
    assert environment.is_ready(tmp_path)
    assert environment.ensure_server_venv(tmp_path) == tmp_path / "bin" / "python"  # no build


def test_the_default_venv_is_shared_and_named_by_the_requirements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = environment.default_venv_path()
    assert path == tmp_path / "driftloop" / f"argilla-server-{environment.requirements_digest()}"


def test_a_build_step_reports_its_progress_not_pips_noise_and_a_failure_keeps_the_whole_tail() -> None:
    import sys

    from driftloop.labeling.server.errors import EmbeddedServerError

    pip_like = "\n".join(
        [
            "Looking in indexes: https://pypi.org/simple",
            "WARNING: Location 'file:///opt/pypi/simple/x/' is ignored: it is neither a file nor a directory.",
            "Collecting argilla-server==2.8.0 (from -r requirements.txt (line 4))",
            "  Downloading argilla_server-2.8.0-py3-none-any.whl (5.7 MB)",
            "Installing collected packages: brotli, xxhash, argilla-server",
            "ERROR: Could not install packages due to an OSError: disk full",
        ]
    )
    reported: list[str] = []
    with pytest.raises(EmbeddedServerError) as failure:
        environment._run([sys.executable, "-c", f"print({pip_like!r}); raise SystemExit(1)"], reported.append)

    assert reported == [
        "resolving argilla-server==2.8.0",
        "installing 3 packages (the longest step)",
        "ERROR: Could not install packages due to an OSError: disk full",
    ]
    assert "WARNING: Location" in str(failure.value) and "Downloading argilla_server" in str(failure.value)
