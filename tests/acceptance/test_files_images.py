"""Files in and out of containers (`cp`), and images made from containers: export/import, save/load, commit."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.acceptance.conftest import errors

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]

SETUP = "mkdir -p /d/sub; echo a > /d/a; echo b > /d/sub/b; chmod 600 /d/a; sleep 60"


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_cp_out_file_and_dirs(engine, tmp_path):
    name = engine.run_d("busybox", "sh", "-c", SETUP)
    engine.wait_for("setup", lambda: engine.docker("exec", name, "test", "-f", "/d/sub/b").rc == 0)
    engine.ok("cp", f"{name}:/d/a", str(tmp_path / "a.txt"))
    assert (tmp_path / "a.txt").read_text() == "a\n"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o600
    engine.ok("cp", f"{name}:/d", str(tmp_path / "whole"))
    assert _tree(tmp_path / "whole") == ["a", "sub", "sub/b"]
    (tmp_path / "x").mkdir()
    engine.ok("cp", f"{name}:/d/.", str(tmp_path / "x"))
    assert _tree(tmp_path / "x") == ["a", "sub", "sub/b"]
    assert (tmp_path / "x" / "sub" / "b").read_text() == "b\n"
    r = engine.docker("cp", f"{name}:/nonexist", str(tmp_path / "z"))
    assert r.rc == 1 and f"Could not find the file /nonexist in container {name}" in r.stderr, r


def test_cp_out_to_stdout_is_a_tar(engine):
    name = engine.run_d("busybox", "sh", "-c", SETUP)
    engine.wait_for("setup", lambda: engine.docker("exec", name, "test", "-f", "/d/sub/b").rc == 0)
    proc = engine.popen("cp", f"{name}:/d", "-", stdout=-1, stderr=-1)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert sorted(tar.getnames()) == ["d", "d/a", "d/sub", "d/sub/b"]
        assert tar.extractfile("d/sub/b").read() == b"b\n"


def test_cp_in_file_and_dir(engine, tmp_path):
    name = engine.run_d("busybox", "sleep", "60")
    (tmp_path / "h.txt").write_text("hi\n")
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "f").write_text("deep\n")
    engine.ok("cp", str(tmp_path / "h.txt"), f"{name}:/tmp/")
    engine.ok("cp", str(tmp_path / "dir"), f"{name}:/tmp/y")
    engine.ok("cp", str(tmp_path / "dir") + "/.", f"{name}:/root")
    out = engine.ok("exec", name, "sh", "-c", "cat /tmp/h.txt /tmp/y/sub/f /root/sub/f; find /tmp | sort")
    assert out == "hi\ndeep\ndeep\n/tmp\n/tmp/h.txt\n/tmp/y\n/tmp/y/sub\n/tmp/y/sub/f\n", out


def test_cp_into_stopped_container(engine, tmp_path):
    name = engine.new_name()
    engine.ok("create", "--name", name, "busybox", "cat", "/etc/msg")
    (tmp_path / "msg").write_text("copied while created\n")
    engine.ok("cp", str(tmp_path / "msg"), f"{name}:/etc/msg")
    engine.ok("start", name)
    assert engine.ok("wait", name) == "0\n"
    assert engine.ok("logs", name) == "copied while created\n"


def test_export_import_then_run(engine):
    name = engine.new_name()
    engine.ok("run", "--name", name, "busybox", "sh", "-c", "echo exported > /marker")
    exported = engine.popen("export", name, stdout=-1, stderr=-1)
    tar_bytes, err = exported.communicate(timeout=60)
    assert exported.returncode == 0, err
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        names = set(tar.getnames())
    assert {"marker", "bin/busybox", "etc/passwd"} <= names, sorted(names)[:20]
    image = engine.new_image()
    r = engine.docker("import", "-", image, input=tar_bytes, timeout=60)
    assert r.rc == 0 and r.stdout.startswith("sha256:"), r
    assert engine.ok("run", "--rm", image, "cat", "/marker") == "exported\n"
    assert engine.ok("image", "inspect", "-f", "{{.Comment}}", image).strip() == "Imported from -"


def test_save_load_round_trip(engine):
    image = engine.new_image()
    engine.ok("tag", "busybox", image)
    busybox_id = engine.ok("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    saved = engine.popen("save", image, stdout=-1, stderr=-1)
    archive, err = saved.communicate(timeout=60)
    assert saved.returncode == 0, err
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == [image]
        config = json.load(tar.extractfile(manifest[0]["Config"]))
    assert config["config"]["Cmd"] == ["sh"]
    engine.ok("rmi", image)
    assert engine.docker("image", "inspect", image).rc == 1
    r = engine.docker("load", input=archive, timeout=60)
    assert (r.rc, r.stdout) == (0, f"Loaded image: {image}\n"), r
    assert engine.ok("image", "inspect", "-f", "{{.Id}}", image).strip() == busybox_id
    assert engine.ok("run", "--rm", image, "echo", "loaded") == "loaded\n"


def test_commit_then_run(engine):
    name = engine.new_name()
    engine.ok("run", "--name", name, "busybox", "sh", "-c", "echo committed > /etc/note; rm /bin/vi")
    image = engine.new_image()
    r = engine.docker("commit", "--change", "ENV GREETING=hi", "-m", "acc commit", name, image)
    assert r.rc == 0 and r.stdout.startswith("sha256:"), r
    out = engine.ok("run", "--rm", image, "sh", "-c", 'cat /etc/note; echo "$GREETING"; test -e /bin/vi; echo $?')
    assert out == "committed\nhi\n1\n", out
    assert engine.ok("image", "inspect", "-f", "{{.Comment}} {{json .Config.Cmd}}", image).strip() == \
        'acc commit ["sh","-c","echo committed > /etc/note; rm /bin/vi"]'
    history = engine.ok("history", "-q", image).split()
    assert len(history) == 2, history


def test_images_list_and_rmi_in_use(engine):
    out = engine.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert any(line.startswith("busybox:latest ") for line in out.splitlines()), out
    image = engine.new_image()
    engine.ok("tag", "busybox", image)
    name = engine.run_d(image, "sleep", "60")
    r = engine.docker("rmi", image)  # a tag of an image with other tags: untagged even if in use
    assert (r.rc, r.stdout) == (0, f"Untagged: {image}\n"), r
    cid, bid = engine.inspect(name, "{{.Id}}")[:12], engine.ok("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    r = engine.docker("rmi", "busybox")
    assert r.rc == 1 and errors(r.stderr) == (
        'Error response from daemon: conflict: unable to remove repository reference "busybox" (must force) - '
        f"container {cid} is using its referenced image {bid[7:19]}\n"), r
    r = engine.docker("rmi", bid)
    assert r.rc == 1 and errors(r.stderr) == (
        f"Error response from daemon: conflict: unable to delete {bid[7:19]} (cannot be forced) - "
        f"image is being used by running container {cid}\n"), r
    assert engine.inspect(name, "{{.State.Running}}") == "true"
