"""Real `driftloop worker` processes for the worker tests: each in its own process group (so the
whole worker, its children included, can be killed at once), logging to a file, stopped by pid."""

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import DRIFTLOOP


class Workers:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: dict[str, subprocess.Popen] = {}  # type: ignore[type-arg]
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, queues: str, concurrency: int = 1, timeout: float = 120.0) -> subprocess.Popen:  # type: ignore[type-arg]
        """A worker named ``name`` consuming ``queues``, once it says it is ready."""
        log = self.log(name)
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as output:
            process = subprocess.Popen(
                [DRIFTLOOP, "worker", "--queues", queues, "--concurrency", str(concurrency), "--name", name],
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.processes[name] = process
        deadline = time.monotonic() + timeout
        while b" ready." not in log.read_bytes()[offset:]:
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop_all()
                raise AssertionError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        return process

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def stop(self, name: str, timeout: float = 600.0) -> int:
        """SIGTERM to the worker's main process only, as a supervisor stops it (its pool processes
        are the worker's own to stop); its exit code, once it has stopped."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout)

    def kill(self, name: str) -> None:
        """kill -9 the worker and every process of its group (its pool's children)."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for name, process in list(self.processes.items()):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            del self.processes[name]
