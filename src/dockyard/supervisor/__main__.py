"""``python -m dockyard.supervisor --root DIR images <command>``: the image service from a shell.

    images load [-i FILE|DIR] [--base-name NAME] [--unpack] [--snapshotter S]   (stdin when no -i)
    images save [-o FILE] [--format docker|oci] [--oci-dir DIR] REF...          (stdout when no -o)
    images ls [-q]
    images tag SRC DST
    images rm [-f] REF...
    images unpack [--snapshotter S] REF
    images import [-c CHANGE]... [--message M] FILE|- [REF]
    images export [--snapshotter S] KEY [-o FILE]
    gc

Exit status: 0, or 1 with "Error: <message>" on stderr for a Dockyard error, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.errors import DockyardError
from dockyard.oci import reference
from dockyard.supervisor.images import ID_LABEL, ImageService, describe_error, load_messages


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dockyard.supervisor")
    p.add_argument("--root", required=True, help="supervisor root directory")
    top = p.add_subparsers(dest="group", required=True)
    top.add_parser("gc", help="remove unreferenced content and snapshots")
    images = top.add_parser("images").add_subparsers(dest="command", required=True)
    load = images.add_parser("load")
    load.add_argument("-i", "--input", help="archive file or OCI layout directory (default: stdin)")
    load.add_argument("--base-name", help="repository for OCI entries whose ref.name is only a tag")
    load.add_argument("--unpack", action="store_true", help="also unpack every loaded image")
    load.add_argument("--snapshotter", default="overlayfs")
    save = images.add_parser("save")
    save.add_argument("refs", nargs="+")
    save.add_argument("-o", "--output", help="archive file (default: stdout)")
    save.add_argument("--format", choices=("docker", "oci"), default="docker")
    save.add_argument("--oci-dir", help="write an OCI layout directory here instead of a tar")
    ls = images.add_parser("ls")
    ls.add_argument("-q", "--quiet", action="store_true")
    tag = images.add_parser("tag")
    tag.add_argument("src")
    tag.add_argument("dst")
    rm = images.add_parser("rm")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("refs", nargs="+")
    unpack = images.add_parser("unpack")
    unpack.add_argument("ref")
    unpack.add_argument("--snapshotter", default="overlayfs")
    imp = images.add_parser("import")
    imp.add_argument("file", help="rootfs tarball, or - for stdin")
    imp.add_argument("ref", nargs="?")
    imp.add_argument("-c", "--change", action="append", default=[])
    imp.add_argument("-m", "--message", default="")
    exp = images.add_parser("export")
    exp.add_argument("key", help="snapshot key")
    exp.add_argument("-o", "--output")
    exp.add_argument("--snapshotter", default="overlayfs")
    return p


@contextlib.contextmanager
def _opened(path: str | None, mode: str) -> Iterator[BinaryIO]:
    if path is None or path == "-":
        yield sys.stdin.buffer if "r" in mode else sys.stdout.buffer
        return
    with open(path, mode) as f:
        yield f  # type: ignore[misc]


def _load(svc: ImageService, args: argparse.Namespace) -> None:
    if args.input and os.path.isdir(args.input):
        loaded = svc.load(args.input, base_name=args.base_name)
    else:
        with _opened(args.input, "rb") as f:
            loaded = svc.load(f, base_name=args.base_name)
    for line in load_messages(loaded):
        print(line)
    if args.unpack:
        for name in loaded:
            svc.unpack(name, args.snapshotter)


def _save(svc: ImageService, args: argparse.Namespace) -> None:
    if args.oci_dir:
        svc.save(args.refs, args.oci_dir, format="oci")
        return
    with _opened(args.output, "wb") as f:
        svc.save(args.refs, f, format=args.format)


def _ls(svc: ImageService, args: argparse.Namespace) -> None:
    if not args.quiet:
        print(f"{'REPOSITORY:TAG':<50} {'IMAGE ID':<20} TARGET")
    for r in svc.list():
        image_id = r.labels.get(ID_LABEL, "")
        if args.quiet:
            print(image_id)
            continue
        name = r.name if r.name.startswith("sha256:") else reference.parse(r.name).familiar()
        print(f"{name:<50} {image_id[7:19]:<20} {r.target.media_type}")


def _run(svc: ImageService, args: argparse.Namespace) -> None:
    if args.group == "gc":
        print(svc.gc())
        return
    cmd = args.command
    if cmd == "load":
        _load(svc, args)
    elif cmd == "save":
        _save(svc, args)
    elif cmd == "ls":
        _ls(svc, args)
    elif cmd == "tag":
        svc.tag(args.src, args.dst)
    elif cmd == "rm":
        for ref in args.refs:
            for name in svc.remove(ref, force=args.force):
                print(f"Untagged: {name}")
    elif cmd == "unpack":
        print(svc.unpack(args.ref, args.snapshotter))
    elif cmd == "import":
        with _opened(args.file, "rb") as f:
            print(svc.import_rootfs(f, args.ref, args.change, comment=args.message or "Imported from -"))
    elif cmd == "export":
        with _opened(args.output, "wb") as f:
            svc.export(args.key, f, args.snapshotter)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with ImageService(args.root) as svc:
            _run(svc, args)
    except DockyardError as e:
        print(f"Error: {describe_error(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
