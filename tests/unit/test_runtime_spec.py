"""config.json validation: everything rejected before anything is created."""

from __future__ import annotations

import copy
import json

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci import runtime_spec
from dockyard.runtime.specgen import default_spec


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def write(bundle, spec):
    (bundle / "config.json").write_text(json.dumps(spec))


def test_default_spec_is_valid(bundle):
    write(bundle, default_spec())
    spec, rootfs = runtime_spec.load_bundle(str(bundle))
    assert rootfs == str(bundle / "rootfs")


def test_missing_config(bundle):
    with pytest.raises(NotFound, match="config.json not found"):
        runtime_spec.load_bundle(str(bundle))


def test_invalid_json(bundle):
    (bundle / "config.json").write_text("{nope")
    with pytest.raises(InvalidArgument, match="invalid JSON"):
        runtime_spec.load_bundle(str(bundle))


CASES = [
    (lambda s: s.update(ociVersion="2.0.0"), "unsupported ociVersion"),
    (lambda s: s.update(ociVersion="1.9.0"), "unsupported ociVersion"),
    (lambda s: s.pop("ociVersion"), "ociVersion must be set"),
    (lambda s: s["root"].update(path="missing"), "does not exist"),
    (lambda s: s["process"].update(args=[]), "args must not be empty"),
    (lambda s: s["process"].update(cwd="relative"), "Cwd must be an absolute path"),
    (lambda s: s["linux"]["namespaces"].append({"type": "pid"}), "duplicated ns"),
    (lambda s: s["linux"]["namespaces"].append({"type": "bogus"}), "does not exist"),
    (lambda s: s["linux"].update(namespaces=[{"type": "mount"}]), "without a private UTS namespace"),
    (lambda s: s["linux"].update(sysctl={"net.ipv4.ip_forward": "1"}, namespaces=[{"type": "uts"}]),
     "hosts network namespace"),
    (lambda s: s["linux"].update(sysctl={"vm.swappiness": "1"}), "not in a separate kernel namespace"),
    (lambda s: s["process"].update(rlimits=[{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]), "wrong rlimit"),
    (lambda s: s.update(hooks={"prestart": [{"path": "relative"}]}), "path must be absolute"),
    (lambda s: s["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "uid/gid mappings are set"),
]


@pytest.mark.parametrize("mutate,message", CASES)
def test_rejected(bundle, mutate, message):
    spec = copy.deepcopy(default_spec())
    mutate(spec)
    write(bundle, spec)
    with pytest.raises(InvalidArgument, match=message):
        runtime_spec.load_bundle(str(bundle))
