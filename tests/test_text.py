"""`text.printable`: no character that hides, reorders or splits what is shown."""

import polars as pl
import pytest

from crossgroup.text import REPLACEMENT, printable, printable_expr, visible

R = REPLACEMENT
CASES = [
    ("Bagues", "Bagues"),
    ("Montres été", "Montres été"),  # accents are text, not controls
    ("Broches\u202egnp.exe", f"Broches{R}gnp.exe"),  # right-to-left override
    ("a\u200bb\u200cc\u200dd\u200ee\u200ff\u2060g\ufeff", f"a{R}b{R}c{R}d{R}e{R}f{R}g{R}"),
    ("\u2066x\u2069 \u202ay\u202c", f"{R}x{R} {R}y{R}"),  # isolates and embeddings
    ("\x1b[31mred\x7f\x9b", f"{R}[31mred{R}{R}"),  # C0, DEL and C1 controls
    ("two\nlines\tand\rmore", "two lines and more"),  # whitespace controls: a space
    ("line\u2028para\u2029end", f"line{R}para{R}end"),
]


@pytest.mark.parametrize(("raw", "shown"), CASES)
def test_printable_replaces_hidden_characters(raw, shown):
    assert printable(raw) == shown


def test_the_column_version_agrees_with_the_python_one():
    raw = [r for r, _ in CASES] + [None]
    frame = pl.DataFrame({"label": raw}, schema={"label": pl.String})
    assert frame.select(printable_expr(pl.col("label")))["label"].to_list() == [
        *(s for _, s in CASES),
        None,
    ]


def test_visible_is_what_a_reader_sees():
    assert visible("06\u200b12\u200b34\u200b56\u200b78") == "0612345678"


def test_a_lone_surrogate_from_an_undecodable_file_name_is_replaced():
    assert printable("caf\udce9.csv") == f"caf{R}.csv"
