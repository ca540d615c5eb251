"""`make run`: the seed's hello world through dockyardd, with the docker CLI and with docker-py.

Starts dockyardd on its default socket if nothing answers there (it keeps running afterwards,
like a system daemon; stop it with `kill $(cat /var/run/dockyard.pid)`), creates busybox:latest
from Debian's static busybox if the engine has no such image, then runs
`docker run --rm busybox echo hello world` and
`docker.DockerClient(...).containers.run("busybox", ["echo", "hello", "world"])`.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import docker

HERE = os.path.dirname(os.path.abspath(__file__))
SOCKET = "/var/run/dockyard.sock"
HOST = f"unix://{SOCKET}"
LOG = "/var/log/dockyardd.log"
sys.path.insert(0, HERE)


def docker_cli() -> str:
    return shutil.which("docker") or "/usr/bin/docker"


def ping() -> bool:
    """GET /_ping over the socket answers 200."""
    import socket
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(SOCKET)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return s.recv(64).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def start_daemon() -> None:
    if ping():
        return
    dockyardd = os.path.join(os.path.dirname(sys.executable), "dockyardd")
    print(f"starting dockyardd on {HOST} (log: {LOG})", flush=True)
    with open(LOG, "ab") as log:
        subprocess.Popen([dockyardd, "-H", HOST], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    for _ in range(150):
        if ping():
            return
        time.sleep(0.1)
    sys.exit(f"dockyardd did not answer on {HOST}; see {LOG}")


def busybox_tar() -> bytes:
    from busybox_bundle import make_rootfs

    with tempfile.TemporaryDirectory() as tmp:
        make_rootfs(tmp)
        buf = io.BytesIO()

        def root(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            return info

        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(tmp, arcname=".", filter=root)
    return buf.getvalue()


def ensure_busybox(client: docker.DockerClient) -> None:
    try:
        client.images.get("busybox:latest")
        return
    except docker.errors.ImageNotFound:
        pass
    print("creating busybox:latest from Debian's busybox-static", flush=True)
    subprocess.run([docker_cli(), "-H", HOST, "import", "--change", 'CMD ["sh"]', "-", "busybox:latest"],
                   input=busybox_tar(), check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    start_daemon()
    client = docker.DockerClient(base_url=HOST)
    ensure_busybox(client)
    print("$ docker run --rm busybox echo hello world", flush=True)
    rc = subprocess.run([docker_cli(), "-H", HOST, "run", "--rm", "busybox", "echo", "hello", "world"]).returncode
    print('>>> docker.from_env().containers.run("busybox", ["echo", "hello", "world"])', flush=True)
    out = client.containers.run("busybox", ["echo", "hello", "world"], remove=True)
    print(repr(out))
    return rc or (0 if out == b"hello world\n" else 1)


if __name__ == "__main__":
    sys.exit(main())
