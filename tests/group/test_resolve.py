"""Person resolution: transitive links, placeholder guard, typed tokens, determinism."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

sys.path.insert(0, str(Path(__file__).parent))

from identity_rows import identities, tok

from crossgroup.engine import DuckDBEngine
from crossgroup.group.components import components_in_engine
from crossgroup.group.resolve import match_figures, resolve_persons


def resolve(rows, *, max_records_per_token=3) -> dict[tuple[str, str], int]:
    """Resolve crafted rows; return {(maison, ref label): person_id}."""
    frame = identities(rows)
    back = {tok("ref:" + r[0] + r[1]): (r[0], r[1]) for r in rows}
    with DuckDBEngine() as engine:
        engine.register("identities", frame)
        table = resolve_persons(engine, "identities", max_records_per_token=max_records_per_token)
        out = engine.to_polars(table)
    assert out.columns == ["maison", "maison_ref", "person_id"]
    return {back[ref]: pid for ref, pid in zip(out["maison_ref"], out["person_id"], strict=True)}


def test_chain_through_email_then_phone_is_one_person():
    got = resolve(
        [
            ("aurelle", "A", "e1", None),
            ("kessler", "B", "e1", "p1"),
            ("vautrin", "C", None, "p1"),
            ("vautrin", "D", "e9", "p9"),  # a different person
        ],
    )
    assert got[("aurelle", "A")] == got[("kessler", "B")] == got[("vautrin", "C")]
    assert got[("vautrin", "D")] != got[("aurelle", "A")]
    assert len(got) == 4


def test_long_chain_converges():
    # A path of 40 records, each sharing a token with the next: one person, diameter 39.
    # The path holds 20 records of each maison, so the guard is raised past that: with the
    # default guard the component guard would (rightly) split it into single records.
    rows = [
        ("aurelle" if i % 2 else "kessler", f"r{i}", f"e{i // 2}", f"p{(i + 1) // 2}")
        for i in range(40)
    ]
    got = resolve(rows, max_records_per_token=20)
    assert len(set(got.values())) == 1


def test_placeholder_shared_by_four_records_of_one_maison_links_nobody():
    rows = [("aurelle", f"r{i}", None, "boutique-phone") for i in range(4)]
    got = resolve(rows, max_records_per_token=3)
    assert len(set(got.values())) == 4


def test_token_at_the_guard_limit_still_links():
    rows = [("aurelle", f"r{i}", "family@", None) for i in range(3)]
    got = resolve(rows, max_records_per_token=3)
    assert len(set(got.values())) == 1


def test_token_shared_once_in_each_of_five_maisons_links():
    maisons = ["aurelle", "kessler", "vautrin", "harrow", "celeste"]
    got = resolve([(m, "x", "same@", None) for m in maisons])
    assert len(set(got.values())) == 1


def test_nulls_never_link():
    rows = [("aurelle", f"r{i}", None, None) for i in range(5)]
    rows += [("kessler", f"r{i}", None, None) for i in range(5)]
    got = resolve(rows)
    assert len(set(got.values())) == 10


def test_email_and_phone_tokens_of_equal_bytes_never_link():
    got = resolve([("aurelle", "A", "collide", None), ("kessler", "B", None, "collide")])
    assert got[("aurelle", "A")] != got[("kessler", "B")]


def test_person_ids_are_dense_deterministic_and_follow_smallest_record():
    rows = [
        ("kessler", "B", "e1", None),
        ("aurelle", "A", "e1", None),
        ("aurelle", "Z", None, None),
        ("vautrin", "C", None, "p1"),
        ("harrow", "D", None, "p1"),
    ]
    first = resolve(rows)
    again = resolve(list(reversed(rows)))
    assert first == again
    assert sorted(set(first.values())) == list(range(1, 4))


def test_persons_are_the_connected_components_of_a_random_graph():
    """Against SciPy over every record pair that shares a typed token (guard out of reach):
    the same partition, numbered by each person's smallest record."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(600):
        maison = ["aurelle", "kessler", "vautrin"][i % 3]
        email = f"e{rng.integers(0, 400)}" if rng.random() < 0.7 else None
        phone = f"p{rng.integers(0, 400)}" if rng.random() < 0.5 else None
        rows.append((maison, f"r{i}", email, phone))
    got = resolve(rows, max_records_per_token=600)
    order = sorted(
        range(len(rows)), key=lambda i: (rows[i][0], tok(f"ref:{rows[i][0]}{rows[i][1]}"))
    )
    node = {i: n for n, i in enumerate(order)}  # node ids follow (maison, ref)
    first_holder, src, dst = {}, [], []
    for i, (_, _, email, phone) in enumerate(rows):
        for key in (("e", email), ("p", phone)):
            if key[1] is not None:
                src.append(node[i])
                dst.append(node[first_holder.setdefault(key, i)])
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(len(rows), len(rows)))
    _, labels = scipy_components(graph, directed=False)
    # SciPy's labels, renumbered 1..P in order of each component's smallest record
    first_seen = {int(label): None for label in labels}  # labels in node order, once
    expected = {label: i + 1 for i, label in enumerate(first_seen)}
    assert {(r[0], r[1]): expected[int(labels[node[i]])] for i, r in enumerate(rows)} == got
    assert max(np.bincount(list(got.values()))) >= 5  # chains of several links


def chain_edges(n: int, order: str) -> pl.DataFrame:
    """A path through n nodes visited in the given order, as star edges (larger, smaller)."""
    path = {
        "ascending": np.arange(n),
        "descending": np.arange(n)[::-1],
        "zigzag": np.array([i // 2 if i % 2 == 0 else n - 1 - i // 2 for i in range(n)]),
        "random": np.random.default_rng(5).permutation(n),
    }[order]
    a, b = path[:-1], path[1:]
    return pl.DataFrame({"src": np.maximum(a, b), "dst": np.minimum(a, b)})


def components_of_edges(engine, edges: pl.DataFrame, n: int, *, max_rounds: int) -> pl.DataFrame:
    engine.register("edges", edges)
    engine.register("nodes", pl.DataFrame({"node_id": np.arange(n, dtype=np.int64)}))
    got = components_in_engine(engine, "edges", "nodes", "components", max_rounds=max_rounds)
    return engine.to_polars(got).sort("node_id")


@pytest.mark.parametrize("order", ["ascending", "descending", "zigzag", "random"])
def test_a_long_chain_is_one_person_in_a_logarithmic_number_of_rounds(order):
    """A maison can chain records through tokens each shared by two, in any order of
    record numbers: rounds must grow with the log of the chain (label propagation needed
    more than 64 rounds for 300 records), so a bound of 2·log2(n) pairs must hold."""
    n = 3000
    with DuckDBEngine() as engine:
        got = components_of_edges(engine, chain_edges(n, order), n, max_rounds=24)
    assert got["node_id"].to_list() == list(range(n))
    assert got["label"].unique().to_list() == [0]


def test_components_are_labelled_by_smallest_node_and_isolated_nodes_kept():
    edges = pl.DataFrame({"src": [4, 5, 3, 6], "dst": [0, 2, 2, 5]})  # {0,4} {1} {2,3,5,6}
    with DuckDBEngine() as engine:
        got = components_of_edges(engine, edges, 8, max_rounds=10)
    assert got["label"].to_list() == [0, 1, 2, 2, 0, 2, 2, 7]


def test_duplicate_identity_rows_are_one_record():
    got = resolve([("aurelle", "A", "e1", None), ("aurelle", "A", None, "p1")])
    assert len(got) == 1


def test_match_figures_counts_breadth_overlap_and_guarded_tokens():
    rows = [("aurelle", f"a{i}", f"e{i}", None) for i in range(60)]
    rows += [("kessler", f"k{i}", f"e{i}", None) for i in range(55)]  # 55 shared with aurelle
    rows += [("vautrin", f"v{i}", f"e{i}", None) for i in range(5)]  # 5 shared with both
    rows += [("vautrin", f"w{i}", None, "shop") for i in range(4)]  # a placeholder
    frame = identities(rows)
    with DuckDBEngine() as engine:
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
    assert figures["ignored_tokens_shared_across_maisons"] == 0
    assert figures["split_components"] == figures["split_records"] == 0


def test_placeholder_shared_by_three_records_in_each_of_eight_maisons_links_nobody():
    """Invariant 8 across maisons: 3 holders per maison pass the per-maison guard, but 24
    records in 8 maisons are 16 beyond one per maison: not one person."""
    maisons = ["aurelle", "belvoir", "celeste", "harrow", "kessler", "lumen", "orval", "vautrin"]
    rows = [(m, f"r{i}", "test@test.com", None) for m in maisons for i in range(3)]
    rows += [(m, "own", f"own@{m}", None) for m in maisons]
    got = resolve(rows, max_records_per_token=3)
    assert len(set(got.values())) == len(rows) == 32
    frame = identities(rows)
    with DuckDBEngine() as engine:
        engine.register("identities", frame)
        table = resolve_persons(engine, "identities", max_records_per_token=3)
        figures = match_figures(engine, table, k_aggregate=50)
    assert figures["persons_by_maisons"] == {"1": 32}
    assert figures["ignored_tokens"] == 1
    assert figures["ignored_tokens_shared_across_maisons"] == 1


def test_a_few_duplicates_across_maisons_still_link():
    # 2 records in each of 3 maisons: 3 beyond one per maison, at the guard: still a person
    rows = [(m, f"r{i}", "same@", None) for m in ("aurelle", "kessler", "vautrin") for i in (0, 1)]
    got = resolve(rows, max_records_per_token=3)
    assert len(set(got.values())) == 1
    # one more record makes 4 beyond one per maison: over the guard, nobody is linked
    got = resolve([*rows, ("harrow", "r0", "same@", None), ("harrow", "r1", "same@", None)],
                  max_records_per_token=3)  # fmt: skip
    assert len(set(got.values())) == 8


def test_component_gathering_too_many_records_of_one_maison_is_split():
    """Tokens each shared by 2 records chain 5 aurelle and 5 kessler records together: no
    single token trips the guard, but 5 records of one maison are not one person."""
    rows = []
    for i in range(5):
        rows.append(("aurelle", f"a{i}", f"e{i}", f"p{i - 1}" if i else None))
        rows.append(("kessler", f"k{i}", f"e{i}", f"p{i}"))
    rows.append(("vautrin", "v", "alone@", None))
    rows += [("harrow", "h", "pair@", None), ("celeste", "c", "pair@", None)]
    got = resolve(rows, max_records_per_token=3)
    assert len(set(got.values())) == len(rows) - 1  # only the harrow-celeste pair links
    assert got[("harrow", "h")] == got[("celeste", "c")]
    # ids stay dense 1..P
    assert sorted(set(got.values())) == list(range(1, len(rows)))
    # at a guard of 5 the chain is one person again
    got = resolve(rows, max_records_per_token=5)
    assert len({got[("aurelle", f"a{i}")] for i in range(5)} | {got[("kessler", "k0")]}) == 1
    frame = identities(rows)
    with DuckDBEngine() as engine:
        engine.register("identities", frame)
        table = resolve_persons(engine, "identities", max_records_per_token=3)
        figures = match_figures(engine, table, k_aggregate=50)
    assert figures["split_components"] == 1 and figures["split_records"] == 10
    assert figures["ignored_tokens"] == 0
    assert figures["persons"] == len(rows) - 1


def test_guard_must_be_positive():
    from crossgroup.errors import InputError

    with DuckDBEngine() as engine, pytest.raises(InputError):
        resolve_persons(engine, "identities", max_records_per_token=0)
