"""Headless Chromium for the report checks: render a page, return its DOM and console messages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]\s*(.*)")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


@dataclass
class Rendered:
    dom: str
    console: list[str]  # every console message the page produced (errors, CSP violations...)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    return None


def require_chromium() -> str:
    """The Chromium binary, or skip; `make test` installs it and sets CROSSGROUP_REQUIRE_BROWSER."""
    import pytest

    found = find_chromium()
    if found is None:
        if os.environ.get("CROSSGROUP_REQUIRE_BROWSER"):
            pytest.fail("chromium is required (apt-get install -y chromium) but not found")
        pytest.skip("chromium not installed: the browser check runs under `make test`")
    return found


def _run(chromium: str, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="crossgroup-chromium-") as profile:
        return subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LANG": "C.UTF-8"},
            check=False,
        )


def render(chromium: str, page: Path) -> Rendered:
    """Load a local page and return the DOM after scripts ran, plus console messages."""
    done = _run(chromium, ["--dump-dom", page.resolve().as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]
    console += [line for line in done.stderr.splitlines() if "Uncaught" in line]
    return Rendered(done.stdout, console)


def screenshot(chromium: str, page: Path, out: Path, width: int = 1366, height: int = 2400) -> None:
    done = _run(
        chromium,
        [f"--screenshot={out}", f"--window-size={width},{height}", page.resolve().as_uri()],
    )
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
