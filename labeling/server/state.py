"""The embedded Argilla server's folder, ``$DRIFTLOOP_HOME/argilla``, and the secrets kept in it.

Secrets are generated once and written with mode 0600: the auth secret (a fixed one keeps UI
sessions valid across restarts) and the credentials of the owner and the annotators.
"""

import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from driftloop.platform.home import private_home

OWNER_USERNAME = "argilla"  # the name `database users create_default` gives the owner
DEFAULT_WORKSPACE = "driftloop"


@dataclass
class Credentials:
    owner_password: str
    owner_api_key: str
    workspace: str = DEFAULT_WORKSPACE
    annotators: dict[str, str] = field(default_factory=dict)  # username -> password
    owner_username: str = OWNER_USERNAME

    @classmethod
    def generate(cls, workspace: str = DEFAULT_WORKSPACE) -> "Credentials":
        return cls(owner_password=new_password(), owner_api_key=secrets.token_urlsafe(32), workspace=workspace)


def new_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters; Argilla wants at least 8


@dataclass(frozen=True)
class StateDir:
    root: Path

    @classmethod
    def of_home(cls, home: Path) -> "StateDir":
        return cls(Path(home).resolve() / "argilla")

    @property
    def database(self) -> Path:
        return self.root / "argilla.db"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database}"

    @property
    def database_marker(self) -> Path:
        """Holds the requirements digest the database was last migrated with."""
        return self.root / "database.ready"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    @property
    def endpoint_file(self) -> Path:
        return self.root / "server.json"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    def pid_file(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def create(self) -> None:
        private_home(self.root.parent)
        self.root.mkdir(exist_ok=True, mode=0o700)

    @property
    def lock_file(self) -> Path:
        """Held by ``up`` and ``down``: one of them at a time changes the processes."""
        return self.root / "processes.lock"

    def auth_secret(self) -> str:
        path = self.root / "auth-secret"
        if not path.exists():
            write_private(path, secrets.token_hex(32))
        return path.read_text().strip()

    def read_credentials(self) -> Credentials | None:
        try:
            return Credentials(**json.loads(self.credentials_file.read_text()))
        except FileNotFoundError:
            return None

    def write_credentials(self, credentials: Credentials) -> None:
        write_private(self.credentials_file, json.dumps(asdict(credentials), indent=2))

    def read_endpoint(self) -> dict | None:
        try:
            return json.loads(self.endpoint_file.read_text())
        except FileNotFoundError:
            return None

    def write_endpoint(self, url: str, port: int, redis_url: str) -> None:
        write_private(self.endpoint_file, json.dumps({"url": url, "port": port, "redis_url": redis_url}))


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (a reader never sees half of it)."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to a file left over from a crash
    os.replace(temporary, path)


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing) across processes."""
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
