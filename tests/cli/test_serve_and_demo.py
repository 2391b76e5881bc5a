"""The README's main job and the API server, each as a real process."""

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.api_keys import cli_key
from tests.browser import launch_chromium
from tests.conftest import DRIFTLOOP, run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(1800)  # two whole demos: embedding, Argilla start, four training rounds
def test_demo_learns_in_rounds_labelled_through_the_embedded_argilla(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        "DRIFTLOOP_HOME": str(tmp_path),
        "DRIFTLOOP_DATABASE_URL": "",
        "DRIFTLOOP_ARGILLA_PORT": str(port),
        # Argilla's job queues have fixed names: a Redis database of its own, apart from the fixture's server
        "DRIFTLOOP_ARGILLA_REDIS_URL": "redis://127.0.0.1:6379/7",
        "COLUMNS": "120",
    }
    try:
        returncode, lines = _timed_lines([DRIFTLOOP, "demo"], env, timeout=900)
        output = "\n".join(line for _, line in lines)
        assert returncode == 0, output
        # piped to a file (no terminal), it still says what it is doing at least every 30 s
        gaps = [(later - earlier, line) for (earlier, _), (later, line) in zip(lines, lines[1:], strict=False)]
        assert max(gaps)[0] <= 30, max(gaps)
        assert "created task bbc-news with labels business, entertainment, politics, sports, tech" in output
        assert "ingested 2225, duplicates 0, rejected 0" in output
        assert f"Argilla UI at http://127.0.0.1:{port}" in output
        assert re.search(r"demo-bot answered 250 records of round \d+ in Argilla", output)
        assert "sync: 250 responses read, 250 labels new or changed" in output
        # every label trains (no eval split by default: the gate judges on cross-fitted evidence)
        assert re.search(r"candidate version 1 from scratch: 250 new labels, 0 replayed", output)
        assert "version 1 promoted to champion" in output
        # rounds run as jobs of the in-process runner; the trainings are fired by the stored schedule
        assert re.search(r"schedule (\d+): train bbc-news after 150 labels", output)
        assert re.search(r"schedule \d+ fired \(after 150 labels: 250 new\): training job \d+", output)
        assert "jobs of this run" in output
        # v1 was judged by cross-validation (provisional): v2 learns every label by the same recipe and
        # is gated against v1 on the 250 labels v1 never saw
        assert re.search(r"candidate version 2 from scratch: 500 new labels, 0 replayed", output)
        assert "20 texts wait in Argilla for a person" in output and "log in as annotator-1 /" in output
        # its hints run as printed, in a shell like the one the demo ran in
        hint = re.search(r"\(`(.+) schedule list`\)", output)
        assert hint, output
        listed = subprocess.run(["sh", "-c", f"{hint.group(1)} schedule list"], env={**os.environ, **env}, capture_output=True, check=False)
        assert listed.returncode == 0 and b"bbc-news" in listed.stdout, listed.stderr.decode()

        rerun = run_cli("demo", env=env, timeout=900)
        second = rerun.stdout.decode()
        assert "ingested 0, duplicates 2225, rejected 0" in second
        # Argilla runs already: nothing to build or start, and the demo does not say it will take minutes
        assert "the embedded Argilla runs already" in rerun.stderr.decode() and "minutes" not in rerun.stderr.decode()
        assert f"Argilla UI at http://127.0.0.1:{port} (it was running already)" in second
        # the bot answers its own rounds only: the 20 left for a person stay theirs
        assert len(re.findall(r"demo-bot answered 250 records of round", second)) == 2
        assert "candidate version 3 from champion v" in second  # it keeps learning on the next batches

        # the demo's key, as printed, predicts through `driftloop serve`; the previous run's is revoked
        first_key = re.search(r"export DRIFTLOOP_KEY=(dlk_\w+)", output)
        key = re.search(r"export DRIFTLOOP_KEY=(dlk_\w+)", second)
        assert first_key and key and f"the previous demo key {first_key.group(1).split('_')[1]} is revoked" in second
        assert 'curl -s -H "Authorization: Bearer $DRIFTLOOP_KEY"' in second and "/v1/tasks/bbc-news/predict" in second
        with _serving(tmp_path) as base:
            url = f"{base}/v1/tasks/bbc-news/predict"
            predicted = httpx.post(url, json={"texts": ["Shares fell"]}, headers={"Authorization": f"Bearer {key.group(1)}"})
            assert predicted.status_code == 200 and predicted.json()["predictions"][0]["label"], predicted.text
            old = httpx.post(url, json={"texts": ["Shares fell"]}, headers={"Authorization": f"Bearer {first_key.group(1)}"})
            assert old.status_code == 401
    finally:
        run_cli("argilla", "down", env=env)


def _timed_lines(command: list[str], env: dict[str, str], timeout: float) -> tuple[int, list[tuple[float, str]]]:
    """Run ``command`` with stdout and stderr piped together; its exit status and each line with
    the time it arrived."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env})
    assert process.stdout is not None
    lines = []
    for raw in process.stdout:
        lines.append((time.monotonic() - started, raw.decode(errors="replace").rstrip("\n")))
        assert time.monotonic() - started < timeout, f"still running after {timeout}s"
    return process.wait(timeout=60), lines


def _env(home: Path) -> dict[str, str]:
    return {"DRIFTLOOP_HOME": str(home), "DRIFTLOOP_DATABASE_URL": ""}


@contextmanager
def _serving(home: Path, workers: int = 1) -> Iterator[str]:
    """``driftloop serve`` on a free port of 127.0.0.1, as a real process: its base URL."""
    port = _free_port()
    command = [DRIFTLOOP, "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, env={**os.environ, **_env(home)}, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # readiness, not speed: start-up imports torch, slow on a busy machine
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_serve_answers_over_http_and_metrics_count_every_worker_process(tmp_path: Path) -> None:
    with _serving(tmp_path, workers=2) as base:
        admin = {"Authorization": f"Bearer {cli_key(_env(tmp_path))}"}
        assert httpx.post(f"{base}/v1/tasks", json={"name": "live", "labels": ["a", "b"]}).status_code == 401
        assert httpx.post(f"{base}/v1/tasks", json={"name": "live", "labels": ["a", "b"]}, headers=admin).status_code == 201
        ingest = {"X-API-Key": cli_key(_env(tmp_path), "ingest")}
        response = httpx.post(f"{base}/v1/tasks/live/texts", json=[{"text": "over the wire"}, {"text": ""}], headers=ingest)
        assert response.status_code == 200
        assert [r["status"] for r in response.json()["results"]] == ["stored", "rejected"]
        for i in range(20):  # spread over both processes by the kernel
            assert httpx.post(f"{base}/v1/tasks/live/texts", json=[{"text": f"text {i}"}], headers=ingest).status_code == 200
        for _ in range(4):  # whichever process answers the scrape reports both processes' counts
            scraped = httpx.get(f"{base}/metrics").text
            assert 'driftloop_ingest_records_total{status="stored",task="live"} 21.0' in scraped, scraped


def test_the_api_docs_render_in_a_browser_without_leaving_the_host(tmp_path: Path) -> None:
    """/docs (Swagger UI) draws the operations from files the server ships: a machine without
    internet gets working docs, and the browser asks nothing of any other host."""
    with _serving(tmp_path) as base, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))

            page.goto(f"{base}/docs")
            operation = page.locator(".opblock", has_text="/v1/tasks/{task}/texts")
            # generous: a busy CI machine parses Swagger UI's 1.5 MB of JavaScript slowly
            expect(operation.first).to_be_visible(timeout=60_000)
            expect(page.locator(".opblock-summary-method", has_text="POST").first).to_be_visible()
        finally:
            browser.close()
        assert httpx.get(f"{base}/redoc").status_code == 404  # ReDoc fetches its logo from a CDN
    assert any(url.endswith("/swagger-ui-bundle.js") for url in requested)
    assert [url for url in requested if not _on_this_host(url)] == []


def _on_this_host(url: str) -> bool:
    """data: URLs are inline, and a blob: URL names an object the page made: neither leaves the machine."""
    scheme, _, rest = url.partition(":")
    if scheme == "data":
        return True
    return urlsplit(rest if scheme == "blob" else url).hostname in ("127.0.0.1", "localhost")
