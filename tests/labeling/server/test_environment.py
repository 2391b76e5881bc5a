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
