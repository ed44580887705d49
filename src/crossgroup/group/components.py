"""Connected components in SQL, on any engine: alternating large-star and small-star rounds.

Kiveris, Lattanzi, Mirrokni, Rastogi and Vassilvitskii, "Connected components in MapReduce
and beyond" (SoCC 2014). Edges are kept oriented from the larger node to the smaller, and
each round rewires them towards smaller nodes until every component is a star around its
smallest node. Min-label propagation needs as many rounds as the longest chain is long; these
rounds grow with its log, so a chain of records a maison built on purpose costs little.
"""

from __future__ import annotations

from crossgroup.engine import Engine, Step
from crossgroup.errors import InputError

MAX_ROUNDS = 200  # pairs of rounds; O(log² n) suffice for any graph an int64 can number


def large_star_step(edges: str, name: str) -> Step:
    """Large-star: every edge (v, u), v > u, becomes (v, m), m the smallest neighbour of u
    or u itself; each pair once. The same nodes stay connected, through smaller nodes."""
    return Step(
        name,
        f"""
        SELECT DISTINCT e.src, coalesce(m.least_neighbour, e.dst) AS dst
        FROM {edges} e
        LEFT JOIN (SELECT src, min(dst) AS least_neighbour FROM {edges} GROUP BY src) m
               ON m.src = e.dst
        """,
    )


def small_star_step(edges: str, name: str) -> Step:
    """Small-star: each node u and all its smaller neighbours are linked to the smallest of
    them, m: edges (v, m) for each smaller neighbour v other than m, and (u, m)."""
    return Step(
        name,
        f"""
        WITH least AS (SELECT src, min(dst) AS least_neighbour FROM {edges} GROUP BY src)
        SELECT e.dst AS src, l.least_neighbour AS dst
        FROM {edges} e JOIN least l ON l.src = e.src
        WHERE e.dst <> l.least_neighbour
        UNION
        SELECT src, least_neighbour AS dst FROM least
        """,
    )


def stars_check_sql(edges: str) -> str:
    """Edges that keep the graph from being stars around each component's smallest node:
    a node with two parents, or a parent that has one itself. None left: converged."""
    return f"""
        SELECT (SELECT count(*) FROM (SELECT src FROM {edges} GROUP BY src
                                      HAVING count(*) > 1) AS twice)
             + (SELECT count(*) FROM {edges} e
                WHERE e.dst IN (SELECT src FROM {edges})) AS unfinished
    """


def components_in_engine(
    engine: Engine, edges: str, nodes: str, name: str, *, max_rounds: int = MAX_ROUNDS
) -> str:
    """`name(node_id, label)`: every node of `nodes` labelled with the smallest node of its
    connected component in `edges(src, dst)`, src > dst.

    No round adds edges, and the rounds needed grow as O(log² n) whatever the order of the
    nodes (the paper's bound; a chain a maison arranged on purpose included: 15 pairs for a
    chain of 30,000 records in order). Every round is a table of its own, so an engine
    plans it from its real size.
    """
    current = engine.run(
        Step(f"{name}_stars_0", f"SELECT DISTINCT src, dst FROM {edges} WHERE src <> dst")
    )
    for i in range(1, max_rounds + 1):
        large = engine.run(large_star_step(current, f"{name}_large_{i}"))
        engine.drop(current)
        current = engine.run(small_star_step(large, f"{name}_stars_{i}"))
        engine.drop(large)
        if not engine.scalar(stars_check_sql(current)):
            break
    else:  # pragma: no cover - O(log² n) pairs: beyond any record count an int64 holds
        raise InputError(f"person resolution did not converge in {max_rounds} rounds")
    engine.run(
        Step(
            name,
            f"SELECT n.node_id, coalesce(s.dst, n.node_id) AS label "
            f"FROM {nodes} n LEFT JOIN {current} s ON s.src = n.node_id",
        )
    )
    engine.drop(current)
    return name
