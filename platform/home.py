"""``DRIFTLOOP_HOME`` is private to its owner: it holds the store, the models, the indexes, the
embedded Argilla's credentials and the key that encrypts the store's secrets.

A home driftloop creates is 0700, and the SQLite store in it 0600. An existing home (or store
file) that group or others can open is left as it is, since an ops-made shared folder may be
deliberate, but it is reported once per process with its path and mode.
"""

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600

_reported: set[Path] = set()


def private_home(home: Path) -> Path:
    """``home``, created 0700 if missing (its parents as the umask says)."""
    home = Path(home)
    try:
        home.mkdir(parents=True, mode=FOLDER_MODE)
    except FileExistsError:
        _report_if_open(home)
    else:
        # mkdir's mode is masked by the umask, and only the CLI sets a strict one.
        os.chmod(home, FOLDER_MODE)
    return home


def private_file(path: Path) -> Path:
    """``path``, created empty with mode 0600 if missing."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _report_if_open(path)
    else:
        try:
            os.fchmod(descriptor, FILE_MODE)  # O_CREAT's mode is masked by the umask too
        finally:
            os.close(descriptor)
    return path


def private_sqlite_store(database: Path) -> None:
    """Create the SQLite file 0600 in a private folder before SQLite opens it: SQLite creates a
    missing file 0644 (under the usual umask), and gives its -wal and -shm files the mode of the
    database file."""
    private_home(database.parent)
    private_file(database)


def _report_if_open(path: Path) -> None:
    if path in _reported:
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        _reported.add(path)
        kind = "folder" if path.is_dir() else "file"
        log.warning(
            "driftloop's %s %s is open to group/others (mode %04o); its data and secrets may be readable "
            "by other users: `chmod %s %s` unless it is shared on purpose",
            kind,
            path,
            mode,
            "700" if path.is_dir() else "600",
            path,
        )
