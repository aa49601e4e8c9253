"""PostgreSQL's query plans, for tests that check a statement reads an index (SQLite's side of such a
test reads EXPLAIN QUERY PLAN).

A test's tables hold a few rows, and on so few PostgreSQL rightly reads a whole table rather than an
index: its plan then says nothing about the million-record archive the index is for. So the plan is
asked with whole-table scans (and, as asked, sorts, or joins that read a side whole) priced out
(``enable_seqscan``, ``enable_sort``, ...: off): the planner still takes one when nothing else can run
the statement, so a ``Seq Scan`` (or a ``Sort``) left in that plan is one no index can avoid — the
promise broken — while a plan without is one an index serves, as it would at scale.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from twentyday.store.postgres import PgConnection


def plan_nodes(conn: PgConnection, sql: str, params: Sequence[Any], *,
               sorts_too: bool = False, lookups: bool = False) -> list[dict[str, Any]]:
    """Every node of the plan PostgreSQL picks for ``sql`` when it can avoid a whole-table scan (and
    with ``sorts_too`` a sort; with ``lookups`` a hash or merge join or a materialized side, which
    read a side whole once where a nested loop looks each of its rows up) only through an index;
    each node's JSON (``Node Type``, ``Relation Name``, ``Alias``, ``Index Name``, ``Index Cond``,
    ...), outermost first."""
    settings = ["enable_seqscan"] + (["enable_sort"] if sorts_too else []) + (
        ["enable_hashjoin", "enable_mergejoin", "enable_material"] if lookups else [])
    for setting in settings:
        conn.execute(f"SET {setting} = off")
    try:
        [(document,)] = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchall()
    finally:
        for setting in settings:
            conn.execute(f"RESET {setting}")
    return list(_walk(document[0]["Plan"]))


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _walk(child)


def whole_reads(nodes: list[dict[str, Any]], tables: Sequence[str]) -> list[str]:
    """The nodes that read all of one of ``tables``: a sequential scan, or an index scan with no
    condition on the index (its whole length: what SQLite's plan calls 'SCAN t USING INDEX')."""
    found = []
    for node in nodes:
        if node.get("Relation Name") not in tables:
            continue
        kind = node["Node Type"]
        if kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node):
            found.append(f"{kind} on {node['Relation Name']} {node.get('Alias', '')}".strip())
    return found
