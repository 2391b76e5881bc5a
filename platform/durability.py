"""Making writes survive a crash: fsync of files and of the folders that name them."""

import os
from pathlib import Path


def fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder after a rename or create in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
