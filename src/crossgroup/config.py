"""Typed, frozen configuration loaded from the TOML files in `pipelines/` (DESIGN §4.2).

Validation happens at load and lists every problem at once, so a data engineer fixes a file
in one pass. A key no loader knows is one of those problems, named with its table: a
misspelt setting must never run silently with its default. Defaults are resolved from
`$CROSSGROUP_PIPELINES`, then `./pipelines`, then the `pipelines/` folder of the source
checkout. Longer than most modules because every configuration file's known keys, types and
rules sit side by side here: one page a privacy officer can read to see every setting.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crossgroup.errors import InputError

PARTY_ID = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
CHANNELS = ("boutique", "online", "other")


def pipelines_dir() -> Path:
    """The folder holding taxonomy.toml, fx.toml, group.toml and maisons/."""
    env = os.environ.get("CROSSGROUP_PIPELINES")
    if env:
        return Path(env)
    here = Path.cwd() / "pipelines"
    if (here / "taxonomy.toml").is_file():
        return here
    return Path(__file__).resolve().parents[2] / "pipelines"


def read_toml(path: Path, label: str = "configuration") -> dict[str, Any]:
    """Parse a TOML file, turning every failure into one InputError naming the file."""
    from crossgroup.io import require_readable_file  # deferred: io imports polars

    require_readable_file(path, label)  # a FIFO or a directory is refused, never read
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML ({e})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid TOML (not UTF-8 text)") from None
    except OSError as e:
        raise InputError(f"cannot read {label} file {path}: {e.strerror}") from None


def _fail_if(problems: list[str], path: Path) -> None:
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))


def _unknown_keys(
    table: dict[str, Any], known: frozenset[str], where: str = "", entry: str = ""
) -> list[str]:
    """One problem per key of `table` not in `known`, so a misspelt setting never passes.

    `where` is the table ("[privacy]", "[[sector]]"; "" for the top level); `entry` says which
    table of an array ("sector 'Watches & Jewelry'").
    """
    if not where:
        return [f"unknown top-level key {key}" for key in table if key not in known]
    suffix = f" (in {entry})" if entry else ""
    return [f"unknown key {where} {key}{suffix}" for key in table if key not in known]


def _table(raw: dict[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    """`raw[key]` when it is a table (absent: empty); anything else is a problem."""
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"[{key}] must be a table")
        return {}
    return value


def _tables(raw: dict[str, Any], key: str, problems: list[str]) -> list[dict[str, Any]]:
    """`raw[key]` when it is an array of [[key]] tables (absent: empty)."""
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        problems.append(f"{key} must be written as [[{key}]] tables")
        return []
    return value


def _text(value: Any) -> str | None:
    """`value` if it is a string with something in it, else None."""
    return value if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class Sector:
    name: str
    categories: tuple[str, ...]
    catch_all: str
    word: str  # short label word: "Jewelry" makes the segment label "Jewelry-led"
    family: str  # the family it is released under when too few maisons share it


@dataclass(frozen=True)
class Family:
    """A coarser released name (a sector family, or the pooled name) and its label word."""

    name: str
    word: str


@dataclass(frozen=True)
class Taxonomy:
    sectors: tuple[Sector, ...]
    families: tuple[Family, ...]
    pooled: Family  # the last-resort name of pooled sectors: "Other sectors"

    @property
    def sector_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sectors)

    @property
    def family_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.families)

    def sector(self, name: str) -> Sector:
        for s in self.sectors:
            if s.name == name:
                return s
        raise KeyError(name)

    def family_of(self, sector_name: str) -> str:
        """The family a sector pools into: "Wines & Spirits" -> "Wines, Hospitality & Other".

        KeyError for a name that is not a sector.
        """
        return self.sector(sector_name).family

    def word(self, name: str) -> str:
        """The label word of a sector, a family or the pooled name.

        word("Watches & Jewelry") == "Jewelry"; word("Other sectors") == "Other-sectors";
        KeyError for any other name.
        """
        for item in (*self.sectors, *self.families, self.pooled):
            if item.name == name:
                return item.word
        raise KeyError(name)

    def category_sector(self) -> dict[str, str]:
        """Every group category (catch-alls included) mapped to its sector."""
        return {c: s.name for s in self.sectors for c in (*s.categories, s.catch_all)}


# The keys each table of taxonomy.toml may hold; any other key is refused by name.
TAXONOMY_KEYS = frozenset({"family", "pooled", "sector"})
FAMILY_KEYS = frozenset({"name", "word"})  # [[family]] and [pooled]
SECTOR_KEYS = frozenset({"name", "word", "family", "categories", "catch_all"})


def _name_and_word(
    table: dict[str, Any],
    known: frozenset[str],
    where: str,
    kind: str,
    number: int | None,
    problems: list[str],
) -> tuple[str, str | None, str | None]:
    """Check the keys, name and word of one [[family]], [pooled] or [[sector]] table.

    Returns the label messages use for it ("sector 'Watches & Jewelry'", "family #2" when it
    has no name), its name and its word (None when missing).
    """
    name, word = _text(table.get("name")), _text(table.get("word"))
    label = f"{kind} {name!r}" if name is not None else f"{kind} #{number}" if number else kind
    problems += _unknown_keys(table, known, where, label if number else "")
    if name is None:
        problems.append(f"{label} has no name")
    if word is None:
        problems.append(f"{label} needs a word (its short label word)")
    return label, name, word


def _duplicates(
    entries: list[tuple[str, str]], what: str, rule: str, fold: bool = False
) -> list[str]:
    """One problem per value (name or word) given to more than one entry."""
    holders: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for label, value in entries:
        key = value.casefold() if fold else value
        holders.setdefault(key, []).append(label)
        shown.setdefault(key, value)
    return [
        f"{what} {shown[key]!r} is used more than once ({', '.join(labels)}): {rule}"
        for key, labels in holders.items()
        if len(labels) > 1
    ]


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Load the sectors, their categories and the names they are released under (§4.4).

    Every released name (sector, family, pooled) is distinct, and so is every label word
    (ignoring case): a label or a released value can never mean two things.
    """
    path = path or pipelines_dir() / "taxonomy.toml"
    raw = read_toml(path)
    problems = _unknown_keys(raw, TAXONOMY_KEYS)
    names: list[tuple[str, str]] = []  # (kind, released name) of every entry
    words: list[tuple[str, str]] = []  # (label, label word) of every entry

    coarse = [
        ("[[family]]", "family", i + 1, table)
        for i, table in enumerate(_tables(raw, "family", problems))
    ]
    if isinstance(raw.get("pooled"), dict):
        coarse.append(("[pooled]", "[pooled]", None, raw["pooled"]))
    else:
        problems.append(
            "[pooled] must be a table"
            if "pooled" in raw
            else "no [pooled] table (the last-resort name of pooled sectors)"
        )
    families, pooled = [], None
    for where, kind, number, table in coarse:
        label, name, word = _name_and_word(table, FAMILY_KEYS, where, kind, number, problems)
        if name is not None:
            names.append((kind, name))
        if word is not None:
            words.append((label, word))
            if "&" in word:
                problems.append(
                    f"{label} word {word!r} must not contain '&' "
                    "(it would read as a two-sector label)"
                )
        if name is not None and word is not None:
            if number:
                families.append(Family(name, word))
            else:
                pooled = Family(name, word)
    declared = [n for kind, n in names if kind == "family"]

    sectors = []
    used: set[str] = set()
    seen: set[str] = set()
    sector_tables = _tables(raw, "sector", problems)
    for i, table in enumerate(sector_tables):
        label, name, word = _name_and_word(
            table, SECTOR_KEYS, "[[sector]]", "sector", i + 1, problems
        )
        if name is not None:
            names.append(("sector", name))
        if word is not None:
            words.append((label, word))
        cats, catch_all = table.get("categories"), table.get("catch_all")
        family = _text(table.get("family"))
        complete = name is not None and word is not None
        if not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats):
            problems.append(f"{label} needs a non-empty list of categories")
            cats, complete = [], False
        if not isinstance(catch_all, str) or not catch_all:
            problems.append(f"{label} needs a catch_all category")
            catch_all, complete = None, False
        if family is None:
            problems.append(f"{label} needs a family (the name of a [[family]])")
            complete = False
        elif family not in declared:
            problems.append(f"{label} has family {family!r}, which is not a declared [[family]]")
            complete = False
        else:
            used.add(family)
        for c in (*cats, *([catch_all] if catch_all else [])):
            if c in seen:
                problems.append(f"category {c!r} appears in more than one place")
            seen.add(c)
        if complete:
            sectors.append(Sector(name, tuple(cats), catch_all, word, family))
    if not sector_tables and isinstance(raw.get("sector", []), list):
        problems.append("no [[sector]] tables")

    problems += [f"family {f!r} holds no sector" for f in dict.fromkeys(declared) if f not in used]
    problems += _duplicates(names, "name", "released names must all differ")
    problems += _duplicates(words, "word", "label words must all differ, ignoring case", True)
    _fail_if(problems, path)
    assert pooled is not None  # no [pooled] is a problem above
    return Taxonomy(tuple(sectors), tuple(families), pooled)


@dataclass(frozen=True)
class FxTable:
    eur_per_unit: dict[str, float]


FX_KEYS = frozenset({"eur_per_unit"})  # [eur_per_unit] maps ISO 4217 codes to rates


def load_fx(path: Path | None = None) -> FxTable:
    path = path or pipelines_dir() / "fx.toml"
    raw = read_toml(path)
    rates = raw.get("eur_per_unit")
    problems = _unknown_keys(raw, FX_KEYS)
    if not isinstance(rates, dict) or not rates:
        problems.append("needs a non-empty [eur_per_unit] table")
        rates = {}
    for code, rate in rates.items():
        if not re.fullmatch(r"[A-Z]{3}", code):
            problems.append(f"{code!r} is not an ISO 4217 code")
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0:
            problems.append(f"rate for {code} must be a positive number")
    _fail_if(problems, path)
    return FxTable({k: float(v) for k, v in rates.items()})


@dataclass(frozen=True)
class MaisonConfig:
    id: str
    name: str
    sector: str
    categories: dict[str, str]
    placeholder_max_customers: int = 3


# The keys a maison config may hold; [categories] maps the maison's own labels freely.
MAISON_KEYS = frozenset({"id", "name", "sector", "categories", "placeholder_max_customers"})


def load_maison(path: Path, taxonomy: Taxonomy | None = None) -> MaisonConfig:
    """Load and check a maison config against the taxonomy."""
    taxonomy = taxonomy or load_taxonomy()
    raw = read_toml(path)
    problems = _unknown_keys(raw, MAISON_KEYS)
    mid, name, sector = raw.get("id"), raw.get("name"), raw.get("sector")
    if not isinstance(mid, str) or not PARTY_ID.match(mid):
        problems.append("id must be 2-32 lower-case letters, digits or '-'")
    if not isinstance(name, str) or not name:
        problems.append("name is required")
    if sector not in taxonomy.sector_names:
        problems.append(f"sector {sector!r} is not in the taxonomy")
    cats = raw.get("categories", {})
    known = taxonomy.category_sector()
    if not isinstance(cats, dict):
        problems.append("[categories] must map maison categories to group categories")
        cats = {}
    for mc, gc in cats.items():
        if gc not in known:
            problems.append(f"category {mc!r} maps to {gc!r}, which is not a group category")
    limit = raw.get("placeholder_max_customers", 3)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        problems.append("placeholder_max_customers must be a positive integer")
    _fail_if(problems, path)
    return MaisonConfig(mid, name, sector, dict(cats), limit)


def maison_config_path(maison_id: str) -> Path:
    return pipelines_dir() / "maisons" / f"{maison_id}.toml"


def demo_maisons(taxonomy: Taxonomy | None = None) -> list[MaisonConfig]:
    """The fictional demo maisons shipped in pipelines/maisons/, in group.toml order."""
    taxonomy = taxonomy or load_taxonomy()
    order = load_group().maisons
    return [load_maison(maison_config_path(m), taxonomy) for m in order]


@dataclass(frozen=True)
class GroupConfig:
    maisons: tuple[str, ...]
    # a listed maison with no package in the inbox refuses the batch unless this is set
    allow_missing: bool = False
    k: int = 10
    k_aggregate: int = 50
    max_records_per_token: int = 3
    min_maisons_per_sector: int = 2  # fewer: the sector is released pooled, never by name
    # group-wide figures (DESIGN §5.10, privacy/noise.py): "threshold" (the cell rule alone) or
    # "dp" (noise from OpenDP, then a threshold on the noisy counts, under a yearly budget)
    group_figures: str = "threshold"
    epsilon_per_release: float = 0.5
    delta: float = 1e-9
    epsilon_budget_per_year: float = 6.0  # twelve monthly releases at the default epsilon
    n_segments: int | None = None  # None: chosen by silhouette
    min_segments: int = 4
    max_segments: int = 10
    sample_size: int = 200_000
    random_state: int = 0
    # the saved model across monthly batches (group/model_state.py)
    refit: str = "auto"  # "auto", "always" or "never"
    max_model_age_months: int = 12
    max_mix_psi: float = 0.2  # population stability index of the segment mix
    max_distance_growth: float = 0.25  # growth of the mean distance to the nearest centre
    memory_limit: str = "4GB"
    threads: int = 2
    engine: str = "duckdb"  # or "spark" (engine_spark.py, the optional extra)
    spark_master: str = "local[*]"
    spark_settings: dict[str, str] = field(default_factory=dict)  # [engine.spark], verbatim
    retention: dict[str, int] = field(default_factory=dict)


REFIT_POLICIES = ("auto", "always", "never")
GROUP_FIGURES = ("threshold", "dp")
# delta is the chance the epsilon bound fails outright: it must stay far below one in the
# number of persons of a batch (DESIGN §5.10)
MAX_DELTA = 1e-6
# `[retention]` settings, in days (group/retention.py); 100 years at most, so a date minus a
# period always stays in the calendar.
MAX_RETENTION_DAYS = 36_500
RETENTION_SETTINGS = (
    "input_packages_days",
    "returns_days",
    "suppression_ledger_days",
    "replay_ledger_days",
)
# The tables of group.toml and the keys each may hold; any other table or key is refused by
# name, so a misspelt privacy setting can never run silently with its default.
GROUP_KEYS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "batch": frozenset({"maisons", "allow_missing"}),
        "privacy": frozenset(
            {
                "k",
                "k_aggregate",
                "max_records_per_token",
                "min_maisons_per_sector",
                "group_figures",
                "epsilon_per_release",
                "delta",
                "epsilon_budget_per_year",
            }
        ),
        "segmentation": frozenset(
            {
                "n_segments",
                "min_segments",
                "max_segments",
                "sample_size",
                "random_state",
                "refit",
                "max_model_age_months",
                "max_mix_psi",
                "max_distance_growth",
            }
        ),
        # remote is known only to be refused by name: Spark Connect is not supported
        "engine": frozenset({"kind", "master", "remote", "memory_limit", "threads", "spark"}),
        "retention": frozenset(RETENTION_SETTINGS),
        "register": frozenset({"contact", "transfers"}),  # read by privacy/register.py
    }
)


# The engines `crossgroup process` and `evaluate` run on: embedded DuckDB (default) or Apache
# Spark.
ENGINES = ("duckdb", "spark")

# Spark settings `[engine.spark]` may not hold, and why: each is one a privacy guarantee or
# the engines' parity rests on (SparkEngine sets it, or it must stay unset), or one named by
# its own key. A name ending in "." stands for every setting under it. SparkEngine also
# refuses any other setting it makes itself, unless it is a tuning it lets a pipeline change.
_SCRATCH = "Spark's scratch stays in the private working directory, removed after the run"
_PARITY = "both engines must return the same tables (DESIGN §5.11)"
_PLANS = "it would receive every query plan, and a plan can hold rows registered from the driver"
SPARK_PINNED: Mapping[str, str] = MappingProxyType(
    {
        "spark.master": "name the cluster with [engine] master",
        "spark.remote": "Spark Connect is not supported (docs/scaling.md)",
        "spark.api.mode": "the engine runs a classic Spark session (docs/scaling.md)",
        "spark.submit.deployMode": "the driver, which holds the processor's keys, is this process",
        "spark.local.dir": _SCRATCH,
        "spark.sql.warehouse.dir": _SCRATCH,
        "spark.checkpoint.dir": _SCRATCH,
        "spark.hadoop.fs.permissions.umask-mode": "the tables Spark writes are the processor's own",
        "spark.sql.catalogImplementation": "tables stay temporary views, never in a metastore",
        "spark.eventLog.": "event logs would keep query plans, which can hold rows",
        "spark.ui.": "the web UI shows query plans and their rows to whoever reaches it",
        "spark.extraListeners": _PLANS,
        "spark.sql.queryExecutionListeners": _PLANS,
        "spark.sql.session.timeZone": _PARITY,
        "spark.sql.ansi.enabled": _PARITY,
        "spark.sql.execution.arrow.pyspark.enabled": _PARITY,
    }
)
# Settings that protect data moving between Spark's processes or lying on their disks: a
# pipeline may turn them on (docs/scaling.md asks for them on a cluster), never off.
SPARK_ON_ONLY = frozenset(
    {"spark.authenticate", "spark.network.crypto.enabled", "spark.io.encryption.enabled"}
)
# Spark's own default `spark.redaction.regex`: a setting it would blank in its logs is a secret.
# A secret has no place in a pipeline file, nor on the command line of the JVM that PySpark
# starts, where every setting of the session is passed (`--conf`).
SPARK_SECRET = re.compile(r"(?i)secret|password|token|access[.]key")


def spark_setting_problem(key: str, value: str) -> str | None:
    """Why `[engine.spark]` may not set `key` to `value` (None: it may).

    Example: spark_setting_problem("spark.ui.port", "4040") names the web UI.
    """
    for name, reason in SPARK_PINNED.items():
        if key == name or (name.endswith(".") and key.startswith(name)):
            return f"[engine.spark] {key} cannot be set: {reason}"
    if SPARK_SECRET.search(key):
        return (
            f"[engine.spark] {key} is a secret: keep it out of the pipeline and give it to "
            "Spark through the cluster's own configuration (docs/scaling.md)"
        )
    if key in SPARK_ON_ONLY and value != "true":
        return f'[engine.spark] {key} may only be "true": it protects data between or on nodes'
    return None


def _spark_settings(engine: dict[str, Any], problems: list[str]) -> dict[str, str]:
    """The `[engine.spark]` table as Spark settings, each a string passed on verbatim.

    A dotted key written bare (spark.executor.memory = "8g") nests in TOML; it is read back
    as the one setting it names, like the quoted form ("spark.executor.memory" = "8g").
    """
    table = engine.get("spark", {})
    if not isinstance(table, dict):
        problems.append('[engine.spark] must be a table of Spark settings ("spark.x" = "value")')
        return {}
    flat: dict[str, Any] = {}
    stack = [("", table)]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            if isinstance(value, dict):
                stack.append((f"{prefix}{key}.", value))
            else:
                flat[f"{prefix}{key}"] = value
    settings = {}
    for key, value in sorted(flat.items()):
        if not key.startswith("spark."):
            problems.append(f"[engine.spark] {key} is not a Spark setting (they start with spark.)")
        elif not isinstance(value, str):
            problems.append(f'[engine.spark] {key} must be a string, as Spark reads it ("...")')
        elif problem := spark_setting_problem(key, value):
            problems.append(problem)
        else:
            settings[key] = value
    return settings


def _dp_settings(privacy: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """`[privacy]`'s group-figure settings, each checked (a bad one is named, never defaulted)."""
    mode = privacy.get("group_figures", GroupConfig.group_figures)
    if mode not in GROUP_FIGURES:
        problems.append(f"[privacy] group_figures must be one of {', '.join(GROUP_FIGURES)}")
        mode = GroupConfig.group_figures

    def positive(key: str, upper: float = math.inf) -> float:
        default = getattr(GroupConfig, key)
        v = privacy.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < upper:
            bound = "" if upper == math.inf else f" below {upper:g}"
            problems.append(f"[privacy] {key} must be a positive number{bound}")
            return default
        return float(v)

    if mode == "dp" and importlib.util.find_spec("opendp") is None:
        problems.append(
            "[privacy] group_figures = \"dp\" needs OpenDP: pip install 'crossgroup[dp]'"
        )
    epsilon = positive("epsilon_per_release", 10.0)
    budget = positive("epsilon_budget_per_year", 1000.0)
    delta = positive("delta", MAX_DELTA)
    if budget < epsilon:
        problems.append("[privacy] epsilon_budget_per_year must be at least epsilon_per_release")
    return {"group_figures": mode, "epsilon_per_release": epsilon, "delta": delta,
            "epsilon_budget_per_year": budget}  # fmt: skip


def load_group(path: Path | None = None) -> GroupConfig:
    path = path or pipelines_dir() / "group.toml"
    raw = read_toml(path)
    problems = _unknown_keys(raw, frozenset(GROUP_KEYS))
    tables = {name: _table(raw, name, problems) for name in GROUP_KEYS}
    for name, known in GROUP_KEYS.items():
        problems += _unknown_keys(tables[name], known, f"[{name}]")
    batch, privacy = tables["batch"], tables["privacy"]
    seg, engine = tables["segmentation"], tables["engine"]
    maisons = batch.get("maisons", [])
    if not maisons or not all(isinstance(m, str) and PARTY_ID.match(m) for m in maisons):
        problems.append("[batch] maisons must list party ids")
    allow_missing = batch.get("allow_missing", False)
    if not isinstance(allow_missing, bool):
        problems.append("[batch] allow_missing must be true or false")

    def positive_int(table: dict, key: str, default: int) -> int:
        v = table.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            problems.append(f"{key} must be a positive integer")
            return default
        return v

    k = positive_int(privacy, "k", 10)
    k_agg = positive_int(privacy, "k_aggregate", 50)
    max_rec = positive_int(privacy, "max_records_per_token", 3)
    min_per_sector = positive_int(privacy, "min_maisons_per_sector", 2)
    if min_per_sector < 2:
        problems.append("min_maisons_per_sector must be at least 2")
    n_seg_raw = seg.get("n_segments", "auto")
    n_seg = None if n_seg_raw == "auto" else n_seg_raw
    if n_seg is not None and (not isinstance(n_seg, int) or n_seg < 2):
        problems.append('n_segments must be "auto" or an integer of at least 2')
    lo = positive_int(seg, "min_segments", 4)
    hi = positive_int(seg, "max_segments", 10)
    if lo > hi:
        problems.append("min_segments must not exceed max_segments")
    dp = _dp_settings(privacy, problems)
    refit = seg.get("refit", "auto")
    if refit not in REFIT_POLICIES:
        problems.append(f"[segmentation] refit must be one of {', '.join(REFIT_POLICIES)}")
    drift_limits = {}
    for key, default in (("max_mix_psi", 0.2), ("max_distance_growth", 0.25)):
        v = seg.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            problems.append(f"[segmentation] {key} must be a positive number")
            v = default
        drift_limits[key] = float(v)
    kind = engine.get("kind", "duckdb")
    if kind not in ENGINES:
        problems.append(f"[engine] kind must be one of {', '.join(ENGINES)}")
    master = engine.get("master", "local[*]")
    if not isinstance(master, str) or not master.strip():
        problems.append("[engine] master must be a Spark master URL such as local[*]")
    connect = "remote" if "remote" in engine else "master" if str(master)[:5] == "sc://" else ""
    if connect:
        problems.append(
            f"[engine] {connect}: Spark Connect is not supported (docs/scaling.md says why); "
            "name a Spark master instead (local[*], yarn, spark://host:7077, k8s://...)"
        )
    spark_settings = _spark_settings(engine, problems)
    retention = tables["retention"]
    for key, v in retention.items():
        if key in RETENTION_SETTINGS and (
            not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_RETENTION_DAYS
        ):
            problems.append(
                f"retention {key} must be a whole number of days from 0 to {MAX_RETENTION_DAYS}"
            )
    # every setting is read before the problems are reported, so none falls back silently
    sample_size = positive_int(seg, "sample_size", 200_000)
    max_model_age = positive_int(seg, "max_model_age_months", 12)
    threads = positive_int(engine, "threads", 2)
    _fail_if(problems, path)
    return GroupConfig(
        maisons=tuple(maisons),
        allow_missing=allow_missing is True,
        k=k,
        k_aggregate=k_agg,
        max_records_per_token=max_rec,
        min_maisons_per_sector=min_per_sector,
        **dp,
        n_segments=n_seg,
        min_segments=lo,
        max_segments=hi,
        sample_size=sample_size,
        random_state=int(seg.get("random_state", 0)),
        refit=refit,
        max_model_age_months=max_model_age,
        **drift_limits,
        memory_limit=str(engine.get("memory_limit", "4GB")),
        threads=threads,
        engine=kind,
        spark_master=master,
        spark_settings=spark_settings,
        retention=dict(retention),
    )
