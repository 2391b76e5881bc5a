"""The CLI answers `--help` and lists tasks without importing the heavy libraries: those load
only in the commands that use them. Checked in a fresh interpreter, on what it imported."""

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "peft", "faiss", "argilla", "sklearn")

# Runs in a fresh interpreter: every `--help` of the command tree, then a task created and listed
# on the private home the environment names; prints what ran and which heavy modules got loaded.
_PROBE = """
import json, sys

import typer
from typer.testing import CliRunner

from driftloop.platform.cli.app import app

def paths(command, prefix):
    # a group has sub-commands (typer ships its own click, so no isinstance on click's Group)
    yield prefix
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from paths(sub, [*prefix, name])

runner = CliRunner()
ran = []
for path in paths(typer.main.get_command(app), []):
    result = runner.invoke(app, [*path, "--help"])
    ran.append({"args": [*path, "--help"], "exit": result.exit_code, "output": result.output})
for args in (["task", "create", "news-desk", "--labels", "business,tech"], ["task", "list"]):
    result = runner.invoke(app, args)
    ran.append({"args": args, "exit": result.exit_code, "output": result.output})
print(json.dumps({"ran": ran, "loaded": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def test_help_of_every_command_and_task_list_import_no_heavy_library(tmp_path: Path) -> None:
    env = {**os.environ, "DRIFTLOOP_HOME": str(tmp_path / "home"), "DRIFTLOOP_DATABASE_URL": "", "COLUMNS": "200"}
    probe = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{_PROBE}"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout)

    ran = {" ".join(r["args"]): r for r in report["ran"]}
    failed = {args: r["output"] for args, r in ran.items() if r["exit"] != 0}
    assert failed == {}
    # the walk reached the whole tree, groups and their commands alike
    for command in ("", "task list", "models list", "jobs show", "train", "select", "sync", "index status", "argilla up", "serve", "demo", "schedule add", "beat"):
        assert f"{command} --help".strip() in ran, command
        assert ran[f"{command} --help".strip()]["output"].lstrip().startswith("Usage: ")
    assert "Training mode: head, full, lora." in ran["train --help"]["output"]
    assert "news-desk" in ran["task list"]["output"] and "business, tech" in ran["task list"]["output"]
    assert (tmp_path / "home" / "driftloop.db").exists()

    assert report["loaded"] == []
