"""dockyardd's listeners: unix perms and stale sockets, tcp TLS policy, mutual TLS, fd:// activation."""

from __future__ import annotations

import grp
import os
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from dockyard.engine.config import DaemonConfig
from dockyard.engine.listeners import Listener, open_listeners, open_unix, systemd_sockets
from dockyard.errors import Conflict, InvalidArgument


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, level: str, message: str) -> None:
        self.lines.append((level, message))

    def warnings(self) -> str:
        return "\n".join(m for lvl, m in self.lines if lvl == "warn")


@pytest.fixture
def log():
    return Logs()


# ---------------------------------------------------------------- unix

def test_unix_socket_mode_group_and_parent_dir(tmp_path, log):
    path = tmp_path / "run" / "sub" / "dy.sock"
    group = grp.getgrgid(os.getegid()).gr_name
    cfg = DaemonConfig(hosts=(f"unix://{path}",), group=group)
    [listener] = open_listeners(cfg, log=log)
    try:
        info = os.stat(path)
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == os.getegid() and listener.ssl is None
        assert listener.addr == f"unix://{path}"
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(path))
        conn, _ = listener.sock.accept()
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.close()
        client.close()
    finally:
        listener.close()
    assert not path.exists()                      # close() removes the socket file it created
    assert log.warnings() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another group needs root")
def test_unix_socket_given_to_named_group_as_root(tmp_path, log):
    other = next(g for g in grp.getgrall() if g.gr_gid != 0)
    listener = open_unix(str(tmp_path / "g.sock"), other.gr_name, log=log)
    try:
        assert os.stat(tmp_path / "g.sock").st_gid == other.gr_gid
    finally:
        listener.close()


def test_missing_group_keeps_ours_and_warns(tmp_path, log):
    path = tmp_path / "dy.sock"
    listener = open_unix(str(path), "no-such-group-dockyard", log=log)
    try:
        assert os.stat(path).st_gid == os.getegid()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        assert "no-such-group-dockyard" in log.warnings()
    finally:
        listener.close()


def test_stale_socket_is_replaced(tmp_path, log):
    path = str(tmp_path / "dy.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()                                   # file stays, nobody listens
    assert os.path.exists(path)
    listener = open_unix(path, "docker", log=log)
    try:
        client = socket.socket(socket.AF_UNIX)
        client.connect(path)
        client.close()
    finally:
        listener.close()


def test_live_socket_is_refused(tmp_path, log):
    path = str(tmp_path / "dy.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(1)
    try:
        with pytest.raises(Conflict, match="another daemon is already listening"):
            open_unix(path, "docker", log=log)
        assert os.path.exists(path)               # the other daemon's socket was left alone
    finally:
        live.close()


def test_non_socket_file_is_refused(tmp_path, log):
    path = tmp_path / "dy.sock"
    path.write_text("precious")
    with pytest.raises(Conflict, match="exists and is not a socket"):
        open_unix(str(path), "docker", log=log)
    assert path.read_text() == "precious"


def test_failure_closes_what_was_opened(tmp_path, log):
    good = tmp_path / "good.sock"
    cfg = DaemonConfig(hosts=(f"unix://{good}", "tcp://127.0.0.1:0"))
    with pytest.raises(InvalidArgument):
        open_listeners(cfg, log=log)
    assert not good.exists()


# ---------------------------------------------------------------- tcp

def test_plain_tcp_is_refused_without_tls(log):
    cfg = DaemonConfig(hosts=("tcp://127.0.0.1:0",))
    with pytest.raises(InvalidArgument) as err:
        open_listeners(cfg, log=log)
    assert "refusing to listen on tcp://127.0.0.1:0 without TLS" in err.value.message
    assert "--tlsverify" in err.value.message and "--insecure-tcp" in err.value.message


def test_insecure_tcp_listens_and_warns_loudly(log):
    cfg = DaemonConfig(hosts=("tcp://127.0.0.1:0",), insecure_tcp=True)
    [listener] = open_listeners(cfg, log=log)
    try:
        port = listener.sock.getsockname()[1]
        assert listener.ssl is None and listener.addr == f"tcp://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        warning = log.warnings()
        assert "WITHOUT TLS" in warning and "root on this host" in warning and "127.0.0.1" in warning
    finally:
        listener.close()


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA, a server cert for 127.0.0.1 and a client cert, all from the openssl CLI."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
                 cwd=d)
    return d


def _tls_config(pki, **kw) -> DaemonConfig:
    return DaemonConfig(hosts=("tcp://127.0.0.1:0",), tlscacert=str(pki / "ca.pem"),
                        tlscert=str(pki / "server.pem"), tlskey=str(pki / "server-key.pem"), **kw)


def _serve_once(listener: Listener, outcome: list) -> threading.Thread:
    """Accept one connection, do the TLS handshake, echo one message."""
    def run() -> None:
        conn, _ = listener.sock.accept()
        conn.settimeout(5)
        try:
            assert listener.ssl is not None
            with listener.ssl.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.recv(16))
                outcome.append("ok")
        except (ssl.SSLError, OSError) as exc:
            outcome.append(exc)
            conn.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _client(pki, port: int, with_cert: bool) -> bytes:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if with_cert:
        ctx.load_cert_chain(str(pki / "client.pem"), str(pki / "client-key.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"hello")
            return tls.recv(16)


def test_tlsverify_accepts_client_cert_rejects_anonymous(pki, log):
    [listener] = open_listeners(_tls_config(pki, tls=True, tlsverify=True), log=log)
    try:
        port = listener.sock.getsockname()[1]
        assert listener.ssl is not None and listener.ssl.verify_mode == ssl.CERT_REQUIRED
        outcome: list = []
        thread = _serve_once(listener, outcome)
        assert _client(pki, port, with_cert=True) == b"hello"
        thread.join(5)
        assert outcome == ["ok"]

        outcome.clear()
        thread = _serve_once(listener, outcome)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _client(pki, port, with_cert=False)   # TLS 1.3 reports it on the first read
        thread.join(5)
        assert len(outcome) == 1 and isinstance(outcome[0], ssl.SSLError)
        assert log.warnings() == ""
    finally:
        listener.close()


def test_tls_without_verify_is_server_only_and_warns(pki, log):
    [listener] = open_listeners(_tls_config(pki, tls=True), log=log)
    try:
        assert listener.ssl is not None and listener.ssl.verify_mode == ssl.CERT_NONE
        outcome: list = []
        thread = _serve_once(listener, outcome)
        assert _client(pki, listener.sock.getsockname()[1], with_cert=False) == b"hello"
        thread.join(5)
        assert outcome == ["ok"] and "without --tlsverify" in log.warnings()
    finally:
        listener.close()


def test_missing_tls_files_are_a_clear_error(tmp_path, log):
    cfg = DaemonConfig(hosts=("tcp://127.0.0.1:0",), tls=True, tlsverify=True,
                       tlscacert=str(tmp_path / "ca.pem"), tlscert=str(tmp_path / "cert.pem"),
                       tlskey=str(tmp_path / "key.pem"))
    with pytest.raises(InvalidArgument, match="cannot set up TLS for tcp://127.0.0.1:0"):
        open_listeners(cfg, log=log)


# ---------------------------------------------------------------- fd://

def test_fd_without_activation_is_an_error_and_env_is_cleared(monkeypatch, log):
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))   # meant for another process
    monkeypatch.setenv("LISTEN_FDS", "1")
    with pytest.raises(InvalidArgument, match="no sockets found via socket activation"):
        open_listeners(DaemonConfig(hosts=("fd://",)), log=log)
    assert "LISTEN_PID" not in os.environ and "LISTEN_FDS" not in os.environ
    with pytest.raises(InvalidArgument, match="no sockets found"):
        systemd_sockets()


ACTIVATED = textwrap.dedent("""
    import os, socket, sys
    from dockyard.engine.config import DaemonConfig
    from dockyard.engine.listeners import open_listeners
    path_a, path_b, hosts = sys.argv[1], sys.argv[2], tuple(sys.argv[3:])
    socks = []
    for path in (path_a, path_b):                   # what systemd does before exec
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(4)
        socks.append(s)
    high = [os.dup2(s.fileno(), 20 + i) for i, s in enumerate(socks)]
    for s in socks:
        s.close()
    for i, fd in enumerate(high):                   # land on fds 3 and 4, inheritable
        os.dup2(fd, 3 + i)
        os.close(fd)
    os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="a:b")
    got = open_listeners(DaemonConfig(hosts=hosts), log=lambda lvl, msg: None)
    print(" ".join(l.addr for l in got))
    print(sorted(k for k in os.environ if k.startswith("LISTEN_")))
    for listener in got:                            # each one really is the socket bound above
        c = socket.socket(socket.AF_UNIX)
        c.connect({3: path_a, 4: path_b}[listener.sock.fileno()])
        c.close()
    print(all(l.sock.accept()[0] for l in got) and not any(os.get_inheritable(l.sock.fileno()) for l in got))
""")


@pytest.mark.parametrize("hosts, addrs", [(["fd://"], "fd://3 fd://4"), (["fd://4"], "fd://4")])
def test_fd_socket_activation(tmp_path, hosts, addrs):
    """Runs in a fresh interpreter so fds 3 and 4 can be taken the way systemd hands them over."""
    a, b = str(tmp_path / "a.sock"), str(tmp_path / "b.sock")
    proc = subprocess.run([sys.executable, "-c", ACTIVATED, a, b, *hosts], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [addrs, "[]", "True"]


def test_fd_number_not_passed_is_an_error(tmp_path):
    proc = subprocess.run([sys.executable, "-c", ACTIVATED, str(tmp_path / "a"), str(tmp_path / "b"),
                           "fd://7"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "fd://7 is not among the sockets systemd passed (fds 3, 4)" in proc.stderr
