"""Many clients at once, against both engines: creates with and without names, removals."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def test_parallel_runs_get_distinct_names_and_all_start(engine):
    label = f"acc-par={engine.label}"
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda _: engine.docker("run", "-d", "--label", label, "busybox", "sleep", "60"),
                                range(24)))
    assert [r.rc for r in results] == [0] * 24, [r for r in results if r.rc][:2]
    rows = engine.ok("ps", "--filter", f"label={label}", "--format", "{{.Names}} {{.State}}").split("\n")
    rows = [r for r in rows if r]
    assert len(rows) == 24 and all(r.endswith(" running") for r in rows), rows
    assert len({r.split()[0] for r in rows}) == 24
    ids = [r.stdout.strip() for r in results]
    with ThreadPoolExecutor(max_workers=8) as pool:
        removed = list(pool.map(lambda i: engine.docker("rm", "-f", i), ids))
    assert [r.rc for r in removed] == [0] * 24
    assert engine.ok("ps", "-aq", "--filter", f"label={label}") == ""


def test_parallel_creates_of_one_name_let_exactly_one_win(engine):
    name = engine.new_name()
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: engine.docker("create", "--name", name, "busybox", "true"), range(6)))
    winners = [r for r in results if r.rc == 0]
    losers = [r for r in results if r.rc != 0]
    assert len(winners) == 1, results
    assert all(f'The container name "/{name}" is already in use by container' in r.stderr for r in losers), losers
    assert engine.ok("inspect", "-f", "{{.Id}}", name).strip() == winners[0].stdout.strip()
