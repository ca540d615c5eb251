"""Registry auth and TLS with real clients: the real dockerd logs in, pushes and pulls; skopeo over TLS.

1. htpasswd (Basic): ``docker login`` with a wrong then the right password, push refused before
   login, push/pull after it -- against distribution 2.8 (the reference: same htpasswd file, made
   with Debian's ``htpasswd -B``) and dockyard-registry; dockerd's messages must be the same.
2. Bearer tokens from dockyard-registry's built-in issuer: the same flow against dockyard-registry
   and against distribution 2.8 configured to trust the issuer's certificate (x5c) -- so the
   issuer's tokens are checked by the reference verifier, and dockerd's messages must agree.
3. TLS: a self-signed CA made with openssl signs the server certificate; skopeo inspects with
   ``--cert-dir`` and ``--tls-verify=true``, and fails verification without the CA.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.support import hostclean
from tests.support.dockerd import DockerDaemon
from tests.support.registries import RegistryStartError
from tests.support.registry_auth import (
    PASSWORD,
    USER,
    AuthRegistry,
    run_ok,
    write_htpasswd,
)

pytestmark = [pytest.mark.interop, pytest.mark.privileged]
def _make_tls(d: str) -> tuple[str, str, str]:
    """(ca.crt, server.crt, server.key): a CA and a server certificate for IP 127.0.0.1."""
    run_ok("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dockyard test CA",
         "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    run_ok("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", "server.key", "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run_ok("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)
    return tuple(os.path.join(d, n) for n in ("ca.crt", "server.crt", "server.key"))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AuthRegistry]]:
    """distribution (Basic), dockyard (Basic), dockyard (token, built-in issuer), dockyard (TLS)."""
    base = str(tmp_path_factory.mktemp("registry-auth"))
    users = os.path.join(base, "htpasswd")
    write_htpasswd(users)
    run_ok("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=dockyard token issuer", "-keyout", "token.pem", "-out", "token.crt", cwd=base)
    ca, cert, key = _make_tls(base)
    q = json.dumps
    basic = f"auth:\n  htpasswd:\n    realm: {q('Dockyard Test')}\n    path: {q(users)}\n"
    token = ("auth:\n  token:\n    realm: \"http://127.0.0.1:$PORT/auth/token\"\n    service: test-registry\n"
             f"    issuer: dockyard-test\n    builtin:\n      key: {q(os.path.join(base, 'token.pem'))}\n"
             f"      certificate: {q(os.path.join(base, 'token.crt'))}\n      htpasswd: {q(users)}\n"
             "      expiration: 300\n")
    trusting = ("auth:\n  token:\n    realm: \"http://127.0.0.1:$TOKENPORT/auth/token\"\n    service: test-registry\n"
                f"    issuer: dockyard-test\n    rootcertbundle: {q(os.path.join(base, 'token.crt'))}\n")
    tls = f"  tls:\n    certificate: {q(cert)}\n    key: {q(key)}\n"  # continues the http: section
    plan = {"distribution": ("distribution", basic, None), "dockyard": ("dockyard", basic, None),
            "token": ("dockyard", token, None), "distribution-token": ("distribution", trusting, None),
            "tls": ("dockyard", tls, ca)}
    started: dict[str, AuthRegistry] = {}
    try:
        for label, (kind, extra, trust) in plan.items():
            if "token" in started:
                extra = extra.replace("$TOKENPORT", str(started["token"].port))
            reg = AuthRegistry(kind, os.path.join(base, label), extra, tls=trust)
            try:
                reg.start()
            except RegistryStartError as e:
                pytest.fail(f"{label}: {e}", pytrace=False)
            started[label] = reg
        yield started
    finally:
        for reg in started.values():
            reg.stop()


@pytest.fixture(scope="module")
def daemon(servers: dict[str, AuthRegistry], tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    hostclean.sweep_stale()
    d = DockerDaemon(log_dir=str(tmp_path_factory.mktemp("registry-auth-dockerd")))
    try:
        d.start()
        d.load_busybox("busybox:latest")
        yield d
    finally:
        d.stop()


def _login_flow(d: DockerDaemon, reg: AuthRegistry) -> dict[str, str]:
    """Wrong login, push without credentials, right login, push, forget, pull, run; dockerd's messages."""
    host = reg.host_port
    image = f"{host}/auth/busybox:1"
    seen: dict[str, str] = {}
    r = d.docker("login", "-u", USER, "--password-stdin", host, input="wrong-password")
    assert r.rc != 0
    seen["wrong"] = r.stderr.strip().replace(str(reg.port), "PORT")
    assert d.docker("tag", "busybox:latest", image).rc == 0
    r = d.docker("push", image, timeout=120)
    assert r.rc != 0, f"push without login succeeded: {r}"
    seen["anonymous push"] = (r.stderr.strip().splitlines() or [""])[-1]
    r = d.docker("login", "-u", USER, "--password-stdin", host, input=PASSWORD)
    assert r.rc == 0 and "Login Succeeded" in r.stdout, f"{r}\n{reg.log_tail()}"
    r = d.docker("push", image, timeout=120)
    assert r.rc == 0, f"{r}\n{reg.log_tail()}"
    digest = r.stdout.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    assert d.docker("rmi", image).rc == 0
    r = d.docker("pull", f"{host}/auth/busybox@{digest}", timeout=120)
    assert r.rc == 0, f"{r}\n{reg.log_tail()}"
    r = d.docker("run", "--rm", "--network", "none", f"{host}/auth/busybox@{digest}", "echo", "pulled")
    assert r.rc == 0 and r.stdout.strip() == "pulled", r
    assert d.docker("logout", host).rc == 0
    r = d.docker("pull", image, timeout=60)
    assert r.rc != 0
    seen["anonymous pull"] = r.stderr.strip().replace(str(reg.port), "PORT")
    d.docker("rmi", "-f", image, f"{host}/auth/busybox@{digest}")
    return seen


def test_htpasswd_login_push_pull_like_distribution(daemon: DockerDaemon, servers: dict[str, AuthRegistry]) -> None:
    reference = _login_flow(daemon, servers["distribution"])
    ours = _login_flow(daemon, servers["dockyard"])
    assert reference["wrong"] == ("Error response from daemon: login attempt to http://127.0.0.1:PORT/v2/ "
                                  "failed with status: 401 Unauthorized")
    assert reference["anonymous push"] == "no basic auth credentials"
    assert ours == reference


def test_token_login_push_pull_like_distribution(daemon: DockerDaemon, servers: dict[str, AuthRegistry]) -> None:
    reference = _login_flow(daemon, servers["distribution-token"])
    ours = _login_flow(daemon, servers["token"])
    assert reference["wrong"] == ('Error response from daemon: Get "http://127.0.0.1:PORT/v2/": '
                                  "unauthorized: incorrect username or password")
    # anonymous tokens grant nothing (anonymouspull is off): dockerd reports the refusal as "denied"
    assert reference["anonymous push"] == "denied: requested access to the resource is denied"
    assert reference["anonymous pull"].endswith("may require 'docker login': denied: requested access to the "
                                                "resource is denied")
    assert ours == reference


def test_skopeo_over_tls(daemon: DockerDaemon, servers: dict[str, AuthRegistry],
                         tmp_path_factory: pytest.TempPathFactory) -> None:
    reg = servers["tls"]
    assert reg.tls_ca
    work = str(tmp_path_factory.mktemp("skopeo-tls"))
    certs = os.path.join(work, "certs")
    os.makedirs(certs)
    shutil.copy(reg.tls_ca, os.path.join(certs, "ca.crt"))
    archive = os.path.join(work, "busybox.tar")
    assert daemon.docker("save", "-o", archive, "busybox:latest").rc == 0
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "TMPDIR": work}
    ref = f"docker://{reg.host_port}/tls/busybox:1"

    def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, env=env,
                              timeout=120, check=False)

    r = skopeo("copy", "--dest-cert-dir", certs, "--dest-tls-verify=true", f"docker-archive:{archive}", ref)
    assert r.returncode == 0, r.stderr + reg.log_tail()
    r = skopeo("inspect", "--cert-dir", certs, "--tls-verify=true", ref)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Name"] == f"{reg.host_port}/tls/busybox"
    r = skopeo("inspect", "--tls-verify=true", ref)  # the CA is not trusted: verification fails
    assert r.returncode != 0 and "certificate" in r.stderr, r.stderr
