"""Release checks run on the final tables, just before anything is sealed (DESIGN §5.5-5.7, 5.9).

They do not trust the code that built the tables: each invariant is re-derived from what
would actually leave the processor. Every failure is collected, then one PrivacyCheckError
(exit 3) refuses the whole release. Messages name the maison, table, column and invariant,
never a ref or a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from crossgroup.errors import PrivacyCheckError
from crossgroup.group.features import sector_slug
from crossgroup.group.generalize import (
    GROUP_WORDS,
    MIN_MAISONS_PER_SECTOR,
    OTHER_SECTORS,
    RETURNED_ATTRIBUTES,
    SECTOR_FAMILIES,
    group_word,
    sector_words,
)

REF_BYTES = 16
SEGMENTS_COLUMNS = (
    "maison_ref",
    "segment",
    "segment_label",
    *RETURNED_ATTRIBUTES,
    "generalized",
)
AGGREGATES_COLUMNS = (
    "table",
    "scope",
    "row_key",
    "col_key",
    "persons",
    "share",
    "suppressed",
    "note",
)
GLOSSARY_COLUMNS = ("segment", "segment_label", "description")
ALLOWED = {
    "segments": SEGMENTS_COLUMNS,
    "aggregates": AGGREGATES_COLUMNS,
    "glossary": GLOSSARY_COLUMNS,
}
# The suppression table reports counts of what was withheld; it is exempt from k_aggregate.
SUPPRESSION_TABLE = "suppression"


@dataclass(frozen=True)
class MaisonRelease:
    """What one maison would receive, as read back from the files about to be sealed."""

    maison: str
    segments: pl.DataFrame
    aggregates: pl.DataFrame
    glossary: pl.DataFrame

    def tables(self) -> dict[str, pl.DataFrame]:
        return {"segments": self.segments, "aggregates": self.aggregates, "glossary": self.glossary}


def _schema_problems(where: str, name: str, frame: pl.DataFrame) -> list[str]:
    problems = []
    allowed = ALLOWED.get(name)
    if allowed is not None:
        extra = [c for c in frame.columns if c not in allowed]
        if extra:
            problems.append(f"{where} {name}: columns outside the allow-list: {', '.join(extra)}")
    for col, dtype in frame.schema.items():
        if dtype != pl.Binary:
            continue
        if not (name == "segments" and col == "maison_ref"):
            problems.append(f"{where} {name}: binary column {col!r} is not allowed")
            continue
        sizes = frame.get_column(col).bin.size()
        if sizes.null_count() or (sizes != REF_BYTES).any():
            problems.append(f"{where} {name}: maison_ref must be {REF_BYTES} bytes on every row")
    if name == "segments" and frame.schema.get("maison_ref") != pl.Binary:
        problems.append(f"{where} segments: maison_ref must be a binary column")
    return problems


def aggregate_problems(where: str, aggregates: pl.DataFrame, k_aggregate: int) -> list[str]:
    """Invariant 7: every published cell covers >= k_aggregate persons or is suppressed."""
    cells = aggregates.filter(pl.col("table") != SUPPRESSION_TABLE)
    small = cells.filter(
        ~pl.col("suppressed") & (pl.col("persons").is_null() | (pl.col("persons") < k_aggregate))
    )
    leaky = cells.filter(
        pl.col("suppressed") & (pl.col("persons").is_not_null() | pl.col("share").is_not_null())
    )
    problems = []
    if small.height:
        tables = ", ".join(sorted(set(small.get_column("table"))))
        problems.append(
            f"{where}: {small.height} aggregate cell(s) below {k_aggregate} persons "
            f"are not suppressed (tables: {tables})"
        )
    if leaky.height:
        problems.append(f"{where}: {leaky.height} suppressed cell(s) still carry a count or share")
    return problems


def _name_pattern(names: list[str]) -> str | None:
    words = sorted({n for n in names if n}, key=len, reverse=True)
    if not words:
        return None
    return r"(?i)\b(?:" + "|".join(re.escape(w) for w in words) + r")\b"


def _foreign_name_problems(
    where: str, tables: Mapping[str, pl.DataFrame], pattern: str | None
) -> list[str]:
    if pattern is None:
        return []
    problems = []
    for name, frame in tables.items():
        for col, dtype in frame.schema.items():
            if dtype != pl.String:
                continue
            values = frame.get_column(col).drop_nulls().unique()
            if values.str.contains(pattern).any():
                problems.append(f"{where} {name}.{col}: names another maison")
    return problems


def _sector_patterns(
    sector_maisons: Mapping[str, int] | None, min_maisons: int
) -> tuple[str, str, str] | None:
    """Regexes (allowed display names, allowed label words, forbidden names) for sector names
    in released text, or None when nothing is forbidden.

    Forbidden: every sector with fewer than `min_maisons` participating maisons (a known
    sector absent from the mapping has none), by display name and label word, and every
    family whose sectors together have 1..min_maisons-1 maisons. Allowed coarser names
    (the other families, "Other sectors") are masked first, case-sensitively for display
    names ("Beauty & Retail" the family, not "Beauty & retail" the two-sector label), since
    "Wines, Hospitality & Other" contains a sector's name.
    """
    if sector_maisons is None:
        return None
    counts = {s: int(n or 0) for s, n in sector_maisons.items()}
    for sector in SECTOR_FAMILIES:
        counts.setdefault(sector, 0)
    lonely = sorted(s for s, n in counts.items() if n < min_maisons)
    family_total: dict[str, int] = {}
    for sector, family in SECTOR_FAMILIES.items():
        family_total[family] = family_total.get(family, 0) + counts.get(sector, 0)
    short = sorted(f for f, n in family_total.items() if 0 < n < min_maisons)
    allowed = sorted((set(family_total) | {OTHER_SECTORS}) - set(short))
    names = [*lonely, *short, *(sector_words(sector_slug(s))[0] for s in lonely)]
    names += [group_word(f) for f in short]
    forbidden = _name_pattern(names)
    if forbidden is None:
        return None
    words = sorted({GROUP_WORDS.get(f, group_word(f)) for f in allowed}, key=len, reverse=True)
    display = sorted(allowed, key=len, reverse=True)
    return (
        "|".join(re.escape(w) for w in display),
        r"(?i)" + "|".join(re.escape(w) for w in words),
        forbidden,
    )


def _sector_name_problems(
    where: str,
    release: MaisonRelease,
    patterns: tuple[str, str, str] | None,
    min_maisons: int,
) -> list[str]:
    """No returned lead sector, segment label or glossary text names a sector (or family)
    that fewer than `min_maisons` participating maisons occupy: it would name the maison."""
    if patterns is None:
        return []
    display, words, forbidden = patterns
    problems = []
    for name, frame in (("segments", release.segments), ("glossary", release.glossary)):
        for col, dtype in frame.schema.items():
            if dtype != pl.String:
                continue
            values = (
                frame.get_column(col)
                .drop_nulls()
                .unique()
                .str.replace_all(display, " ")
                .str.replace_all(words, " ")
            )
            if values.str.contains(forbidden).any():
                problems.append(
                    f"{where} {name}.{col}: names a sector with fewer than {min_maisons} "
                    "participating maisons (it would name the maison)"
                )
    return problems


def release_problems(
    releases: Mapping[str, MaisonRelease],
    *,
    exported_refs: Mapping[str, pl.Series],
    person_nodes: pl.DataFrame,
    k: int,
    k_aggregate: int,
    maison_names: Mapping[str, str],
    sector_maisons: Mapping[str, int] | None = None,
    min_maisons_per_sector: int = MIN_MAISONS_PER_SECTOR,
) -> list[str]:
    """Every invariant violation in a release; [] when it may be sealed.

    `exported_refs`: each maison's maison_ref values from its own export; `person_nodes`:
    (maison, maison_ref, person_id) for every node; `maison_names`: id -> display name of
    every maison of the group (participating or not); `sector_maisons`: participating
    maisons per sector (None: sector names are not checked).
    """
    sector_patterns = _sector_patterns(sector_maisons, min_maisons_per_sector)
    problems: list[str] = []
    attributes = [c for c in SEGMENTS_COLUMNS if c != "maison_ref"]
    combos = []
    for maison, release in releases.items():
        where = f"return for {maison}:"
        for name, frame in release.tables().items():
            problems += _schema_problems(where, name, frame)
        seg = release.segments
        if "maison_ref" not in seg.columns or seg.schema["maison_ref"] != pl.Binary:
            continue
        # (5) only refs present in this maison's own export
        own = pl.DataFrame(
            {"maison_ref": exported_refs.get(maison, pl.Series([], dtype=pl.Binary))}
        )
        foreign = seg.join(own, on="maison_ref", how="anti").height
        if foreign:
            problems.append(f"{where} {foreign} row(s) are not customers of its own export (5)")
        if seg.get_column("maison_ref").is_duplicated().any():
            problems.append(f"{where} a maison_ref appears on more than one row")
        nodes = person_nodes.filter(pl.col("maison") == maison).select("maison_ref", "person_id")
        present = [c for c in attributes if c in seg.columns]
        combos.append(seg.join(nodes, on="maison_ref", how="inner").select("person_id", *present))
        problems += aggregate_problems(where, release.aggregates, k_aggregate)
        others = [m for m in maison_names if m != maison]
        pattern = _name_pattern(others + [maison_names[m] for m in others])
        problems += _foreign_name_problems(where, release.tables(), pattern)
        problems += _sector_name_problems(where, release, sector_patterns, min_maisons_per_sector)
    # (6) every returned combination is shared by >= k distinct persons in the whole batch
    if combos:
        columns = [c for c in attributes if all(c in f.columns for f in combos)]
        everyone = pl.concat([f.select("person_id", *columns) for f in combos]).unique()
        if everyone.get_column("person_id").is_duplicated().any():
            problems.append("one person is returned with different attributes to two maisons (6)")
        sizes = everyone.group_by(columns).agg(pl.col("person_id").n_unique().alias("persons"))
        rare = sizes.filter(pl.col("persons") < k).height
        if rare:
            problems.append(
                f"{rare} returned attribute combination(s) cover fewer than {k} persons (6)"
            )
    return problems


def report_problems(tables: Mapping[str, pl.DataFrame], *, k_aggregate: int) -> list[str]:
    """The processor's own reports: aggregate cells thresholded, and no binary column at all."""
    problems = []
    for name, frame in tables.items():
        for col, dtype in frame.schema.items():
            if dtype == pl.Binary:
                problems.append(f"report {name}: binary column {col!r} is not allowed")
        if {"table", "persons", "suppressed"} <= set(frame.columns):
            problems += aggregate_problems(f"report {name}", frame, k_aggregate)
    return problems


def check_release(
    releases: Mapping[str, MaisonRelease],
    *,
    exported_refs: Mapping[str, pl.Series],
    person_nodes: pl.DataFrame,
    k: int,
    k_aggregate: int,
    maison_names: Mapping[str, str],
    reports: Mapping[str, pl.DataFrame] | None = None,
    sector_maisons: Mapping[str, int] | None = None,
    min_maisons_per_sector: int = MIN_MAISONS_PER_SECTOR,
) -> None:
    """Refuse the release (PrivacyCheckError, exit 3) if any invariant fails."""
    problems = release_problems(
        releases,
        exported_refs=exported_refs,
        person_nodes=person_nodes,
        k=k,
        k_aggregate=k_aggregate,
        maison_names=maison_names,
        sector_maisons=sector_maisons,
        min_maisons_per_sector=min_maisons_per_sector,
    )
    problems += report_problems(reports or {}, k_aggregate=k_aggregate)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PrivacyCheckError(f"release refused by the privacy checks: {problems[0]}{more}")
