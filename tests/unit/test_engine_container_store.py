"""The container store's names: reservations made at create time, conflicts, lookups."""

from __future__ import annotations

import pytest

from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.containers.store import ContainerStore
from dockyard.errors import Conflict, NotFound


def _container(id: str, name: str) -> Container:
    return Container(id=id, name=name, created="2026-11-27T00:00:00Z", image_id="sha256:" + "0" * 64,
                     image_ref="busybox", config={}, host_config={})


def test_a_reserved_name_conflicts_until_released(tmp_path):
    store = ContainerStore(str(tmp_path))
    a, b = "a" * 64, "b" * 64
    store.reserve("/web", a)
    assert store.name_taken("web")
    with pytest.raises(Conflict) as e:
        store.reserve("/web", b)  # a concurrent create of the same name
    assert 'The container name "/web" is already in use by container "' + a in str(e.value)
    with pytest.raises(NotFound):
        store.get("web")  # reserved is not created
    store.release("/web", a)
    assert not store.name_taken("web")


def test_the_reserving_create_adds_its_container_and_keeps_the_name(tmp_path):
    store = ContainerStore(str(tmp_path))
    a = "a" * 64
    store.reserve("/web", a)
    store.add(_container(a, "/web"))
    store.release("/web", a)  # what create's finally does: a recorded container keeps its name
    assert store.get("web").id == a and store.get("aaa").id == a
    with pytest.raises(Conflict):
        store.add(_container("c" * 64, "/web"))
    reloaded = ContainerStore(str(tmp_path))
    assert reloaded.load_all() == [] and reloaded.get("/web").id == a
