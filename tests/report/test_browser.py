"""The report in a real browser: every chart renders and the page logs nothing to the console."""

from __future__ import annotations

from datetime import date

from browser import render
from return_payload import GLOSSARY, make_aggregates, make_segments

from crossgroup.report.maison_report import ReportContext, render_maison_report


def test_report_renders_in_headless_chromium_without_console_errors(chromium, tmp_path):
    segments = make_segments(400)
    page = render_maison_report(
        segments,
        make_aggregates(segments),
        GLOSSARY,
        ReportContext(
            "Aurelle Joaillerie",
            "2026-11-b1",
            "2026-10-31",
            10,
            50,
            generated_on=date(2026, 11, 22),
        ),
    )
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    rendered = render(chromium, path)
    assert rendered.dom.count('class="chart"') == 8
    assert rendered.dom.count("<svg") == 8
    assert "Glossary: what each segment means" in rendered.dom
    assert rendered.console == []


def test_console_check_catches_a_failing_page(chromium, tmp_path):
    """Guard the guard: an uncaught error and a blocked external fetch are both reported."""
    path = tmp_path / "bad.html"
    path.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
        "<img src='http://example.invalid/x.png'><script>throw new Error('boom')</script>"
        "</body></html>",
        encoding="utf-8",
    )
    console = render(chromium, path).console
    assert any("Uncaught Error: boom" in m for m in console)
    assert any("Content Security Policy" in m for m in console)
