"""Key directories for the crypto tests, generated once per module (key generation is cheap)."""

from __future__ import annotations

import pytest

from crossgroup.crypto.keys import init_keys


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys"
    init_keys(path, ["aurelle", "kessler"])
    return path
