"""dockyardd's TCP listener with TLS client verification, driven by the real docker CLI.

`-H tcp://127.0.0.1:PORT --tlsverify` (Docker's flags): the CLI with a client certificate signed
by the daemon's CA gets through; without one, the handshake is refused; and plain TCP without
TLS is refused at startup unless --insecure-tcp is given.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.support.dockerd import DaemonStartError, docker_cli
from tests.support.dockyardd import DockyardDaemon

pytestmark = [pytest.mark.privileged, pytest.mark.acceptance]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: str) -> None:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=dockyard-test-ca", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=d)


class TcpDaemon(DockyardDaemon):
    def __init__(self, extra: list[str]) -> None:
        super().__init__()
        self.extra = extra

    def argv(self) -> list[str]:
        return [*super().argv(), *self.extra]


def _cli(host: str, *args: str, cert_dir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "DOCKER_CONFIG": "/tmp/.no-docker-config"}
    tls = ["--tlsverify", "--tlscacert", f"{cert_dir}/ca.pem", "--tlscert", f"{cert_dir}/client.pem",
           "--tlskey", f"{cert_dir}/client-key.pem"] if cert_dir else []
    return subprocess.run([docker_cli() or "docker", "-H", host, *tls, *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_tcp_with_tls_client_verification(tmp_path):
    certs = str(tmp_path)
    make_certs(certs)
    port = _free_port()
    host = f"tcp://127.0.0.1:{port}"
    daemon = TcpDaemon(["-H", host, "--tlsverify", "--tlscacert", f"{certs}/ca.pem", "--tlscert",
                        f"{certs}/server.pem", "--tlskey", f"{certs}/server-key.pem"])
    daemon.start()
    try:
        ok = _cli(host, "version", "--format", "{{.Server.APIVersion}}", cert_dir=certs)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "1.41"
        ps = _cli(host, "ps", "-a", cert_dir=certs)
        assert ps.returncode == 0 and ps.stdout.startswith("CONTAINER ID"), ps.stderr
        # The CA alone (no client certificate) is refused during the handshake.
        no_cert = subprocess.run([docker_cli() or "docker", "-H", host, "--tls", "--tlscacert", f"{certs}/ca.pem",
                                  "version"], capture_output=True, text=True, timeout=60,
                                 env={"PATH": os.environ.get("PATH", ""), "HOME": "/tmp",
                                      "DOCKER_CONFIG": "/tmp/.no-docker-config"})
        assert no_cert.returncode != 0
        assert "Server:" not in no_cert.stdout
        # Plain HTTP on the TLS port gets nothing useful either.
        plain = _cli(host, "version")
        assert plain.returncode != 0
    finally:
        daemon.stop()


def test_plain_tcp_is_refused_without_insecure_flag():
    port = _free_port()
    daemon = TcpDaemon(["-H", f"tcp://127.0.0.1:{port}"])
    with pytest.raises(DaemonStartError) as e:
        daemon.start()
    daemon.stop()
    assert "tls" in str(e.value).lower()


def test_insecure_tcp_serves_and_warns():
    port = _free_port()
    host = f"tcp://127.0.0.1:{port}"
    daemon = TcpDaemon(["-H", host, "--insecure-tcp"])
    daemon.start()
    try:
        r = _cli(host, "version", "--format", "{{.Server.Version}}")
        assert r.returncode == 0, r.stderr
        assert "dockyard" in r.stdout
        with open(daemon.log_path, errors="replace") as f:
            assert "root" in f.read().lower()  # the warning says what exposing the socket means
    finally:
        daemon.stop()
