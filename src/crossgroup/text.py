"""Free text made safe to show: on a terminal, in a log line, in the local export summary.

Category labels, file names and other user-supplied text may hold characters that do not
show yet change what a reader sees: a right-to-left override (U+202E) that reverses the rest
of the line, zero-width characters that make two labels look equal, other bidi controls,
line breaks that forge a second output line, or terminal escape sequences. `printable` turns
whitespace controls into a space and every other control, format or separator character
(Unicode categories Cc, Cf, Cs, Zl, Zp) into U+FFFD, so the text stays one readable line and
the reader can see that something was there. `printable_expr` is the same rule for a Polars
column.

Example: printable("Bagues\u202egnp.exe") == "Bagues\ufffdgnp.exe"
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type here: the CLI prints through `printable` without loading Polars
    import polars as pl

REPLACEMENT = "\ufffd"
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Whitespace controls become a space: a tab or a line break in a label reads as a space.
_WHITESPACE_CONTROLS = "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85"
_WHITESPACE_CLASS = r"[\t\n\x0B\f\r\x1C-\x1F\x{85}]"
# The same categories in the Rust regex syntax Polars uses (no surrogate can reach Polars).
_HIDDEN_CLASS = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"
_ANY_HIDDEN = re.compile(r"[^\x20-\x7e]")  # fast path: printable ASCII needs no lookup


def _shown(char: str) -> str:
    if char in _WHITESPACE_CONTROLS:
        return " "
    return REPLACEMENT if unicodedata.category(char) in HIDDEN_CATEGORIES else char


def printable(text: str) -> str:
    """`text` with no character that hides, reorders or breaks what is shown (see above)."""
    if not _ANY_HIDDEN.search(text):
        return text
    return "".join(map(_shown, text))


def visible(text: str) -> str:
    """What a reader sees of `text`: every hidden character removed (not replaced).

    For checks that must judge the text as read, e.g. whether a label looks like an email
    once its zero-width characters are gone.
    """
    return printable(text).replace(REPLACEMENT, "")


def printable_expr(expr: pl.Expr) -> pl.Expr:
    """`printable` for a String column, vectorized. Example: printable_expr(pl.col("category"))."""
    return expr.str.replace_all(_WHITESPACE_CLASS, " ").str.replace_all(_HIDDEN_CLASS, REPLACEMENT)
