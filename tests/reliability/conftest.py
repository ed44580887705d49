from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # demo_support
sys.path.insert(0, str(Path(__file__).resolve().parent))  # world

from world import make_template, processed_template

from demo_support import demo_output


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """Keys and maisons with a new batch of exports in inbox/ (not processed yet)."""
    return make_template(demo_output(tmp_path_factory), tmp_path_factory.mktemp("rel") / "t")


@pytest.fixture(scope="session")
def processed(template, tmp_path_factory) -> Path:
    """The template after a clean process: returns to import."""
    return processed_template(template, tmp_path_factory.mktemp("rel") / "p")
