"""Secrets kept in the store are encrypted, so that the store alone (a copy of the SQLite file, a
database dump, a backup) does not reveal them. The only one today is the webhook's signing
secret: whoever has it can make the API accept forged labeling events.

Fernet (AES-128-CBC with HMAC-SHA256) with one key per deployment: ``DRIFTLOOP_SECRET_KEY`` when
set (every API host of a shared store needs the same key), else ``DRIFTLOOP_HOME/secret.key``,
generated 0600 on first use. The key must be backed up with the store: without it the webhook
has to be registered again.
"""

import os
import uuid
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from driftloop.platform.config import Settings
from driftloop.platform.durability import fsync
from driftloop.platform.errors import InvalidSecretKey, WrongSecretKey
from driftloop.platform.home import FILE_MODE, private_home

KEY_FILE = "secret.key"


def encrypt(settings: Settings, plaintext: str) -> str:
    return _fernet(settings).encrypt(plaintext.encode()).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    try:
        return _fernet(settings).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError):
        raise WrongSecretKey(
            "the webhook secret was encrypted with another key: set DRIFTLOOP_SECRET_KEY to the key used when it "
            "was registered, or register the webhook again"
        ) from None


def key_file(settings: Settings) -> Path:
    return settings.home / KEY_FILE


def _fernet(settings: Settings) -> Fernet:
    configured = settings.secret_key.get_secret_value().strip() if settings.secret_key else ""
    if configured:
        return _parse(configured.encode(), "DRIFTLOOP_SECRET_KEY")
    path = key_file(settings)
    return _parse(_read_or_create(path), str(path))


def _parse(key: bytes, source: str) -> Fernet:
    try:
        return Fernet(key)
    except ValueError:
        raise InvalidSecretKey(
            f"{source} is not a Fernet key (32 url-safe base64-encoded bytes); make one with `python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        ) from None


def _read_or_create(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    private_home(path.parent)
    # Written in full under a private name, then linked into place: a process reading the key
    # never sees half of it, and when two create it at once, the one linked first wins for both.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), FILE_MODE)
            file.write(Fernet.generate_key() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
            fsync(path.parent)  # losing the key after a crash would lose the secrets it encrypted
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_bytes().strip()
