"""The one-way dependency rule, as import-linter contracts (``[tool.importlinter]`` in
pyproject.toml): the platform's core imports neither ``driftloop.labeling`` nor
``driftloop.workers``, and nothing imports the edges (the CLI and the API) that wire them in.

The contracts run against the installed package, as ``lint-imports`` does from the repository
root; and, rewritten for a throwaway package of the same shape, they are shown to catch the
imports they forbid, lazy ones inside functions included."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
FAKE = "fakeloop"

# The real layout in miniature: a namespace platform/ whose core modules sit beside its edges,
# and the edges importing labeling, as platform/cli and platform/api do.
CLEAN_TREE = {
    "platform/store/__init__.py": "",
    "platform/store/models.py": "",
    "platform/selection/__init__.py": "",
    "platform/selection/rounds.py": f"from {FAKE}.platform.store import models\n",
    "platform/cli/__init__.py": "",
    "platform/cli/labeling.py": f"from {FAKE}.labeling.push import push_pending\n",
    "platform/api/__init__.py": "",
    "platform/cli/jobs.py": f"def run():\n    from {FAKE}.labeling import register_jobs\n",
    "platform/api/routes.py": f"def sync():\n    from {FAKE}.labeling import push\n",
    "platform/api/app.py": f"from {FAKE}.labeling import register_jobs\n",
    "labeling/__init__.py": "def register_jobs(): ...\n",
    "labeling/push.py": f"from {FAKE}.platform.store import models\n\n\ndef push_pending(): ...\n",
    "workers/__init__.py": f"from {FAKE}.platform.selection import rounds\n",
    "workers/app.py": f"from {FAKE}.labeling import register_jobs\n",
    "platform/cli/worker.py": f"def worker():\n    from {FAKE}.workers.app import create_celery\n",
    "migrations/__init__.py": f"from {FAKE}.platform.store import models\n",
}


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # --no-cache: grimp's cache would be written into the working directory.
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(config), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def importlinter_config() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["tool"]["importlinter"]


def renamed(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("driftloop.", f"{FAKE}.")
    if isinstance(value, list):
        return [renamed(v) for v in value]
    return value


def write_fake_project(root: Path, tree: dict[str, str]) -> Path:
    """A package ``fakeloop`` laid out as ``tree`` under ``root``, and a pyproject.toml holding the
    real contracts with ``driftloop.`` renamed to ``fakeloop.``."""
    for name, source in tree.items():
        path = root / FAKE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    config = importlinter_config()
    # JSON's strings, lists and booleans are valid TOML values.
    lines = ["[tool.importlinter]"]
    lines += [f"{key} = {json.dumps(renamed(value))}" for key, value in config.items() if key != "contracts"]
    for contract in config["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{key} = {json.dumps(renamed(value))}" for key, value in contract.items()]
    pyproject = root / "pyproject.toml"
    pyproject.write_text("\n".join(lines) + "\n")
    return pyproject


def test_the_installed_packages_keep_the_contracts() -> None:
    result = lint_imports(REPO / "pyproject.toml", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert len(importlinter_config()["contracts"]) == 2  # each one listed here is checked above


def test_a_package_of_the_same_shape_keeps_them_while_only_its_edges_import_labeling(tmp_path: Path) -> None:
    result = lint_imports(write_fake_project(tmp_path, CLEAN_TREE), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "source", "chain"),
    [
        pytest.param(
            "platform/selection/rounds.py",
            f"def queue():\n    from {FAKE}.labeling.push import push_pending\n",
            f"{FAKE}.platform.selection.rounds -> {FAKE}.labeling.push",
            id="core-imports-labeling-inside-a-function",
        ),
        pytest.param(
            "platform/store/models.py",
            f"import {FAKE}.workers\n",
            f"{FAKE}.platform.store.models -> {FAKE}.workers",
            id="core-imports-workers",
        ),
        pytest.param(
            "platform/selection/rounds.py",
            f"from {FAKE}.platform.cli import labeling\n",
            f"{FAKE}.platform.selection.rounds -> {FAKE}.platform.cli.labeling",
            id="core-reaches-labeling-through-the-cli",
        ),
    ],
)
def test_the_contracts_report_a_forbidden_import(tmp_path: Path, module: str, source: str, chain: str) -> None:
    config = write_fake_project(tmp_path, {**CLEAN_TREE, module: source})
    result = lint_imports(config, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and chain in result.stdout, result.stdout
