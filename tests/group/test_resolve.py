"""Person resolution: transitive links, placeholder guard, typed tokens, determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

from crossgroup.engine import Engine
from crossgroup.group.resolve import connected_components, match_figures, resolve_persons

METHODS = ["scipy", "sql"]


def tok(label: str | None) -> bytes | None:
    return None if label is None else hashlib.sha256(label.encode()).digest()[:16]


def identities(rows: list[tuple[str, str, str | None, str | None]]) -> pl.DataFrame:
    """(maison, ref label, email label, phone label) -> the identities contract."""
    return pl.DataFrame(
        {
            "maison": [r[0] for r in rows],
            "maison_ref": [tok("ref:" + r[0] + r[1]) for r in rows],
            "email_token": [tok(r[2]) for r in rows],
            "phone_token": [tok(r[3]) for r in rows],
        },
        schema={
            "maison": pl.String,
            "maison_ref": pl.Binary,
            "email_token": pl.Binary,
            "phone_token": pl.Binary,
        },
    )


def resolve(rows, *, method="scipy", max_records_per_token=3) -> dict[tuple[str, str], int]:
    """Resolve crafted rows; return {(maison, ref label): person_id}."""
    frame = identities(rows)
    back = {tok("ref:" + r[0] + r[1]): (r[0], r[1]) for r in rows}
    with Engine() as engine:
        engine.register("identities", frame)
        table = resolve_persons(
            engine, "identities", max_records_per_token=max_records_per_token, method=method
        )
        out = engine.to_polars(table)
    assert out.columns == ["maison", "maison_ref", "person_id"]
    return {back[ref]: pid for ref, pid in zip(out["maison_ref"], out["person_id"], strict=True)}


@pytest.mark.parametrize("method", METHODS)
def test_chain_through_email_then_phone_is_one_person(method):
    got = resolve(
        [
            ("aurelle", "A", "e1", None),
            ("kessler", "B", "e1", "p1"),
            ("vautrin", "C", None, "p1"),
            ("vautrin", "D", "e9", "p9"),  # a different person
        ],
        method=method,
    )
    assert got[("aurelle", "A")] == got[("kessler", "B")] == got[("vautrin", "C")]
    assert got[("vautrin", "D")] != got[("aurelle", "A")]
    assert len(got) == 4


@pytest.mark.parametrize("method", METHODS)
def test_long_chain_converges(method):
    # A path of 40 records, each sharing a token with the next: one person, diameter 39.
    rows = [
        ("aurelle" if i % 2 else "kessler", f"r{i}", f"e{i // 2}", f"p{(i + 1) // 2}")
        for i in range(40)
    ]
    got = resolve(rows, method=method)
    assert len(set(got.values())) == 1


@pytest.mark.parametrize("method", METHODS)
def test_placeholder_shared_by_four_records_of_one_maison_links_nobody(method):
    rows = [("aurelle", f"r{i}", None, "boutique-phone") for i in range(4)]
    got = resolve(rows, method=method, max_records_per_token=3)
    assert len(set(got.values())) == 4


@pytest.mark.parametrize("method", METHODS)
def test_token_at_the_guard_limit_still_links(method):
    rows = [("aurelle", f"r{i}", "family@", None) for i in range(3)]
    got = resolve(rows, method=method, max_records_per_token=3)
    assert len(set(got.values())) == 1


@pytest.mark.parametrize("method", METHODS)
def test_token_shared_once_in_each_of_five_maisons_links(method):
    maisons = ["aurelle", "kessler", "vautrin", "harrow", "celeste"]
    got = resolve([(m, "x", "same@", None) for m in maisons], method=method)
    assert len(set(got.values())) == 1


@pytest.mark.parametrize("method", METHODS)
def test_nulls_never_link(method):
    rows = [("aurelle", f"r{i}", None, None) for i in range(5)]
    rows += [("kessler", f"r{i}", None, None) for i in range(5)]
    got = resolve(rows, method=method)
    assert len(set(got.values())) == 10


@pytest.mark.parametrize("method", METHODS)
def test_email_and_phone_tokens_of_equal_bytes_never_link(method):
    got = resolve(
        [("aurelle", "A", "collide", None), ("kessler", "B", None, "collide")], method=method
    )
    assert got[("aurelle", "A")] != got[("kessler", "B")]


@pytest.mark.parametrize("method", METHODS)
def test_person_ids_are_dense_deterministic_and_follow_smallest_record(method):
    rows = [
        ("kessler", "B", "e1", None),
        ("aurelle", "A", "e1", None),
        ("aurelle", "Z", None, None),
        ("vautrin", "C", None, "p1"),
        ("harrow", "D", None, "p1"),
    ]
    first = resolve(rows, method=method)
    again = resolve(list(reversed(rows)), method=method)
    assert first == again
    assert sorted(set(first.values())) == list(range(1, 4))


def test_scipy_and_sql_agree_on_a_random_graph():
    rng = np.random.default_rng(7)
    rows = []
    for i in range(600):
        maison = ["aurelle", "kessler", "vautrin"][i % 3]
        email = f"e{rng.integers(0, 400)}" if rng.random() < 0.7 else None
        phone = f"p{rng.integers(0, 400)}" if rng.random() < 0.5 else None
        rows.append((maison, f"r{i}", email, phone))
    assert resolve(rows, method="scipy") == resolve(rows, method="sql")


def test_duplicate_identity_rows_are_one_record():
    got = resolve([("aurelle", "A", "e1", None), ("aurelle", "A", None, "p1")])
    assert len(got) == 1


def test_connected_components_numbers_by_smallest_node():
    # nodes 0..5: {0, 4}, {1}, {2, 3, 5}
    pid = connected_components(np.array([4, 5, 3]), np.array([0, 2, 2]), 6)
    assert pid.tolist() == [1, 2, 3, 3, 1, 3]


def test_match_figures_counts_breadth_overlap_and_guarded_tokens():
    rows = [("aurelle", f"a{i}", f"e{i}", None) for i in range(60)]
    rows += [("kessler", f"k{i}", f"e{i}", None) for i in range(55)]  # 55 shared with aurelle
    rows += [("vautrin", f"v{i}", f"e{i}", None) for i in range(5)]  # 5 shared with both
    rows += [("vautrin", f"w{i}", None, "shop") for i in range(4)]  # a placeholder
    frame = identities(rows)
    with Engine() as engine:
        engine.register("identities", frame)
        table = resolve_persons(engine, "identities", max_records_per_token=3)
        figures = match_figures(engine, table, k_aggregate=50)
    assert figures["records"] == 124
    assert figures["persons"] == 60 + 4
    assert figures["persons_by_maisons"] == {"1": 9, "2": 50, "3": 5}
    assert figures["pairwise_overlap"] == {
        "aurelle|kessler": 55,
        "aurelle|vautrin": None,  # 5 persons < k_aggregate
        "kessler|vautrin": None,
    }
    assert figures["ignored_tokens"] == 1


def test_guard_must_be_positive():
    from crossgroup.errors import InputError

    with Engine() as engine, pytest.raises(InputError):
        resolve_persons(engine, "identities", max_records_per_token=0)
