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

from crossgroup.contracts import OTHER_SECTOR_TABLE, REF_BYTES, RETURN, SECTOR_KEYS
from crossgroup.engine import Engine
from crossgroup.errors import PrivacyCheckError
from crossgroup.privacy.noise import noisy_threshold
from crossgroup.privacy.policy import ReleasePolicy

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
    if name in RETURN:
        expected = RETURN[name].names
        extra = [c for c in frame.columns if c not in expected]
        if extra:
            problems.append(f"{where} {name}: columns outside the allow-list: {', '.join(extra)}")
        missing = [c for c in expected if c not in frame.columns]
        if missing:
            problems.append(f"{where} {name}: returned columns missing: {', '.join(missing)}")
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


def noise_problems(where: str, aggregates: pl.DataFrame, group_figures: str, k_aggregate: int):
    """Invariant 10: in DP mode every group-wide cell (and other_sector_spend's, which counts
    spend at other maisons) carries its noise's margin and a published one reaches k_aggregate
    plus that margin (the noisy threshold); no other cell carries a margin, and in threshold
    mode none does (an exact count is never labelled noisy)."""
    if "margin" not in aggregates.columns:
        return [f"{where}: aggregates carry no margin column"]
    margin, cell = pl.col("margin"), pl.col("table") != SUPPRESSION_TABLE
    noisy = cell & ((pl.col("scope") == "group") | (pl.col("table") == OTHER_SECTOR_TABLE))
    if group_figures != "dp":
        labelled = aggregates.filter(margin.is_not_null()).height
        return [f"{where}: {labelled} exact cell(s) carry a margin"] if labelled else []
    under = ~pl.col("suppressed") & (pl.col("persons") < noisy_threshold(k_aggregate, margin) - 0.5)
    found = {
        "group-wide cell(s) without noise in DP mode (10)": noisy & ~(margin > 0).fill_null(False),
        "cell(s) about the recipient's own customers carry noise": cell & ~noisy
        & margin.is_not_null(),
        "noisy cell(s) published under the noisy threshold (10)": noisy & under,
    }  # fmt: skip
    counts = {what: aggregates.filter(rows).height for what, rows in found.items()}
    return [f"{where}: {n} {what}" for what, n in counts.items() if n]


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


def _sector_patterns(policy: ReleasePolicy) -> tuple[str, str, str] | None:
    """Regexes (allowed display names, allowed label words, forbidden names) for sector names
    in released text, or None when nothing is forbidden.

    Forbidden: every sector with fewer than `min_maisons_per_sector` participating maisons (a
    taxonomy sector absent from the mapping has none), by name and label word, and every
    family whose sectors together have 1..min-1 maisons. Allowed coarser names (the other
    families, the pooled name) are masked first, case-sensitively for display names ("Beauty
    & Retail" the family, not "Beauty & retail" the two-sector label), since "Wines,
    Hospitality & Other" contains a sector's name.
    """
    if policy.sector_maisons is None:
        return None
    taxonomy, least = policy.taxonomy, policy.min_maisons_per_sector
    counts = {s: int(n or 0) for s, n in policy.sector_maisons.items()}
    for sector in taxonomy.sector_names:
        counts.setdefault(sector, 0)
    lonely = sorted(s for s, n in counts.items() if n < least)
    family_total = dict.fromkeys(taxonomy.family_names, 0)
    for sector in taxonomy.sector_names:
        family_total[taxonomy.family_of(sector)] += counts[sector]
    short = sorted(f for f, n in family_total.items() if 0 < n < least)
    allowed = sorted((set(family_total) | {taxonomy.pooled.name}) - set(short))
    names = [*lonely, *short, *(taxonomy.word(s) for s in lonely if s in taxonomy.sector_names)]
    names += [taxonomy.word(f) for f in short]
    forbidden = _name_pattern(names)
    if forbidden is None:
        return None
    words = sorted({taxonomy.word(f) for f in allowed}, key=len, reverse=True)
    display = sorted(allowed, key=len, reverse=True)
    return (
        "|".join(re.escape(w) for w in display),
        r"(?i)" + "|".join(re.escape(w) for w in words),
        forbidden,
    )


def _sector_keys(aggregates: pl.DataFrame) -> pl.DataFrame:
    """The sector names of the aggregate tables keyed by sector (SECTOR_KEYS), each under the
    cell column it sits in (row_key or col_key; null elsewhere)."""
    columns = sorted(set(SECTOR_KEYS.values()))
    if not {"table", *columns} <= set(aggregates.columns):
        return pl.DataFrame()  # a malformed table is refused by the schema check
    key = pl.col("table").replace_strict(SECTOR_KEYS, default=None, return_dtype=pl.String)
    return aggregates.select(
        *(pl.when(key == c).then(pl.col(c)).otherwise(None).alias(c) for c in columns)
    )


def _unreleased_key_problems(
    where: str, release: MaisonRelease, policy: ReleasePolicy
) -> list[str]:
    """No sector key of an aggregate table (SECTOR_KEYS) is a sector the policy releases under
    a coarser name: not only one with too few maisons, but one pooled so that its family's
    name does not point at a lonely sector by exclusion (`released_sector_names`)."""
    if policy.sector_maisons is None:
        return []
    pooled = sorted(s for s, name in policy.released_sectors.items() if name != s)
    keys = _sector_keys(release.aggregates)
    return [
        f"{where} aggregates.{col}: names a sector the release policy does not release "
        "under its own name"
        for col in keys.columns
        if keys.get_column(col).is_in(pooled).any()
    ]


def _sector_name_problems(
    where: str, release: MaisonRelease, patterns: tuple[str, str, str] | None, min_maisons: int
) -> list[str]:
    """No returned lead or second sector, segment label, glossary text or sector key of an
    aggregate table (SECTOR_KEYS) names a sector (or family) that fewer than `min_maisons`
    participating maisons occupy: it would name the maison."""
    if patterns is None:
        return []
    display, words, forbidden = patterns
    aggregates = _sector_keys(release.aggregates)
    texts = (("segments", release.segments), ("glossary", release.glossary))
    problems = []
    for name, frame in (*texts, ("aggregates", aggregates)):
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


# (6) is checked on the full returned combination: every returned column but the ref
COMBINATION = tuple(c for c in RETURN["segments"].names if c != "maison_ref")


def maison_problems(
    release: MaisonRelease, *, policy: ReleasePolicy, exported_refs: pl.Series
) -> list[str]:
    """Every violation within one maison's return; `exported_refs`: the maison_ref values of
    that maison's own export. The batch-wide half of (6) is `combination_problems`."""
    maison, k_aggregate, maison_names = release.maison, policy.k_aggregate, policy.maison_names
    where = f"return for {maison}:"
    problems: list[str] = []
    for name, frame in release.tables().items():
        problems += _schema_problems(where, name, frame)
    seg = release.segments
    if "maison_ref" not in seg.columns or seg.schema["maison_ref"] != pl.Binary:
        return problems
    # (5) only refs present in this maison's own export
    own = pl.DataFrame({"maison_ref": exported_refs}, schema={"maison_ref": pl.Binary})
    foreign = seg.join(own, on="maison_ref", how="anti").height
    if foreign:
        problems.append(f"{where} {foreign} row(s) are not customers of its own export (5)")
    if seg.get_column("maison_ref").is_duplicated().any():
        problems.append(f"{where} a maison_ref appears on more than one row")
    # (6) is checked on the full returned combination or not at all: a missing or
    # unexpected column refuses the release, never a check on fewer columns
    if not has_full_combination(seg):
        problems.append(
            f"{where} segments columns differ from the contract: k-anonymity is not "
            "checked on a partial combination (6)"
        )
    problems += aggregate_problems(where, release.aggregates, k_aggregate)
    problems += noise_problems(where, release.aggregates, policy.group_figures, k_aggregate)
    others = [m for m in maison_names if m != maison]
    pattern = _name_pattern(others + [maison_names[m] for m in others])
    problems += _foreign_name_problems(where, release.tables(), pattern)
    problems += _sector_name_problems(
        where, release, _sector_patterns(policy), policy.min_maisons_per_sector
    )
    problems += _unreleased_key_problems(where, release, policy)
    return problems


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def has_full_combination(segments: pl.DataFrame) -> bool:
    return set(segments.columns) == {"maison_ref", *COMBINATION}


def combination_problems(
    engine: Engine, returned: Mapping[str, str], nodes: str, *, policy: ReleasePolicy
) -> list[str]:
    """(6) every returned combination is shared by >= k distinct persons in the whole batch,
    and nobody is returned with different attributes to two maisons.

    `returned`: each maison's `segments` as an engine table (read back from the files about
    to be sealed); `nodes` (maison, maison_ref, person_id) links refs to persons. Counted in
    the engine, so the batch's returned rows are never all in one process; nulls are equal,
    as in a group-by.
    """
    k = policy.k
    if not returned:
        return []
    columns = ", ".join(COMBINATION)
    union = " UNION ALL ".join(
        f"SELECT {_literal(maison)} AS maison, maison_ref, {columns} FROM {table}"
        for maison, table in returned.items()
    )
    picked = ", ".join(f"r.{c}" for c in COMBINATION)
    conflicting, rare = engine.to_polars(
        f"""
        WITH returned AS ({union}),
        persons AS (
            SELECT DISTINCT n.person_id, {picked}
            FROM returned r JOIN {nodes} n ON n.maison = r.maison AND n.maison_ref = r.maison_ref
        )
        SELECT
            (SELECT count(*) FROM (
                SELECT person_id FROM persons GROUP BY person_id HAVING count(*) > 1
            ) AS twice) AS conflicting,
            (SELECT count(*) FROM (
                SELECT {columns} FROM persons GROUP BY {columns} HAVING count(*) < {int(k)}
            ) AS small) AS rare
        """
    ).row(0)
    problems = []
    if conflicting:
        problems.append("one person is returned with different attributes to two maisons (6)")
    if rare:
        problems.append(
            f"{rare} returned attribute combination(s) cover fewer than {k} persons (6)"
        )
    return problems


def release_problems(
    releases: Mapping[str, MaisonRelease],
    *,
    policy: ReleasePolicy,
    exported_refs: Mapping[str, pl.Series],
    person_nodes: pl.DataFrame,
) -> list[str]:
    """Every invariant violation in a release held as frames; [] when it may be sealed.

    `exported_refs`: each maison's maison_ref values from its own export; `person_nodes`:
    (maison, maison_ref, person_id) for every node. The checks the pipeline makes one
    maison at a time, with the batch-wide count in an embedded engine.
    """
    from crossgroup.engine import DuckDBEngine

    problems: list[str] = []
    complete = {}
    for maison, release in releases.items():
        refs = exported_refs.get(maison, pl.Series([], dtype=pl.Binary))
        problems += maison_problems(release, policy=policy, exported_refs=refs)
        seg = release.segments
        if seg.schema.get("maison_ref") == pl.Binary and has_full_combination(seg):
            complete[maison] = seg
    with DuckDBEngine() as engine:
        engine.register("checked_nodes", person_nodes)
        tables = {
            m: engine.register(f"checked_{i}", seg) for i, (m, seg) in enumerate(complete.items())
        }
        problems += combination_problems(engine, tables, "checked_nodes", policy=policy)
    return problems


def report_problems(
    tables: Mapping[str, pl.DataFrame], *, k_aggregate: int, group_figures: str = "threshold"
) -> list[str]:
    """The processor's own reports: aggregate cells thresholded (and, in DP mode, the group
    cells noisy), and no binary column at all."""
    problems = []
    if "aggregates" in tables:
        problems += noise_problems("report aggregates", tables["aggregates"], group_figures,
                                   k_aggregate)  # fmt: skip
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
    policy: ReleasePolicy,
    exported_refs: Mapping[str, pl.Series],
    person_nodes: pl.DataFrame,
    reports: Mapping[str, pl.DataFrame] | None = None,
) -> None:
    """Refuse the release (PrivacyCheckError, exit 3) if any invariant fails."""
    problems = release_problems(
        releases, policy=policy, exported_refs=exported_refs, person_nodes=person_nodes
    )
    problems += report_problems(
        reports or {}, k_aggregate=policy.k_aggregate, group_figures=policy.group_figures
    )
    refuse_if_any(problems)


def refuse_if_any(problems: list[str]) -> None:
    """One PrivacyCheckError (exit 3) naming the first problem and how many more there are."""
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PrivacyCheckError(f"release refused by the privacy checks: {problems[0]}{more}")
