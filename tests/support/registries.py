"""A registry server in a throw-away directory, for interop tests: distribution 2.8 or dockyard-registry.

    reg = RegistryProcess("distribution", root=tmpdir)   # or "dockyard"
    reg.start()                   # 127.0.0.1:<free port>; returns once GET /v2/ answers 200
    reg.url, reg.host_port        # "http://127.0.0.1:41234", "127.0.0.1:41234"
    reg.stop()                    # always; idempotent; no process is left behind

Layout of ``root``: ``config.yml`` (the YAML config both servers read), ``storage/`` (the
filesystem driver's rootdirectory) and ``registry.log`` (stdout and stderr of the server).
The config holds only what both servers understand: ``version``, ``storage.filesystem``,
``storage.delete.enabled`` and ``http.addr``. No REGISTRY_* variable of ours reaches the server.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from email.message import Message
from typing import IO, Any, NamedTuple, Self
from urllib.parse import urlencode, urlsplit, urlunsplit

KINDS = ("distribution", "dockyard")
DISTRIBUTION_BINARY = "/usr/bin/docker-registry"  # Debian's docker-registry package (distribution 2.8)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RegistryStartError(RuntimeError):
    """The server is missing, exited, or never answered GET /v2/; the message says which, with its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dockyard_command() -> list[str]:
    """argv prefix of our server: the venv's console script, else ``python -m dockyard.registry``."""
    script = os.path.join(sys.prefix, "bin", "dockyard-registry")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "dockyard.registry"]


def missing(kind: str) -> str | None:
    """Why a ``kind`` server cannot be started here (None when it can)."""
    if kind == "distribution":
        if not os.path.exists(DISTRIBUTION_BINARY):
            return f"{DISTRIBUTION_BINARY} not found (Debian package docker-registry)"
        return None
    if kind != "dockyard":
        raise ValueError(f"unknown registry kind {kind!r}")
    try:
        found = importlib.util.find_spec("dockyard.registry") is not None
    except ImportError:
        found = False
    if not found:
        return "dockyard.registry is not importable (package src/dockyard/registry/ missing)"
    return None


def config_yaml(storage: str, addr: str, delete_enabled: bool = True) -> str:
    """The config both servers read (JSON strings are valid YAML scalars, so paths need no care)."""
    q = json.dumps
    return "\n".join([
        "version: 0.1",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {q(storage)}",
        "  delete:",
        f"    enabled: {'true' if delete_enabled else 'false'}",
        "http:",
        f"  addr: {q(addr)}",
        ""])


class RegistryProcess:
    """One registry server on loopback, with its config, storage and log under ``root``."""

    def __init__(self, kind: str, root: str, *, delete_enabled: bool = True,
                 start_timeout: float = 30.0, extra_config: str = "") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}; one of {KINDS}")
        self.kind = kind
        self.root = os.path.abspath(root)
        self.delete_enabled = delete_enabled
        self.start_timeout = start_timeout
        self.extra_config = extra_config  # YAML appended to the config (more top-level sections)
        self.port = 0
        self._proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    # -- addresses and paths ------------------------------------------------------------------
    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    @property
    def config_path(self) -> str:
        return os.path.join(self.root, "config.yml")

    @property
    def storage(self) -> str:
        return os.path.join(self.root, "storage")

    @property
    def log_path(self) -> str:
        return os.path.join(self.root, "registry.log")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    def argv(self) -> list[str]:
        if self.kind == "distribution":
            return [DISTRIBUTION_BINARY, "serve", self.config_path]
        return [*dockyard_command(), "serve", self.config_path]

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start on a free loopback port (a new one if another process took it first)."""
        reason = missing(self.kind)
        if reason:
            raise RegistryStartError(f"{self.kind} registry cannot start: {reason}")
        os.makedirs(self.storage, exist_ok=True)
        try:
            for attempt in range(3):
                self.port = free_port()
                with open(self.config_path, "w") as f:
                    f.write(config_yaml(self.storage, self.host_port, self.delete_enabled) + self.extra_config)
                if self._launch(last=attempt == 2):
                    return
        except BaseException:
            self.stop()
            raise

    def _launch(self, last: bool) -> bool:
        """Spawn and wait for GET /v2/ 200; False if the port was taken (caller retries)."""
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child writes it until stop())
        self._log = log
        env = {"PATH": SYSTEM_PATH, "HOME": self.root, "TMPDIR": self.root, "LANG": "C.UTF-8"}
        try:
            self._proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env=env, cwd=self.root,
                                          start_new_session=True)
        except OSError as e:
            raise RegistryStartError(f"{self.kind} registry ({' '.join(self.argv())}) did not start: {e}") from e
        deadline = time.monotonic() + self.start_timeout
        while not self.ready():
            if self._proc.poll() is not None:
                tail = self.log_tail()
                self._reap()
                if "address already in use" in tail.lower() and not last:
                    return False
                raise RegistryStartError(
                    f"{self.kind} registry ({' '.join(self.argv())}) exited with "
                    f"{self._proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise RegistryStartError(
                    f"{self.kind} registry: GET {self.url}/v2/ not 200 after {self.start_timeout}s:\n"
                    f"{self.log_tail()}")
            time.sleep(0.05)
        return True

    def ready(self) -> bool:
        """True when GET /v2/ answers 200."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/v2/")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL after 10 s; idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._reap()

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def remove(self) -> None:
        """stop(), then delete ``root`` entirely."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- a tiny HTTP client for protocol tests (http.client: every status and header is visible) -------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Response(NamedTuple):
    """What one request got back."""

    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def err(self) -> tuple[int, list[str]]:
        """(status, the distinct error codes sorted): what protocol tests compare."""
        return self.status, sorted(set(self.error_codes()))

    def next_link(self) -> str | None:
        """The URL of a ``Link: <url>; rel="next"`` header (pagination), or None."""
        found = re.match(r'\s*<([^>]+)>;\s*rel="?next"?', self.headers.get("Link", ""))
        return found.group(1) if found else None

    def error_codes(self) -> list[str]:
        """The ``code`` of each entry of an error body ``{"errors": [...]}`` (empty if none)."""
        try:
            return [e.get("code", "") for e in self.json().get("errors", [])]
        except (ValueError, AttributeError):
            return []


class RegistryClient:
    """Requests to one registry; paths may be relative or the absolute URLs registries put in Location."""

    def __init__(self, host_port: str, timeout: float = 30.0) -> None:
        self.host_port = host_port
        self.timeout = timeout

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> Response:
        parts = urlsplit(path)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        host, port = self.host_port.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        try:
            hdrs = dict(headers or {})
            if method in ("POST", "PUT", "PATCH"):
                hdrs.setdefault("Content-Length", str(len(body)))
            conn.request(method, target, body=body or None, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def patch(self, location: str, data: bytes, first: int) -> Response:
        """PATCH one chunk with its Content-Range (``first``-``last`` byte, inclusive)."""
        return self.request("PATCH", location, data, {"Content-Type": "application/octet-stream",
                                                       "Content-Range": f"{first}-{first + len(data) - 1}"})

    def send_partial(self, method: str, location: str, headers: dict[str, str], declared: int,
                     data: bytes) -> None:
        """Announce ``declared`` body bytes, send only ``data``, hang up: an interrupted transfer."""
        parts = urlsplit(location)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        host, port = self.host_port.rsplit(":", 1)
        head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": str(declared)}.items())
        with socket.create_connection((host, int(port)), timeout=self.timeout) as sock:
            sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {self.host_port}\r\n{head}\r\n".encode() + data)
        time.sleep(0.3)  # let the server notice the hang-up before the next request looks

    def walk(self, link: str | None, key: str, limit: int = 50) -> list[str]:
        """Every page's ``key`` list, following Link rel="next" from ``link`` (at most ``limit`` pages)."""
        items: list[str] = []
        for _ in range(limit):
            if not link:
                break
            page = self.request("GET", link)
            items += page.json()[key]
            link = page.next_link()
        return items

    def upload_blob(self, repo: str, data: bytes) -> str:
        """POST then PUT ?digest= (the flow every registry supports); return the digest."""
        digest = sha256(data)
        start = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert start.status == 202, f"POST upload in {repo}: {start.status} {start.body!r}"
        done = self.request("PUT", with_query(start.headers["Location"], digest=digest), data,
                            {"Content-Type": "application/octet-stream"})
        assert done.status == 201, f"PUT upload in {repo}: {done.status} {done.body!r}"
        return digest

    def push_image(self, repo: str, ref: str, layers: list[bytes], config: bytes = b"{}") -> tuple[str, Response]:
        """Upload ``config`` and ``layers``, PUT an OCI manifest naming them; return (its digest, the PUT)."""
        body = image_manifest(self.upload_blob(repo, config), len(config),
                              [(self.upload_blob(repo, layer), len(layer)) for layer in layers])
        put = self.request("PUT", f"/v2/{repo}/manifests/{ref}", body, {"Content-Type": OCI_MANIFEST})
        return sha256(body), put


def image_manifest(config: str, config_size: int, layers: list[tuple[str, int]]) -> bytes:
    """The bytes of an OCI image manifest with these config and layer descriptors."""
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": n} for d, n in layers],
    }, separators=(",", ":")).encode()


def with_query(location: str, **params: str) -> str:
    """``location`` with ``params`` added to the query it already carries (upload state must be kept)."""
    parts = urlsplit(location)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(("", "", parts.path, query, ""))


def start_all(make_root: Callable[[str], str]) -> Iterator[dict[str, RegistryProcess | str]]:
    """Every kind of registry, started once (a pytest fixture body); one that would not start maps to the
    reason instead, so its cases fail with it while the others run. ``make_root(kind)`` gives its root."""
    started: dict[str, RegistryProcess | str] = {}
    try:
        for kind in KINDS:
            reg = RegistryProcess(kind, make_root(kind))
            try:
                reg.start()
                started[kind] = reg
            except RegistryStartError as e:
                started[kind] = str(e)
        yield started
    finally:
        for server in started.values():
            if isinstance(server, RegistryProcess):
                server.stop()


def insecure_args(*groups: Mapping[str, object]) -> tuple[str, ...]:
    """``--insecure-registry host:port`` for every RegistryProcess among the groups' values."""
    return tuple(a for g in groups for r in g.values() if isinstance(r, RegistryProcess)
                 for a in ("--insecure-registry", r.host_port))
