"""The release policy of a batch: thresholds and sector naming, fixed once (DESIGN §4.4, §5.6).

Built from the pipeline (`GroupConfig`), the taxonomy's sector vocabulary and who took part,
then handed to every step that shapes or checks a release, so no threshold or sector rule is
passed around by hand or written twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from crossgroup.config import GroupConfig, Taxonomy


@dataclass(frozen=True)
class ReleasePolicy:
    """What a batch may release.

    `sector_maisons`: participating maisons per sector (a sector absent has none); None names
    every sector and leaves sector names unchecked. `maison_names`: every maison of the group
    (participating or not), id -> display name: no return may name another maison.
    """

    taxonomy: Taxonomy
    # defaults are the pipeline's own (GroupConfig), stated there once
    k: int = GroupConfig.k
    k_aggregate: int = GroupConfig.k_aggregate
    min_maisons_per_sector: int = GroupConfig.min_maisons_per_sector
    # group-wide figures: "threshold" or "dp" (group/noisy_cells.py), and DP mode's noise
    group_figures: str = GroupConfig.group_figures
    epsilon_per_release: float = GroupConfig.epsilon_per_release
    delta: float = GroupConfig.delta
    sector_maisons: Mapping[str, int] | None = None
    maison_names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_batch(
        cls,
        group: GroupConfig,
        taxonomy: Taxonomy,
        *,
        sector_maisons: Mapping[str, int] | None,
        maison_names: Mapping[str, str],
    ) -> ReleasePolicy:
        return cls(
            taxonomy=taxonomy,
            k=group.k,
            k_aggregate=group.k_aggregate,
            min_maisons_per_sector=group.min_maisons_per_sector,
            group_figures=group.group_figures,
            epsilon_per_release=group.epsilon_per_release,
            delta=group.delta,
            sector_maisons=None if sector_maisons is None else dict(sector_maisons),
            maison_names=dict(maison_names),
        )

    @cached_property
    def released_sectors(self) -> dict[str, str]:
        """Each taxonomy sector -> the name it is released under (`released_sector_names`)."""
        return released_sector_names(
            self.taxonomy.sector_names,
            self.sector_maisons,
            taxonomy=self.taxonomy,
            min_maisons=self.min_maisons_per_sector,
        )

    def family_of(self, sector: str) -> str:
        """The coarser released name of a sector: its family, or the pooled name."""
        try:
            return self.taxonomy.family_of(sector)
        except KeyError:
            return self.taxonomy.pooled.name


def released_sector_names(
    sectors: Sequence[str],
    sector_maisons: Mapping[str, int] | None,
    *,
    taxonomy: Taxonomy,
    min_maisons: int,
) -> dict[str, str]:
    """The name each sector is released under, given the participating maisons per sector.

    A sector with at least `min_maisons` maisons keeps its name. The others are pooled under
    their family, or under the pooled name ("Other sectors") when the family's unnamed sectors
    together still have fewer than `min_maisons` maisons. Every released name thus stands for
    at least `min_maisons` maisons (or none): if the pooled name would stand for too few, the
    named sectors of its members' families give up their names and join the family (else a
    family name would, by exclusion, still point at the lonely sector), and as a last resort
    every sector is released under the pooled name. `sector_maisons=None` names every sector.
    """
    sectors = list(dict.fromkeys(sectors))
    if sector_maisons is None:
        return {s: s for s in sectors}
    pooled = taxonomy.pooled.name
    count = {s: max(0, int(sector_maisons.get(s, 0) or 0)) for s in sectors}
    known = set(taxonomy.sector_names)
    family = {s: taxonomy.family_of(s) if s in known else pooled for s in sectors}
    name = {s: s if count[s] >= min_maisons else family[s] for s in sectors}

    def short(released: str) -> bool:
        total = sum(count[s] for s in sectors if name[s] == released and s != released)
        return 0 < total < min_maisons

    for fam in sorted({family[s] for s in sectors if name[s] != s} - {pooled}):
        if short(fam):
            for s in sectors:
                if name[s] == fam:
                    name[s] = pooled
    if short(pooled):
        pooled_families = {family[s] for s in sectors if name[s] == pooled}
        for fam in sorted(pooled_families - {pooled}):
            members = [s for s in sectors if family[s] == fam]
            if sum(count[s] for s in members) >= min_maisons:
                for s in members:
                    name[s] = fam
        if short(pooled):
            for s in sectors:
                if family[s] == pooled:
                    name[s] = pooled
    if short(pooled):
        name = dict.fromkeys(sectors, pooled)
    return name
