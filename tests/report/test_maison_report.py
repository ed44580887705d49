"""The analyst report: complete, escaped, self-contained, and free of any identifier."""

from __future__ import annotations

import base64
import re
from datetime import date

import polars as pl
import pytest
from return_payload import GLOSSARY, make_aggregates, make_segments

from crossgroup.report.maison_report import ReportContext, render_maison_report

CHARTS = {
    "segment-sizes",
    "value-tiers",
    "channel-mix",
    "breadth",
    "sector-affinity",
    "segment-sector-affinity",
    "segment-sector-affinity-group",
    "other-sector-spend",
}


@pytest.fixture(scope="module")
def payload():
    segments = make_segments(600)
    return segments, make_aggregates(segments), GLOSSARY


@pytest.fixture(scope="module")
def page(payload) -> str:
    return _render(payload)


def _render(payload, **overrides) -> str:
    segments, aggregates, glossary = payload
    context = ReportContext(
        maison_name="Aurelle Joaillerie",
        batch_id="2026-11-b1",
        as_of="2026-10-31",
        k=10,
        k_aggregate=50,
        returned=segments.height,
        relinked=segments.height - 4,
        dropped=4,
        generated_on=date(2026, 11, 22),
    )
    for key, value in overrides.items():
        context = context.__class__(**{**context.__dict__, key: value})
    return render_maison_report(segments, aggregates, glossary, context)


def test_every_chart_is_inline_svg_with_title_and_description(page):
    found = set(
        re.findall(
            r'<svg role="img" aria-labelledby="[^"]+" class="chart" '
            r'data-chart="([^"]+)"',
            page,
        )
    )
    assert found == CHARTS
    for chart in CHARTS:
        assert f'<title id="{chart}-title">' in page
        assert f'<desc id="{chart}-desc">' in page
    # ids are prefixed per chart, so no two inline SVGs share an id
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_glossary_lists_every_segment_in_plain_words(page):
    assert "Glossary: what each segment means" in page
    for description in GLOSSARY["description"]:
        assert description in page
    assert "Jewelry-led, high value, multi-maison" in page


def test_suppression_box_states_thresholds_and_counts(payload, page):
    segments, _, _ = payload
    box = re.search(r'<aside class="suppression".*?</aside>', page, re.DOTALL).group(0)
    touched = segments.filter(pl.col("generalized") != "").height
    blank = segments["value_tier"].null_count()
    assert f"{touched:,} of {segments.height:,} customer rows" in box
    assert (
        f"Value tier: {touched - blank:,} rows given a wider band, {blank:,} rows left blank" in box
    )
    assert "Customer rows (k = 10)" in box and "(k_aggregate = 50)" in box
    assert "12 of your customers were left out of the return entirely</strong>: profile " in box
    assert (
        "Segment × sector affinity (your customers): 2 cell(s) suppressed: fewer than 50 "
        "persons, or recoverable by subtraction; 98 persons in those cells." in box
    )
    # the suppressed heat-map cells are shown, marked, not silently dropped
    assert ">n/a<" in page


def test_every_string_is_escaped(payload):
    page = _render(payload, maison_name='Maison <b>&</b> "Test"')
    assert "<gift>" not in page
    assert "Occasional &lt;gift&gt; buyers &amp; co" in page
    assert "Maison &lt;b&gt;&amp;&lt;/b&gt; &quot;Test&quot;" in page
    assert "<b>" not in page


def test_the_maisons_of_the_batch_are_named_only_when_the_return_says(payload, page):
    assert 'class="participation"' not in page  # a return that does not say: nothing shown
    named = _render(
        payload,
        participating_maisons=("Aurelle Joaillerie", "Kessler <Genève>"),
        absent_maisons=("Maison Vautrin",),
    )
    assert "Maisons in this batch: Aurelle Joaillerie, Kessler &lt;Genève&gt;" in named
    assert "not in this batch: Maison Vautrin" in named


def test_page_is_self_contained(page):
    assert "<script" not in page.lower()
    assert "<link" not in page.lower() and "@import" not in page
    assert not re.search(r"\bsrc=", page)
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))
    assert all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", page))
    # the only URLs are XML namespace names, which are never fetched
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_no_ref_or_token_bytes_reach_the_page(payload, page):
    segments, _, _ = payload
    for ref in segments["maison_ref"].head(200):
        assert ref.hex() not in page
        assert ref.hex().upper() not in page
        assert base64.b64encode(ref).decode() not in page
        assert ref.decode("latin-1") not in page


def test_rendering_is_deterministic(payload, page):
    assert _render(payload) == page


def test_falls_back_to_own_counts_without_aggregates(payload):
    segments, aggregates, glossary = payload
    empty = aggregates.clear()
    page = render_maison_report(
        segments, empty, glossary, ReportContext("Aurelle Joaillerie", "b1", "2026-10-31")
    )
    assert 'data-chart="segment-sizes"' in page and 'data-chart="value-tiers"' in page
    assert 'data-chart="segment-sector-affinity"' not in page
    assert "k = not stated" in page


def test_charts_need_no_plotting_library(page):
    """The charts are written as SVG text: rendering loads no plotting library (issue 13)."""
    import subprocess
    import sys

    code = (
        "import sys; import crossgroup.report.maison_report, crossgroup.report.group_report; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "matplotlib" not in done.stdout
    assert "<image" not in page and "base64" not in page


def test_suppressed_values_are_said_in_words_in_every_chart(payload):
    """A suppressed bar reads "suppressed" and a suppressed heat-map cell "n/a", as the
    suppression box says; each bar and cell also names its series and category."""
    page = _render(payload)
    segment_chart = re.search(r'<svg[^>]*data-chart="segment-sizes".*?</svg>', page, re.DOTALL)
    assert segment_chart and "<title>Your customers, " in segment_chart.group(0)
    heat = re.search(r'<svg[^>]*data-chart="segment-sector-affinity".*?</svg>', page, re.DOTALL)
    assert heat and ">n/a<" in heat.group(0)


def test_spend_in_other_sectors_is_charted_and_explained(page):
    """The maison's other_sector_spend cells as a chart, a suppressed one said in words, and
    the glossary explains the lead sector, the second sector and the table."""
    chart = re.search(r'<svg[^>]*data-chart="other-sector-spend".*?</svg>', page, re.DOTALL)
    assert chart
    svg = chart.group(0)
    assert ">20%</text>" in svg and ">10%</text>" in svg  # Fashion, then Beauty
    assert "Wines &amp; Spirits: suppressed</title>" in svg
    assert "Watches &amp; Jewelry" not in svg  # the maison's own sector is no cell
    terms = page[page.index("Other terms") :]
    for term in ("Lead sector", "Second sector", "Spend in other sectors"):
        assert f"<dt>{term}</dt>" in terms
    assert "No other sector" in terms


def test_bar_chart_marks_suppressed_bars_and_escapes_labels():
    from crossgroup.report.charts import bar_chart

    args = (
        "t",
        ["<a & b>", "Core"],
        {"Your customers": [None, 0.4], "Whole group": [0.25, 0.75]},
    )
    svg = bar_chart(*args, title='Tiers <"x">', alt="alt & more").svg
    assert ">suppressed</text>" in svg and ">40%</text>" in svg and ">75%</text>" in svg
    assert "<title>Your customers, &lt;a &amp; b&gt;: suppressed</title>" in svg
    assert "<a & b>" not in svg and '<"x">' not in svg
    assert '<title id="t-title">Tiers &lt;&quot;x&quot;&gt;</title>' in svg
    assert svg == bar_chart(*args, title='Tiers <"x">', alt="alt & more").svg


def test_noisy_group_figures_are_said_plainly_with_their_intervals_and_epsilon_explained(payload):
    """DP mode: the page says what the noise protects, lists every published noisy count with
    its 95 % interval, and the glossary explains epsilon; an exact return shows none of it."""
    segments, aggregates, glossary = payload
    group = pl.col("scope") == "group"
    noisy = aggregates.with_columns(
        margin=pl.when(group & (pl.col("table") != "suppression")).then(pl.lit(76.4))
    )
    page = render_maison_report(
        segments, noisy, glossary,
        ReportContext(maison_name="Aurelle", batch_id="b", as_of="2026-10-31", k=10,
                      k_aggregate=50, epsilon=0.5, delta=1e-9),
    )  # fmt: skip
    assert "epsilon 0.5" in page and "±76 persons" in page and "Counts under 50" in page
    assert "Figures about your own customers are exact, except what they spend" in page
    assert "<dt>Epsilon (ε)</dt>" in page
    published = noisy.filter(group & ~pl.col("suppressed") & (pl.col("table") != "suppression"))
    rows = re.findall(r"<tr><td>[^<]*</td><td>[^<]*</td><td>(\d+)</td><td>(\d+) – (\d+)</td>", page)
    assert len(rows) == published.height
    for persons, low, high in rows:
        assert int(low) == max(0, round(int(persons) - 76.4)) and int(high) == round(
            int(persons) + 76.4
        )
    assert "fitted on the batch itself" not in page
    refitted = render_maison_report(
        segments, noisy, glossary,
        ReportContext(maison_name="Aurelle", batch_id="b", as_of="2026-10-31", k=10,
                      k_aggregate=50, epsilon=0.5, delta=1e-9, refitted=True),
    )  # fmt: skip
    assert "fitted on the batch itself, so the bound holds given them" in refitted
    exact = _render(payload)
    assert "Epsilon" not in exact and "95 % interval" not in exact
