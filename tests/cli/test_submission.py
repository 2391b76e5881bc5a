"""Submitting a training or a selection checks what it can before a job exists, the same way the
foreground round does, and imports nothing heavy: `--no-wait` answers as fast as `--help`.

Before (issue 21): `train nosuchtask --no-wait` took ~12 s (torch, transformers and scikit-learn
imported through the round's module) to say the task does not exist, and a training with no labels
was queued, then failed on the worker with a traceback."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psutil

from tests.conftest import run_cli

HEAVY = ("torch", "transformers", "peft", "faiss", "argilla", "sklearn")

# A fresh interpreter submits three trainings through the CLI and reports what it imported.
_PROBE = """
import json, sys
from typer.testing import CliRunner
from driftloop.platform.cli.app import app

runner = CliRunner()
ran = []
for args in (
    ["train", "nosuch", "--no-wait"], ["train", "empty", "--no-wait"], ["train", "news", "--no-wait"],
    ["select", "nosuch", "--budget", "1", "--no-wait"], ["select", "empty", "--budget", "1", "--no-wait"],
    ["select", "news", "--budget", "1", "--strategy", "random", "--no-wait"],
):
    result = runner.invoke(app, args)
    ran.append({"args": args, "exit": result.exit_code, "output": result.output})
print(json.dumps({"ran": ran, "loaded": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {"DRIFTLOOP_HOME": str(tmp_path / "home"), "DRIFTLOOP_DATABASE_URL": "", "DRIFTLOOP_BROKER_URL": "", "COLUMNS": "200"}


def test_no_wait_refuses_what_the_round_refuses_with_the_same_error_and_queues_nothing(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run_cli("task", "create", "empty", "--labels", "a,b", env=env).returncode == 0
    for command in (["train"], ["select", "--budget", "1"]):
        for task in ("nosuch", "empty"):
            args = [command[0], task, *command[1:]]
            foreground = run_cli(*args, env=env)
            queued = run_cli(*args, "--no-wait", env=env)
            assert foreground.returncode == queued.returncode != 0, (foreground.stderr, queued.stderr)
            assert foreground.stderr == queued.stderr and foreground.stderr.strip(), args
            assert b"Traceback" not in foreground.stderr + queued.stderr
    assert b"nosuch" in run_cli("train", "nosuch", "--no-wait", env=env).stderr
    assert b"has no training labels yet" in run_cli("train", "empty", "--no-wait", env=env).stderr
    assert b"no unlabeled, unpicked texts" in run_cli("select", "empty", "--budget", "1", "--no-wait", env=env).stderr
    listed = run_cli("jobs", "list", "--json", env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []  # neither made a job


def test_one_class_is_refused_before_queueing(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run_cli("task", "create", "mono", "--labels", "a,b", env=env).returncode == 0
    texts = "".join(json.dumps({"id": f"t{i}", "text": f"text number {i}"}) + "\n" for i in range(6))
    assert run_cli("ingest", "mono", "-", env=env, stdin=texts.encode()).returncode == 0
    labels = "".join(json.dumps({"id": f"t{i}", "label": "a"}) + "\n" for i in range(6))
    assert run_cli("label", "import", "mono", "-", env=env, stdin=labels.encode()).returncode == 0
    queued = run_cli("train", "mono", "--no-wait", env=env)
    assert queued.returncode != 0 and b"one class so far" in queued.stderr
    assert json.loads(run_cli("jobs", "list", "--json", env=env).stdout) == []


def test_submitting_imports_no_heavy_library(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run_cli("task", "create", "empty", "--labels", "a,b", env=env).returncode == 0
    assert run_cli("task", "create", "news", "--labels", "a,b", env=env).returncode == 0
    texts = "".join(json.dumps({"id": f"t{i}", "text": f"text number {i}"}) + "\n" for i in range(9))  # 3 left to pick
    assert run_cli("ingest", "news", "-", env=env, stdin=texts.encode()).returncode == 0
    labels = "".join(json.dumps({"id": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(6))
    assert run_cli("label", "import", "news", "-", env=env, stdin=labels.encode()).returncode == 0

    probe = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{_PROBE}"], env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False
    )
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout)
    exits = {" ".join(r["args"][:2]): r["exit"] for r in report["ran"]}
    assert [exits[f"{c} {t}"] != 0 for c in ("train", "select") for t in ("nosuch", "empty")] == [True] * 4, report["ran"]
    assert exits["train news"] == 0 and exits["select news"] == 0, report["ran"]
    queued = [int(m.group(1)) for r in report["ran"] if (m := re.search(r"job (\d+) queued", r["output"]))]
    try:
        assert len(queued) == 2
        assert report["loaded"] == []
    finally:  # the queued rounds run in detached processes: cancel them and wait for those to end
        for job in queued:
            run_cli("jobs", "cancel", str(job), env=env)
            shown = json.loads(run_cli("jobs", "show", str(job), "--json", env=env).stdout)
            if shown.get("owner_pid"):
                try:
                    psutil.Process(shown["owner_pid"]).wait(timeout=120)
                except (psutil.NoSuchProcess, psutil.TimeoutExpired):
                    pass
