"""Docs are tested: every test a document cites as proof still exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CITED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
CITED_OR_SHORT = re.compile(r"`(tests/[\w/]+\.py)?::(\w+)`")  # `::name`: the file cited last
INVARIANTS = 11  # DESIGN §5
NOT_BUILT = re.compile(r"^- Not built yet: .*\(issue \d+\)", re.M)
DOCS = sorted([*REPO.glob("docs/*.md"), REPO / "README.md", REPO / "keys" / "README.md"])


def _citations() -> list[tuple[str, str, str]]:
    """(doc, file, test) for every citation, `::name` resolved against the file cited last."""
    found = []
    for doc in DOCS:
        last = None
        for file, name in CITED_OR_SHORT.findall(doc.read_text(encoding="utf-8")):
            last = file or last
            if last is not None:
                found.append((doc.name, last, name))
    return found


def test_the_privacy_invariants_doc_proves_every_invariant_of_design_section_5():
    """One section per invariant, numbered 1 to 11 in order, each citing the tests that
    fail when it breaks; an invariant of a feature not built yet says so and names its issue."""
    text = (REPO / "docs" / "privacy-invariants.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    numbered = [s for s in sections if re.match(r"\d+\. ", s)]
    assert [int(s.split(".")[0]) for s in numbered] == list(range(1, INVARIANTS + 1))
    for section in numbered:
        title = section.splitlines()[0]
        assert CITED.search(section) or NOT_BUILT.search(section), title
        assert "- Tests:" in section or NOT_BUILT.search(section), title


@pytest.mark.parametrize(("doc", "file", "name"), _citations())
def test_cited_test_exists(doc: str, file: str, name: str):
    source = REPO / file
    assert source.is_file(), f"{doc} cites missing file {file}"
    assert re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.M), (
        f"{doc} cites {file}::{name}, which does not exist"
    )
