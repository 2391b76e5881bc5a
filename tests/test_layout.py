"""The layout promises of docs/architecture.md: `platform/` must never shadow the standard library.
The dependency rule between the packages is checked in test_dependencies.py."""

import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import REPO


def test_import_platform_from_repo_root_is_the_standard_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.__file__)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(result.stdout.strip()).resolve().parent == stdlib


def test_platform_folder_has_no_top_level_init() -> None:
    assert not (REPO / "platform" / "__init__.py").exists()


def test_packages_import_under_driftloop_from_anywhere(tmp_path: Path) -> None:
    code = (
        "import driftloop.platform.store.models, driftloop.workers, driftloop.labeling, driftloop.migrations;"
        "import platform, torch; print(platform.system())"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Linux"
