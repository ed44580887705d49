"""Docs are tested: every test a document cites as proof still exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CITED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
DOCS = sorted([*REPO.glob("docs/*.md"), REPO / "README.md", REPO / "keys" / "README.md"])


def _citations() -> list[tuple[str, str, str]]:
    return [
        (doc.name, file, name)
        for doc in DOCS
        for file, name in CITED.findall(doc.read_text(encoding="utf-8"))
    ]


def test_the_privacy_invariants_doc_cites_tests_for_all_nine_invariants():
    text = (REPO / "docs" / "privacy-invariants.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert len(sections) >= 9
    for section in sections[:9]:
        assert CITED.search(section), section.splitlines()[0]


@pytest.mark.parametrize(("doc", "file", "name"), _citations())
def test_cited_test_exists(doc: str, file: str, name: str):
    source = REPO / file
    assert source.is_file(), f"{doc} cites missing file {file}"
    assert re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.M), (
        f"{doc} cites {file}::{name}, which does not exist"
    )
