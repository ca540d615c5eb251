"""Committed images name their base as parent, and the base cannot be deleted under them (both engines)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def test_commit_records_the_parent_and_protects_it(engine):
    base_tag = engine.new_image()
    child_tag = engine.new_image()
    engine.ok("tag", "busybox", base_tag)
    base_id = engine.inspect(base_tag, "{{.Id}}").strip()
    name = engine.new_name()
    engine.ok("run", "--name", name, base_tag, "sh", "-c", "echo x > /made")
    engine.ok("commit", name, child_tag)
    engine.ok("rm", name)
    assert engine.ok("image", "inspect", "-f", "{{.Parent}}", child_tag).strip() == base_id
    listed = engine.ok("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert f"{child_tag} " in listed
    r = engine.docker("rmi", "-f", base_id)
    assert r.rc != 0 and "image has dependent child images" in r.stderr, r
    assert engine.ok("run", "--rm", child_tag, "cat", "/made") == "x\n"
    engine.ok("rmi", child_tag)
