"""Identifier building blocks: keyed permutations, maison ids, phone pools, exact amounts."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import phonenumbers
import pytest

from crossgroup.synth import world
from crossgroup.synth.identifiers import (
    ID_STYLES,
    customer_ids,
    derive_key,
    order_ids,
    permute,
    phone_numbers,
    render_phones,
)
from crossgroup.synth.pools import phone_pool
from crossgroup.synth.purchases import amounts_to_decimal


@pytest.mark.parametrize("domain", [2, 7, 1000, 10**5, 10**9])
def test_permute_is_a_bijection_of_its_domain(domain):
    x = np.arange(min(domain, 50_000))
    y = permute(x, domain, key=derive_key(1, "test"))
    assert y.min() >= 0 and y.max() < domain
    assert len(np.unique(y)) == len(x)
    if domain == len(x):
        assert sorted(y.tolist()) == list(range(domain))
    assert not np.array_equal(y, x)


def test_customer_ids_unique_per_maison_and_unrelated_across_maisons():
    people = np.arange(20_000)
    ids = {
        style: customer_ids(f"m{i}x", style, people, derive_key(3, f"customer_id/m{i}"))
        for i, style in enumerate(ID_STYLES)
    }
    for s in ids.values():
        assert s.n_unique() == len(people)
    digits = [s.str.replace_all(r"\D", "") for s in ids.values()]
    assert (digits[0] == digits[2]).sum() == 0  # same style family, different keys


def test_order_ids_unique_over_person_and_sequence():
    person = np.repeat(np.arange(3_000), 5)
    seq = np.tile(np.arange(5), 3_000)
    ids = order_ids("aurelle", person, seq, derive_key(3, "order_id/aurelle"))
    assert ids.n_unique() == len(person)


@pytest.mark.parametrize("country", world.COUNTRIES, ids=lambda c: c.code)
def test_phone_pools_give_valid_unique_numbers_in_every_format(country):
    pool = phone_pool(country.code)
    assert {"e164", "international_spaces", "national"} <= set(pool.templates)
    people = np.arange(0, 3_000_000, 997)
    nsn = phone_numbers(pool, people, derive_key(11, f"phone/{country.code}"))
    assert nsn.n_unique() == len(people)
    fmt = np.arange(len(people)) % 6
    rendered = render_phones(pool, nsn, fmt)
    for raw, national in zip(rendered.to_list()[:300], nsn.to_list()[:300], strict=True):
        parsed = phonenumbers.parse(raw, country.code)
        assert phonenumbers.is_valid_number(parsed), raw
        assert phonenumbers.national_significant_number(parsed) == national


def test_amounts_are_exact_decimals_including_refunds():
    cents = np.array([12345, -250, 0, 999_999_999_999, -1], dtype=np.int64)
    values = amounts_to_decimal(cents).to_list()
    assert values == [
        Decimal("123.45"),
        Decimal("-2.50"),
        Decimal("0.00"),
        Decimal("9999999999.99"),
        Decimal("-0.01"),
    ]
