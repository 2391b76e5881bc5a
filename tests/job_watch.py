"""Following a job over HTTP, as a client of the API does."""

import time

from fastapi.testclient import TestClient


def wait_for_job(client: TestClient, job_id: int, timeout: float = 300.0) -> list[dict]:  # type: ignore[type-arg]
    """Every distinct view of the job over HTTP until it ends."""
    seen: list[dict] = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if not seen or (job["state"], job["progress"]) != (seen[-1]["state"], seen[-1]["progress"]):
            seen.append(job)
        if job["state"] not in ("queued", "running"):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end in {timeout}s: {seen[-1]}")
