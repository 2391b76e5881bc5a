"""Secrets kept in the store: encrypted with DRIFTLOOP_SECRET_KEY, else with the home's key file."""

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from driftloop.platform.config import Settings
from driftloop.platform.errors import InvalidSecretKey, WrongSecretKey
from driftloop.platform.secrets import decrypt, encrypt, key_file


def test_the_home_key_file_is_created_private_on_first_use_and_kept(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    token = encrypt(settings, "whsec_c2VjcmV0")
    assert "whsec_c2VjcmV0" not in token and "c2VjcmV0" not in token
    path = key_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = path.read_bytes()
    assert decrypt(Settings(home=tmp_path / "home"), token) == "whsec_c2VjcmV0"
    assert path.read_bytes() == key
    assert decrypt(Settings(home=tmp_path / "home", secret_key=key.decode().strip()), token) == "whsec_c2VjcmV0"


def test_hosts_creating_the_key_at_once_agree_on_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda n: encrypt(settings, f"secret-{n}"), range(8)))
    assert [decrypt(settings, t) for t in tokens] == [f"secret-{n}" for n in range(8)]
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temporary left behind


def test_a_configured_key_is_used_and_no_key_file_is_written(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(home=tmp_path, secret_key=key)
    token = encrypt(settings, "s3cret")
    assert Fernet(key).decrypt(token.encode()) == b"s3cret"
    assert not key_file(settings).exists()


def test_a_secret_encrypted_with_another_key_says_what_to_do(tmp_path: Path) -> None:
    token = encrypt(Settings(home=tmp_path, secret_key=Fernet.generate_key().decode()), "s3cret")
    with pytest.raises(WrongSecretKey, match="set DRIFTLOOP_SECRET_KEY to the key used when it was registered") as error:
        decrypt(Settings(home=tmp_path, secret_key=Fernet.generate_key().decode()), token)
    assert error.value.code == "wrong_secret_key"


def test_a_key_that_is_not_a_fernet_key_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(InvalidSecretKey, match="DRIFTLOOP_SECRET_KEY is not a Fernet key"):
        encrypt(Settings(home=tmp_path, secret_key="correct horse battery staple"), "s3cret")
