"""Build an OCI bundle (config.json + rootfs) from Debian's busybox-static.

    python scripts/busybox_bundle.py DIR [ARG...]

The rootfs has /bin/busybox and one symlink per applet, /etc/passwd and
/etc/group with root and nobody (65534); config.json is dockyard-runtime's
default spec running ARG... (default: sh) without a terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

BUSYBOX = "/bin/busybox"


def make_rootfs(rootfs: str) -> None:
    """Populate ``rootfs`` with a static busybox and its applet links."""
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "home", "var", "usr/bin", "sbin"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    target = os.path.join(rootfs, "bin", "busybox")
    if not os.path.exists(target):
        shutil.copy2(BUSYBOX, target)
    applets = subprocess.run([target, "--list"], check=True, capture_output=True, text=True).stdout.split()
    for name in applets:
        link = os.path.join(rootfs, "bin", name)
        if name != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")


def make_bundle(bundle: str, args: list[str] | None = None, *, readonly: bool = False) -> str:
    """Create (or refresh the config of) a busybox bundle; return its path."""
    from dockyard.runtime.specgen import default_spec

    bundle = os.path.abspath(bundle)
    make_rootfs(os.path.join(bundle, "rootfs"))
    spec = default_spec()
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args or ["sh"]
    spec["root"]["readonly"] = readonly
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f, indent=2)
    return bundle


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(make_bundle(sys.argv[1], sys.argv[2:] or None))
