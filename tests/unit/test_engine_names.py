"""Container names, ids, and the id/name/prefix index."""

from __future__ import annotations

import random
import re

import pytest

from dockyard.engine.daemon import names as N
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound


@pytest.mark.parametrize("good", ["ab", "a1", "web.1", "my_app-2", "/web", "0x"])
def test_valid_names(good: str) -> None:
    assert N.validate_name(good) == "/" + good.lstrip("/")


@pytest.mark.parametrize("bad", ["a", "", "/", "-ab", "_ab", ".ab", "a b", "a/b", "héllo", "//ab"])
def test_invalid_names_message(bad: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        N.validate_name(bad)
    assert str(exc.value) == f"Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"


def test_name_conflict_message() -> None:
    err = N.name_conflict("web", "abc123")
    assert isinstance(err, Conflict)
    assert str(err) == (
        'Conflict. The container name "/web" is already in use by container "abc123". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


def test_word_lists_sizes_and_shape() -> None:
    assert len(set(N._ADJECTIVES)) >= 100
    assert len(set(N._SURNAMES)) >= 150
    rng = random.Random(1)
    for _ in range(200):
        name = N.random_name(lambda n: False, rng=rng)
        assert re.fullmatch(r"[a-z]+_[a-z_]+", name), name
        assert N.NAME_RE.match(name)


def test_random_name_avoids_taken_and_appends_digit() -> None:
    seen: list[str] = []

    def taken(name: str) -> bool:
        seen.append(name)
        return len(seen) <= 3

    name = N.random_name(taken, rng=random.Random(7))
    assert name == seen[-1]
    assert name[-1].isdigit()  # the fourth try is a retry
    assert not seen[0][-1].isdigit()


def test_random_name_fallback_then_gives_up() -> None:
    assert N.random_name(lambda n: n != "abcdef012345", fallback="abcdef012345") == "abcdef012345"
    with pytest.raises(Conflict):
        N.random_name(lambda n: True)


def test_ids() -> None:
    a, b = N.new_id(), N.new_id()
    assert re.fullmatch(r"[0-9a-f]{64}", a) and a != b
    assert N.short_id(a) == a[:12]
    assert N.short_id("sha256:" + a) == a[:12]


ID1 = "abc" + "1" * 61
ID2 = "abd" + "2" * 61
ID3 = "ffff" + "3" * 60


def _index() -> N.IdIndex:
    idx = N.IdIndex()
    idx.add(ID1, "/web")
    idx.add(ID2, "db")
    idx.add(ID3)
    return idx


def test_resolution_order() -> None:
    idx = _index()
    assert idx.get(ID1) == ID1
    assert idx.get("web") == ID1 and idx.get("/web") == ID1
    assert idx.get("abc") == ID1
    assert idx.get("ff") == ID3
    assert idx.name_of(ID1) == "web" and idx.name_of(ID3) is None
    assert len(idx) == 3 and ID2 in idx and set(idx) == {ID1, ID2, ID3}


def test_name_wins_over_prefix() -> None:
    idx = _index()
    idx.add(ID3, "abc")  # a name that is also a prefix of ID1
    assert idx.get("abc") == ID3


def test_errors() -> None:
    idx = _index()
    with pytest.raises(NotFound) as nf:
        idx.get("nothing")
    assert str(nf.value) == "No such container: nothing"
    with pytest.raises(DockyardError) as amb:
        idx.get("ab")
    assert str(amb.value) == "Multiple IDs found with provided prefix: ab"
    assert not isinstance(amb.value, NotFound)
    with pytest.raises(InvalidArgument) as empty:
        idx.get("")
    assert str(empty.value) == 'invalid name or ID supplied: ""'
    assert idx.get_by_prefix("ab") is None and idx.get_by_prefix("abd") == ID2


def test_rename_remove_conflict() -> None:
    idx = _index()
    with pytest.raises(Conflict):
        idx.add(ID3, "web")
    idx.rename(ID1, "site")
    assert idx.id_of_name("web") is None and idx.get("site") == ID1
    idx.remove(ID1)
    with pytest.raises(NotFound):
        idx.get("site")
    idx.add(ID3, "web")
    assert idx.get("web") == ID3
    assert N.IdIndex("exec instance").kind == "exec instance"
