"""Model artifacts on disk: safetensors weights plus a JSON config, written atomically and
verified on load.

An artifact is a folder. It is written under a temporary name, every file is fsynced, its
checksum is computed, and only then is it renamed into place, so a crash never leaves a
half-written artifact where a model version could point. The checksum (sha256 over the sorted
file names and their contents) is stored with the model version in SQL; loading recomputes
it and refuses an artifact that does not match. A folder left by a training that died (a
``.tmp-*`` one, or one no version points at) is removed by the registry's sweep.

torch is imported only to read and write weights: the registry and the reaper of dead jobs,
which name artifacts but never open them, stay light.
"""

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from driftloop.platform.durability import fsync
from driftloop.platform.errors import CorruptArtifact

if TYPE_CHECKING:
    import torch

CONFIG_FILE = "config.json"
_TEMPORARY = re.compile(r"\.tmp-(?P<name>.+)-[0-9a-f]{8}")


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str

    @property
    def uri(self) -> str:
        return self.path.resolve().as_uri()


def write_artifact(root: Path, name: str, weights: dict[str, dict[str, "torch.Tensor"]], config: dict[str, Any]) -> Artifact:
    """Write ``weights`` (file stem → state dict) and ``config`` as ``root/name``."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if final.exists():
        raise FileExistsError(f"artifact {final} already exists")
    temporary = root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"  # see temporary_of
    temporary.mkdir()
    try:
        for stem, tensors in weights.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, temporary / f"{stem}.safetensors")
        (temporary / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
        for file in temporary.iterdir():
            fsync(file)
        digest = checksum(temporary)
        os.rename(temporary, final)
        fsync(root)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return Artifact(final, digest)


def temporary_of(folder: str) -> str | None:
    """The artifact name a folder left by an interrupted :func:`write_artifact` was for, or
    None if ``folder`` is not such a leftover."""
    match = _TEMPORARY.fullmatch(folder)
    return match["name"] if match else None


def read_artifact(path: Path, expected_sha256: str) -> tuple[dict[str, Any], dict[str, dict[str, "torch.Tensor"]]]:
    """The config and weights of a verified artifact."""
    from safetensors.torch import load_file

    if not path.is_dir():
        raise CorruptArtifact(f"model artifact {path} is missing", path=str(path))
    actual = checksum(path)
    if actual != expected_sha256:
        raise CorruptArtifact(
            f"model artifact {path} does not match its recorded checksum (expected {expected_sha256[:12]}…, "
            f"found {actual[:12]}…): it was changed or damaged after it was written; refusing to load it",
            path=str(path),
        )
    config = json.loads((path / CONFIG_FILE).read_text())
    weights = {file.stem: load_file(file) for file in sorted(path.glob("*.safetensors"))}
    return config, weights


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def path_from_uri(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise CorruptArtifact(f"unsupported artifact location {uri!r}: only file:// URIs are supported")
    return Path(unquote(parsed.path))

