"""Report fixtures: headless Chromium (when installed) for the browser checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browser import require_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_chromium()
