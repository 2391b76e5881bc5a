"""Background processes that outlive the command which started them, known by their pid files.

A pid file alone can lie: the process may be gone and its pid reused. So each process is known also
by a marker, a string its command line holds (Linux ``/proc``), and a pid whose command line lacks
it counts as not running.
"""

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Children started by this process, kept so that they are reaped (no zombie is mistaken for a
# running process, no "still running" warning when a Popen is collected).
_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pid_file: Path
    log_file: Path
    marker: str

    def pid(self) -> int | None:
        """The pid of the running process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _is_running(pid, self.marker):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, command: Sequence[str], env: dict[str, str]) -> int:
        """Start it in its own session (a Ctrl-C in the terminal does not reach it), output to the log."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            process = subprocess.Popen(
                list(command),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _CHILDREN[process.pid] = process
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. False when it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, self.marker, timeout):
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, self.marker, 5.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _is_running(pid: int, marker: str) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        # Our own child is known exactly (its pid cannot be reused before it is reaped), and its
        # command line reads empty for a moment after exec.
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return False
        return _exists(pid)  # no /proc (macOS): trust the pid
    except PermissionError:
        return False
    return marker.encode() in command_line


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(pid: int, number: signal.Signals) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_running(pid, marker):
            return True
        time.sleep(0.1)
    return not _is_running(pid, marker)
