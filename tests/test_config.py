"""The shipped configuration is valid, and bad configuration is refused with every problem."""

from pathlib import Path

import pytest

from crossgroup.config import (
    demo_maisons,
    load_fx,
    load_group,
    load_maison,
    load_taxonomy,
)
from crossgroup.errors import InputError

REQUIRED_CURRENCIES = {"EUR", "USD", "GBP", "CHF", "JPY", "CNY", "HKD", "SGD", "AED", "KRW"}


def test_taxonomy_has_six_sectors_each_with_catch_all():
    taxonomy = load_taxonomy()
    assert len(taxonomy.sectors) == 6
    for sector in taxonomy.sectors:
        assert 3 <= len(sector.categories) <= 6
        assert sector.catch_all not in sector.categories
    mapping = taxonomy.category_sector()
    assert len(mapping) == sum(len(s.categories) + 1 for s in taxonomy.sectors)


def test_fx_covers_required_currencies():
    assert set(load_fx().eur_per_unit) >= REQUIRED_CURRENCIES


def test_eight_demo_maisons_spread_over_sectors_with_own_vocabularies():
    maisons = demo_maisons()
    assert len(maisons) == 8
    assert len({m.sector for m in maisons}) >= 5
    vocabularies = [frozenset(m.categories) for m in maisons]
    assert len(set(vocabularies)) == 8
    french = [
        m
        for m in maisons
        if any(
            c != c.encode("ascii", "ignore").decode()
            or c.split()[0] in {"Sacs", "Bagues", "Soins", "Cognac"}
            for c in m.categories
        )
    ]
    assert len(french) >= 3
    taxonomy = load_taxonomy()
    for m in maisons:
        sector_categories = set(taxonomy.sector(m.sector).categories)
        assert set(m.categories.values()) & sector_categories, m.id


def test_group_defaults_match_design():
    group = load_group()
    assert group.k == 10
    assert group.k_aggregate == 50
    assert len(group.maisons) == 8


def test_bad_maison_config_lists_every_problem(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'id = "Bad Id"\nname = ""\nsector = "Cars"\n'
        'placeholder_max_customers = 0\n[categories]\n"X" = "Nope"\n'
    )
    with pytest.raises(InputError) as e:
        load_maison(bad)
    message = str(e.value)
    for fragment in ("id must", "name is required", "'Cars'", "'Nope'", "placeholder_max"):
        assert fragment in message
    assert "\n" not in message


def test_missing_and_invalid_toml_are_input_errors(tmp_path: Path):
    with pytest.raises(InputError, match="not found"):
        load_fx(tmp_path / "missing.toml")
    broken = tmp_path / "fx.toml"
    broken.write_text("[eur_per_unit\nEUR = 1")
    with pytest.raises(InputError, match="not valid TOML"):
        load_fx(broken)
    negative = tmp_path / "neg.toml"
    negative.write_text("[eur_per_unit]\nEUR = -1\neur = 1\n")
    with pytest.raises(InputError) as e:
        load_fx(negative)
    assert "positive" in str(e.value) and "ISO 4217" in str(e.value)
