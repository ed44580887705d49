"""The report's "What changed since last month" section: shown only with changes, every
suppressed cell said in words and counted, renamed segments named, every string escaped."""

from __future__ import annotations

import re
from datetime import date

import polars as pl
import pytest
from browser import render
from return_payload import GLOSSARY, make_aggregates, make_segments

from crossgroup.maison.changes import Changes, suppress_changes
from crossgroup.report.changes import changes_section
from crossgroup.report.maison_report import ReportContext, render_maison_report

SECTION = "What changed since last month"


def _changes(rows, k=50, relabelled=(), previous_batch="2026-09") -> Changes:
    cells = pl.DataFrame(
        rows,
        orient="row",
        schema={"kind": pl.String, "from_segment": pl.Int32, "from_label": pl.String,
                "to_segment": pl.Int32, "to_label": pl.String, "customers": pl.Int64},
    )  # fmt: skip
    table, held = suppress_changes(cells, k)
    return Changes(table, k, held, tuple(relabelled), previous_batch)


JEWELRY, GIFTS = "Jewelry-led", "Occasional <gift> buyers & co"
CHANGES = _changes(
    [
        ("transition", 1, JEWELRY, 1, JEWELRY, 400),
        ("transition", 1, JEWELRY, 3, GIFTS, 120),
        ("transition", 3, GIFTS, 3, GIFTS, 300),
        ("transition", 3, GIFTS, 1, JEWELRY, 12),  # small: with the next smallest of its lines
        ("new", None, None, 1, JEWELRY, 90),
        ("new", None, None, 3, GIFTS, 70),
        ("no_longer_returned", 1, JEWELRY, None, None, 60),
        ("no_longer_returned", 3, GIFTS, None, None, 55),
    ]
)


def _page(changes: Changes | None) -> str:
    segments = make_segments(400)
    context = ReportContext(
        "Aurelle Joaillerie", "2026-10", "2026-10-31", 10, 50, generated_on=date(2026, 11, 2)
    )
    return render_maison_report(
        segments, make_aggregates(segments), GLOSSARY, context, changes=changes
    )


@pytest.fixture(scope="module")
def page() -> str:
    return _page(CHANGES)


def test_the_section_is_shown_only_with_changes(page):
    assert SECTION in page and 'id="changes"' in page
    assert SECTION not in _page(None) and "#changes" not in _page(None)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_the_table_reads_from_rows_to_columns_with_suppressed_cells_in_words():
    section = changes_section(CHANGES)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", section.split("<tbody>")[1])
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r) for r in rows]
    assert cells == [
        ["1 · Jewelry-led", "400", "120", "60"],
        # 12 is below k: its row takes 55 with it, its column 90 (each line's next smallest)
        ["3 · Occasional &lt;gift&gt; buyers &amp; co", "n/a", "300", "n/a"],
        ["New to the return", "n/a", "70", ""],
    ]
    assert section.count('class="num stay"') == 2  # the diagonal: those who stayed
    assert 'title="fewer than 50 customers">n/a<' in section
    assert "<gift>" not in section
    assert "Suppressed (k_aggregate = 50): 3 of 8 cells, shown as n/a." in section
    assert "1 cell(s): fewer than 50 customers; 2 cell(s): suppressed so a smaller" in section
    assert "157 customers in those cells." in section
    assert "previous import (batch 2026-09)" in section


def test_a_segment_not_released_and_an_absent_cell_are_marked():
    changes = _changes(
        [("transition", None, None, 2, "Beauty", 80), ("transition", 2, "Beauty", 2, "Beauty", 90)],
        previous_batch=None,
    )
    section = changes_section(changes)
    assert "– · Not released" in section and 'none">–<' in section
    assert "Every figure covers at least 50 customers (k_aggregate = 50)" in section
    assert "previous import." in section  # no batch said when the file did not say it


def test_one_suppressed_cell_alone_never_states_its_customers():
    changes = _changes([("new", None, None, 1, "A", 7)])
    assert changes.suppressed_cells == 1 and changes.suppressed_customers is None
    assert "the number of customers in them is not given" in changes_section(changes)
    assert ">7<" not in changes_section(changes)


def test_renamed_segments_are_named_next_to_the_table():
    changes = _changes(
        [("transition", 2, "Beauty <old>", 2, "Fashion", 80)],
        relabelled=[(2, "Beauty <old>", "Fashion")],
    )
    section = changes_section(changes)
    note = re.search(r'<p class="relabel" role="note">(.*?)</p>', section).group(1)
    assert "segment 2 was “Beauty &lt;old&gt;” and is now “Fashion”" in note
    assert "compared by segment number" in note
    assert section.index("relabel") < section.index("<table")
    assert 'class="relabel"' not in changes_section(CHANGES)


def test_the_suppression_box_counts_the_change_cells_too(page):
    box = re.search(r'<aside class="suppression".*?</aside>', page, re.DOTALL).group(0)
    assert "What changed since last month: 3 cell(s) suppressed" in box
    assert 'href="#changes"' in box


def test_the_page_with_changes_renders_in_headless_chromium(chromium, tmp_path, page):
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    rendered = render(chromium, path)
    assert SECTION in rendered.dom and 'class="changes"' in rendered.dom
    assert rendered.console == []
