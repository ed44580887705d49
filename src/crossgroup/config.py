"""Typed, frozen configuration loaded from the TOML files in `pipelines/` (DESIGN §4.2).

Validation happens at load and lists every problem at once, so a data engineer fixes a file
in one pass. Defaults are resolved from `$CROSSGROUP_PIPELINES`, then `./pipelines`, then the
`pipelines/` folder of the source checkout.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
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


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into one InputError naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML ({e})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None


def _fail_if(problems: list[str], path: Path) -> None:
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))


@dataclass(frozen=True)
class Sector:
    name: str
    categories: tuple[str, ...]
    catch_all: str


@dataclass(frozen=True)
class Taxonomy:
    sectors: tuple[Sector, ...]

    @property
    def sector_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sectors)

    def sector(self, name: str) -> Sector:
        for s in self.sectors:
            if s.name == name:
                return s
        raise KeyError(name)

    def category_sector(self) -> dict[str, str]:
        """Every group category (catch-alls included) mapped to its sector."""
        return {c: s.name for s in self.sectors for c in (*s.categories, s.catch_all)}


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    path = path or pipelines_dir() / "taxonomy.toml"
    raw = read_toml(path)
    problems: list[str] = []
    sectors = []
    seen: set[str] = set()
    for i, s in enumerate(raw.get("sector", [])):
        name, cats, catch_all = s.get("name"), s.get("categories"), s.get("catch_all")
        if not isinstance(name, str) or not name:
            problems.append(f"sector #{i + 1} has no name")
            continue
        if not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats):
            problems.append(f"sector {name!r} needs a non-empty list of categories")
            continue
        if not isinstance(catch_all, str) or not catch_all:
            problems.append(f"sector {name!r} needs a catch_all category")
            continue
        for c in (*cats, catch_all):
            if c in seen:
                problems.append(f"category {c!r} appears in more than one place")
            seen.add(c)
        sectors.append(Sector(name, tuple(cats), catch_all))
    if not sectors and not problems:
        problems.append("no [[sector]] tables")
    _fail_if(problems, path)
    return Taxonomy(tuple(sectors))


@dataclass(frozen=True)
class FxTable:
    eur_per_unit: dict[str, float]


def load_fx(path: Path | None = None) -> FxTable:
    path = path or pipelines_dir() / "fx.toml"
    raw = read_toml(path)
    rates = raw.get("eur_per_unit")
    problems = []
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


def load_maison(path: Path, taxonomy: Taxonomy | None = None) -> MaisonConfig:
    """Load and check a maison config against the taxonomy."""
    taxonomy = taxonomy or load_taxonomy()
    raw = read_toml(path)
    problems = []
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
    k: int = 10
    k_aggregate: int = 50
    max_records_per_token: int = 3
    min_maisons_per_sector: int = 2  # fewer: the sector is released pooled, never by name
    n_segments: int | None = None  # None: chosen by silhouette
    min_segments: int = 4
    max_segments: int = 10
    sample_size: int = 200_000
    random_state: int = 0
    memory_limit: str = "4GB"
    threads: int = 2
    retention: dict[str, int] = field(default_factory=dict)


def load_group(path: Path | None = None) -> GroupConfig:
    path = path or pipelines_dir() / "group.toml"
    raw = read_toml(path)
    problems = []
    batch, privacy = raw.get("batch", {}), raw.get("privacy", {})
    seg, engine = raw.get("segmentation", {}), raw.get("engine", {})
    maisons = batch.get("maisons", [])
    if not maisons or not all(isinstance(m, str) and PARTY_ID.match(m) for m in maisons):
        problems.append("[batch] maisons must list party ids")

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
    retention = raw.get("retention", {})
    for key, v in retention.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            problems.append(f"retention {key} must be a whole number of days")
    _fail_if(problems, path)
    return GroupConfig(
        maisons=tuple(maisons),
        k=k,
        k_aggregate=k_agg,
        max_records_per_token=max_rec,
        min_maisons_per_sector=min_per_sector,
        n_segments=n_seg,
        min_segments=lo,
        max_segments=hi,
        sample_size=positive_int(seg, "sample_size", 200_000),
        random_state=int(seg.get("random_state", 0)),
        memory_limit=str(engine.get("memory_limit", "4GB")),
        threads=positive_int(engine, "threads", 2),
        retention=dict(retention),
    )
