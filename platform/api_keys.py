"""Scoped API keys: who may call the API, to do what, on which task.

A key reads ``dlk_<prefix>_<secret>``. The prefix is a short public id: `driftloop keys list` shows
it, errors and logs name it, and the store finds the key by it. The secret is 256 random bits. The
``dlk_`` start lets grep or a secret scanner find a key that leaked into a log or a repository.

Only the sha256 of the secret is stored. A slow password hash (bcrypt, scrypt, argon2) exists to
make guessing a low-entropy password expensive; a 256-bit random secret cannot be guessed whatever
the hash costs, so one fast hash keeps a stolen store from yielding keys and costs each request
nothing. The presented secret's hash is compared in constant time.

Scopes: ``ingest``, ``predict``, ``label``, ``train``, ``promote``, ``admin``; ``admin`` implies
every other. A key may be bound to one task: it then acts on that task alone.
"""

import enum
import hashlib
import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from driftloop.platform.config import Settings
from driftloop.platform.durations import parse_duration
from driftloop.platform.errors import ConfigError, Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from driftloop.platform.jobs import no_such_job
from driftloop.platform.storable import text_problem
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import ApiKey, Job, Task
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task

log = logging.getLogger(__name__)

KEY_START = "dlk_"
_PREFIX_BYTES = 6  # 12 hex digits: unique enough to name a key, and no "_" to split on
_SECRET_BYTES = 32  # 256 bits
_MAX_PRESENTED = 200  # a real key is 81 characters: anything much longer is refused unread
MAX_LIFETIME_SECONDS = 10 * 366 * 86400
# last_used_at is for people ("is this key still in use?"): a minute's precision is enough, and
# it spares the store a write per request (one per prediction).
TOUCH_EVERY = timedelta(minutes=1)


class Scope(enum.StrEnum):
    ingest = "ingest"
    predict = "predict"
    label = "label"
    train = "train"
    promote = "promote"
    admin = "admin"


SCOPES = tuple(scope.value for scope in Scope)

# Who may cancel a job besides an admin: whoever may start that kind of job.
_CANCEL_SCOPES = {
    "train": Scope.train,
    "select": Scope.label,
    "sync": Scope.label,
    "loop": Scope.label,
    "rebuild": Scope.label,
    "score": Scope.ingest,  # queued by an ingest
}


@dataclass(frozen=True)
class KeyInfo:
    """A key as people see it: never its secret, nor the secret's hash."""

    id: int
    prefix: str
    name: str
    scopes: list[str]
    task: str | None  # None: every task
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def parse_scopes(scopes: str | Iterable[str]) -> list[str]:
    """``"ingest,predict"`` (or a list of names) as the list of scopes, in their canonical order."""
    names = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = {name.strip().lower() for name in names if isinstance(name, str) and name.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}: use one or more of {', '.join(SCOPES)}", field="scopes")
    if not wanted:
        raise InvalidInput(f"a key needs at least one scope: {', '.join(SCOPES)}", field="scopes")
    return [scope for scope in SCOPES if scope in wanted]


def parse_lifetime(value: str) -> timedelta:
    """``--expires``: ``90d``, ``12h``, ``30m``."""
    return timedelta(seconds=parse_duration(value, field="expires", maximum=MAX_LIFETIME_SECONDS))


def create_key(
    session: Session,
    name: str,
    scopes: str | Iterable[str],
    task: str | None = None,
    expires_in: timedelta | str | None = None,
) -> tuple[KeyInfo, str]:
    """A new key and its full string, which exists only in this return value: the store keeps its hash."""
    problem = text_problem(name) if isinstance(name, str) else "must be text"
    if problem or not name.strip() or len(name) > 100:
        raise InvalidInput(f"key name {name!r} {problem or 'must be 1 to 100 characters'}", field="name")
    scope_list = parse_scopes(scopes)
    task_id = get_task(session, task).id if task is not None else None
    lifetime = parse_lifetime(expires_in) if isinstance(expires_in, str) else expires_in
    now = utcnow()
    prefix = secrets.token_hex(_PREFIX_BYTES)
    secret = secrets.token_hex(_SECRET_BYTES)  # hex: a key splits on "_" unambiguously
    row = ApiKey(
        prefix=prefix,
        name=name.strip(),
        secret_hash=_hash(secret),
        scopes=scope_list,
        task_id=task_id,
        created_at=now,
        expires_at=now + lifetime if lifetime is not None else None,
    )
    session.add(row)
    session.flush()
    return _info(row, task), f"{KEY_START}{prefix}_{secret}"


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, oldest first, revoked and expired ones included."""
    rows = session.execute(select(ApiKey, Task.name).outerjoin(Task, Task.id == ApiKey.task_id).order_by(ApiKey.id))
    return [_info(key, task) for key, task in rows]


def revoke_key(session: Session, prefix_or_name: str) -> KeyInfo:
    """Revoke a key, named by its prefix or by its name (when one live key has that name)."""
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix_or_name).with_for_update())
    if key is None:
        named = list(session.scalars(select(ApiKey).where(ApiKey.name == prefix_or_name).order_by(ApiKey.id).with_for_update()))
        live = [k for k in named if k.revoked_at is None]
        if len(live) > 1:
            prefixes = ", ".join(k.prefix for k in live)
            raise InvalidInput(f"{len(live)} keys are named {prefix_or_name!r} ({prefixes}): revoke one by its prefix")
        key = live[0] if live else named[-1] if named else None
    if key is None:
        raise NotFound(f"no API key with prefix or name {prefix_or_name!r} (see `driftloop keys list`)", key=prefix_or_name)
    if key.revoked_at is not None:
        raise Conflict(f"key {_label(key)} was revoked already, at {_time(key.revoked_at)}", key=key.prefix)
    key.revoked_at = utcnow()
    session.flush()
    return _info(key, session.get(Task, key.task_id).name if key.task_id is not None else None)


def verify(session: Session, presented: str | None) -> KeyInfo:
    """The valid key ``presented``, or Unauthenticated (401) saying why not."""
    if not presented:
        raise Unauthenticated(
            "this request needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
            "(make one with `driftloop keys create`)"
        )
    prefix, secret = _split(presented)
    row = session.execute(
        select(ApiKey, Task.name).outerjoin(Task, Task.id == ApiKey.task_id).where(ApiKey.prefix == prefix)
    ).first()
    # one message for an unknown prefix and a wrong secret: prefixes are public
    if row is None or not hmac.compare_digest(row[0].secret_hash, _hash(secret)):
        raise Unauthenticated(f"API key {prefix} is not valid", key=prefix)
    key, task = row
    now = utcnow()
    if key.revoked_at is not None:
        raise Unauthenticated(f"key {_label(key)} was revoked at {_time(key.revoked_at)}", key=prefix)
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated(f"key {_label(key)} expired at {_time(key.expires_at)}", key=prefix)
    return _info(key, task)


def permit(key: KeyInfo, scope: str | None, task: str | None, *, all_tasks: bool = False) -> None:
    """Forbidden (403) unless ``key`` allows ``scope`` (None: any) on ``task`` (None: a request about
    no one task). ``all_tasks``: the request concerns every task (creating one), which a key bound to
    a task may not make."""
    label = _label(key)
    if scope is not None and scope not in key.scopes and Scope.admin not in key.scopes:
        raise Forbidden(f"key {label} lacks scope '{scope}' (it has {', '.join(key.scopes)})", key=key.prefix, scope=str(scope))
    if key.task is None:
        return
    if task is not None and task != key.task:
        raise Forbidden(f"key {label} is for task {key.task}, not {task}", key=key.prefix, task=task)
    if task is None and all_tasks:
        raise Forbidden(f"key {label} is for task {key.task} only: this request needs a key for every task", key=key.prefix)


def permit_job(session: Session, key: KeyInfo, job_id: int, *, cancel: bool) -> None:
    """Forbidden unless ``key`` may cancel the job (``admin``, or the scope that starts its kind); any
    key on its task may read it. A job of another task than a bound key's (or of no task) is not
    found, as a job that does not exist, so that such a key cannot learn which ids exist; one that
    does not exist passes: the route answers 404."""
    row = session.execute(select(Job.kind, Task.name).outerjoin(Task, Task.id == Job.task_id).where(Job.id == job_id)).first()
    if row is None:
        return
    kind, task = row
    if key.task is not None and task != key.task:
        raise no_such_job(job_id)
    permit(key, _CANCEL_SCOPES.get(kind, Scope.admin) if cancel else None, task, all_tasks=task is None)


class VerifiedKeys:
    """The keys this process verified lately. A prediction costs less than reading its key from the
    store, so a key is read once every ``seconds`` per process, not on every request: within that
    time a key revoked meanwhile is still taken (the price, bounded and documented); one that
    expires is refused at once (its expiry is checked each time). Kept by the sha256 of the whole
    key, never the key itself."""

    MAX_KEYS = 10_000  # more distinct keys than this in one process: forget them all and read again

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._known: dict[bytes, tuple[KeyInfo, float]] = {}
        self._lock = threading.Lock()

    def get(self, presented: str | None) -> KeyInfo | None:
        """The key, if this process verified it less than ``seconds`` ago and it has not expired."""
        if not presented or self.seconds <= 0:
            return None
        with self._lock:
            found = self._known.get(_digest(presented))
        if found is None or time.monotonic() - found[1] > self.seconds:
            return None
        key = found[0]
        return None if key.expires_at is not None and key.expires_at <= utcnow() else key

    def put(self, presented: str | None, key: KeyInfo) -> None:
        if not presented or self.seconds <= 0:
            return
        with self._lock:
            if len(self._known) >= self.MAX_KEYS:
                self._known.clear()
            self._known[_digest(presented)] = (key, time.monotonic())

    def update(self, presented: str | None, key: KeyInfo) -> None:
        """Keep ``key``'s newer fields (its last use) without trusting it any longer."""
        if not presented:
            return
        digest = _digest(presented)
        with self._lock:
            found = self._known.get(digest)
            if found is not None:
                self._known[digest] = (key, found[1])


def needs_recording(key: KeyInfo) -> bool:
    """Whether :func:`record_use` would write (at most once a minute per key)."""
    return key.last_used_at is None or utcnow() - key.last_used_at >= TOUCH_EVERY


def record_use(engine: Engine, key: KeyInfo) -> KeyInfo:
    """Set the key's ``last_used_at``, at most once a minute, in a transaction of its own; the key
    as it is now. A store that cannot take the write now only makes the time less fresh: it is
    logged, never raised."""
    now = utcnow()
    if not needs_recording(key):
        return key
    try:
        with session_scope(engine) as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.id == key.id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - TOUCH_EVERY))
                .values(last_used_at=now)
            )
    except SQLAlchemyError as error:
        log.warning("could not record the use of API key %s: %s", key.prefix, error.__class__.__name__)
    return replace(key, last_used_at=now)  # not tried again for a minute, written or not


def _split(presented: str) -> tuple[str, str]:
    start, _, rest = presented.partition(KEY_START)
    prefix, sep, secret = rest.partition("_")
    # never echo what was presented: it may be a secret sent to the wrong place
    if start or not sep or not secret or len(presented) > _MAX_PRESENTED or not presented.isascii() or not prefix.isalnum():
        raise Unauthenticated(f"malformed API key: a key reads {KEY_START}<prefix>_<secret>, as `driftloop keys create` printed it")
    return prefix, secret


def _digest(presented: str) -> bytes:
    return hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _info(key: ApiKey, task: str | None) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        prefix=key.prefix,
        name=key.name,
        scopes=list(key.scopes),
        task=task,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


def _label(key: ApiKey | KeyInfo) -> str:
    return f"{key.prefix} ({key.name})"


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


# The rule for running without keys lives here, in the core, so that `driftloop serve` can apply it
# before it starts the API (the CLI and the API are edges: neither imports the other).


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_open_exposure(settings: Settings) -> None:
    """ConfigError when auth is off and the API would listen beyond this machine."""
    if not settings.auth and not is_loopback(settings.api_host):
        raise ConfigError(
            f"DRIFTLOOP_AUTH=off is refused while the API listens on {settings.api_host}: without keys anyone who "
            "can reach it may ingest, train and promote. Keep auth on (`driftloop keys create`), or listen on "
            "127.0.0.1 only."
        )
