"""The filters query parameter: both JSON shapes and moby's match semantics."""

from __future__ import annotations

import json

import pytest

from dockyard.engine.daemon import filters as F
from dockyard.errors import InvalidArgument


def test_empty_forms() -> None:
    assert F.parse_filters(None) == {}
    assert F.parse_filters("") == {}
    assert F.parse_filters("{}") == {}


def test_go_cli_set_shape() -> None:
    got = F.parse_filters('{"status":{"running":true,"paused":true},"label":{"a=b":true}}')
    assert got == {"status": ["running", "paused"], "label": ["a=b"]}


def test_docker_py_list_shape() -> None:
    got = F.parse_filters(json.dumps({"status": ["running", "running"], "dangling": [True], "exited": [0]}))
    assert got == {"status": ["running"], "dangling": ["true"], "exited": ["0"]}


@pytest.mark.parametrize("raw", ["{", "[1]", '"x"', '{"a": 3}', '{"a": [[1]]}'])
def test_bad_json(raw: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        F.parse_filters(raw)
    assert str(exc.value) == "invalid filter"


def test_to_json_roundtrip() -> None:
    f = {"label": ["a", "b=c"]}
    assert json.loads(F.to_json(f)) == {"label": {"a": True, "b=c": True}}
    assert F.parse_filters(F.to_json(f)) == f
    assert F.to_json({}) == ""


def test_validate_message() -> None:
    F.validate({"status": ["x"]}, {"status", "label"})
    with pytest.raises(InvalidArgument) as exc:
        F.validate({"status": [], "bogus": ["1"]}, {"status"})
    assert str(exc.value) == "Invalid filter 'bogus'"


def test_invalid_filter_messages() -> None:
    assert str(F.invalid_filter("status", "x")) == "Invalid filter 'status=x'"
    assert str(F.invalid_filter("is-task", ["a", "b"])) == "Invalid filter 'is-task=[a b]'"


def test_exact_fuzzy_regex() -> None:
    f = {"name": ["web", "^db"], "id": ["abc"]}
    assert F.exact_match(f, "missing", "anything")
    assert F.exact_match(f, "name", "web") and not F.exact_match(f, "name", "web1")
    assert F.fuzzy_match(f, "id", "abcdef") and not F.fuzzy_match(f, "id", "xabc")
    assert F.match(f, "name", "myweb1") and F.match(f, "name", "db2")
    assert not F.match(f, "name", "xdb")
    assert F.match({"name": ["[bad"]}, "name", "[bad")  # exact match still works
    assert not F.match({"name": ["[bad"]}, "name", "other")  # bad regex skipped


def test_match_kv() -> None:
    labels = {"a": "1", "b": ""}
    assert F.match_kv([], {})
    assert not F.match_kv(["a"], {})
    assert F.match_kv(["a"], labels)
    assert F.match_kv(["a=1", "b"], labels)
    assert F.match_kv(["b="], labels)
    assert not F.match_kv(["a=2"], labels)
    assert not F.match_kv(["a", "c"], labels)
    assert F.match_kv(["x=y=z"], {"x": "y=z"})


def test_match_labels_negated() -> None:
    labels = {"keep": "yes", "env": "dev"}
    assert F.match_labels({}, labels)
    assert not F.match_labels({"label!": ["keep"]}, labels)
    assert F.match_labels({"label!": ["keep=no"]}, labels)
    # label! excludes only when all its pairs match
    assert F.match_labels({"label!": ["keep", "other"]}, labels)
    assert not F.match_labels({"label": ["env=prod"]}, labels)


def test_truthy() -> None:
    assert F.truthy({"dangling": ["true"]}, "dangling") is True
    assert F.truthy({"dangling": ["1"]}, "dangling") is True
    assert F.truthy({"dangling": ["false"]}, "dangling") is False
    assert F.truthy({"dangling": ["0"]}, "dangling", default=True) is False
    assert F.truthy({}, "dangling", default=True) is True
    with pytest.raises(InvalidArgument) as exc:
        F.truthy({"dangling": ["maybe"]}, "dangling")
    assert str(exc.value) == "Invalid filter 'dangling=[maybe]'"
