"""The Redis the embedded Argilla server needs: the configured one, checked before the server starts
(which otherwise retries for a minute), or with ``embedded`` a private redis-server under the state
folder, started with the server and stopped with it."""

import shutil
import socket
import time
from urllib.parse import urlsplit

from driftloop.labeling.server.errors import EmbeddedServerError
from driftloop.labeling.server.ports import free_port
from driftloop.labeling.server.processes import ManagedProcess
from driftloop.labeling.server.state import StateDir

EMBEDDED = "embedded"


def ping(url: str, timeout: float = 2.0) -> bool:
    """Whether a Redis answers at ``url`` (an authentication error counts as an answer)."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        return True  # TLS or unix socket: leave the check to the server
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            reply = conn.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH", b"-WRONGPASS"))


def check(url: str) -> None:
    if not ping(url):
        raise EmbeddedServerError(
            f"Redis does not answer at {url}; start it, or set DRIFTLOOP_ARGILLA_REDIS_URL=embedded "
            "for a private redis-server"
        )


def process(state: StateDir) -> ManagedProcess | None:
    """The private redis-server of this state folder, when one was ever started."""
    if not (state.root / "redis.port").exists():
        return None
    # redis-server rewrites its command line soon after start ("redis-server 127.0.0.1:PORT"): only
    # the program's name is in both forms.
    return ManagedProcess("redis", state.pid_file("redis"), state.log_file("redis"), marker="redis-server")


def url_of(state: StateDir) -> str:
    return f"redis://127.0.0.1:{(state.root / 'redis.port').read_text().strip()}/0"


def ensure_running(state: StateDir, env: dict[str, str], timeout: float = 20.0) -> str:
    """Start the private redis-server unless it runs; its URL."""
    existing = process(state)
    if existing is not None and existing.pid() is not None:
        return url_of(state)
    binary = shutil.which("redis-server")
    if binary is None:
        raise EmbeddedServerError("DRIFTLOOP_ARGILLA_REDIS_URL=embedded needs the redis-server program on PATH")
    port = free_port()
    (state.root / "redis.port").write_text(str(port))
    state.redis_dir.mkdir(exist_ok=True)
    redis = process(state)
    assert redis is not None
    # Append-only persistence: queued webhook deliveries survive a restart.
    redis.start(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(state.redis_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
        ],
        env,
    )
    url = url_of(state)
    deadline = time.monotonic() + timeout
    while not ping(url):
        if redis.pid() is None or time.monotonic() > deadline:
            redis.stop()
            raise EmbeddedServerError(f"the private redis-server did not start:\n{redis.log_tail()}")
        time.sleep(0.1)
    return url
