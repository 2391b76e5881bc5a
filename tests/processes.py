"""Real `driftloop` processes for the tests that stop and kill them: each one's lines as they come,
waited for by content, never by time."""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine
from tests.conftest import DRIFTLOOP, fresh_postgres_database


@contextmanager
def own_store(backend: str, home: Path) -> Iterator[tuple[Engine, dict[str, str]]]:
    """A migrated store of its own (a scheduler fires every schedule of its store; a server runs
    every orphan job of it) and the environment that points driftloop processes at it: the
    embedded SQLite file of ``home``, or a fresh PostgreSQL database."""
    with ExitStack() as stack:
        if backend == "sqlite":
            url, env = Settings(home=home).resolved_database_url, {"DRIFTLOOP_DATABASE_URL": ""}
            home.mkdir(mode=0o700, exist_ok=True)
        else:
            url = stack.enter_context(fresh_postgres_database())
            env = {"DRIFTLOOP_DATABASE_URL": url}
        engine = make_engine(url)
        stack.callback(engine.dispose)
        schema.upgrade(engine)
        yield engine, {**env, "DRIFTLOOP_HOME": str(home)}


class Driftloop:
    """A `driftloop …` process; ``lines`` holds what it wrote, stdout and stderr together, as it came."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [DRIFTLOOP, *args], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
        self.pid = self.process.pid
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> list[str]:
        """The lines that contain ``text``."""
        return [line for line in list(self.lines) if text in line]

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
        """The first line that contains ``text``, once written; fails if the process ends first."""
        wait(lambda: self.said(text) or self.process.poll() is not None, f"{self.args[0]} says {text!r}", timeout, self.log)
        found = self.said(text)
        assert found, f"{self.args[0]} ended ({self.process.returncode}) without saying {text!r}:\n{self.log()}"
        return found[0]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 120.0) -> int:
        """Send ``signum`` and wait for the process to end; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args[0]} did not stop within {timeout}s of signal {signum}:\n{self.log()}") from None
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=60)

    def log(self) -> str:
        return "\n".join(self.lines[-60:])


def wait(condition: Callable[[], object], what: str, timeout: float = 120.0, log: Callable[[], str] = lambda: "") -> None:
    """Poll ``condition`` until it holds; a readiness bound, not a speed requirement."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}\n{log()}"
        time.sleep(0.1)
