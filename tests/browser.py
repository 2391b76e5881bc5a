"""Debian's ``chromium`` driven by Playwright (``executable_path``; no ``playwright install``, which
downloads a browser and fails here). The Makefile's ``install`` installs ``chromium`` where it is
missing."""

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"


def launch_chromium(playwright: Playwright) -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"The browser tests need Debian's chromium at {CHROMIUM} (`make install` installs it as root; "
            f"or `apt-get install -y chromium`). Found on PATH: {shutil.which('chromium')}"
        )
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
