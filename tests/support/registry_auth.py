"""Registries with authentication or TLS for tests: the test user, its htpasswd file, the process."""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import subprocess

from tests.support.registries import RegistryProcess, config_yaml, free_port

USER, PASSWORD = "dockyard", "s3cret-pass"


class AuthRegistry(RegistryProcess):
    """A RegistryProcess whose config has extra YAML (auth, tls) and which is ready on 200 or 401."""

    def __init__(self, kind: str, root: str, extra: str, *, tls: str | None = None) -> None:
        super().__init__(kind, root)
        self.extra = extra
        self.tls_ca = tls  # the CA file to trust when the server speaks HTTPS

    def start(self) -> None:
        os.makedirs(self.storage, exist_ok=True)
        try:
            self.port = free_port()
            with open(self.config_path, "w") as f:
                f.write(config_yaml(self.storage, self.host_port) + self.extra.replace("$PORT", str(self.port)))
            self._launch(last=True)
        except BaseException:
            self.stop()
            raise

    def ready(self) -> bool:
        if self.tls_ca:
            ctx = ssl.create_default_context(cafile=self.tls_ca)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2,
                                                                           context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/v2/")
            return conn.getresponse().status in (200, 401)
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()


def run_ok(*argv: str, cwd: str | None = None) -> str:
    """stdout of a command that must succeed."""
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, cwd=cwd, check=False)
    assert r.returncode == 0, f"{' '.join(argv)}: rc={r.returncode}\n{r.stderr}"
    return r.stdout


def write_htpasswd(path: str) -> None:
    """An htpasswd file with USER:PASSWORD (Debian's htpasswd -B when installed: $2y$ bcrypt)."""
    if shutil.which("htpasswd"):
        line = run_ok("htpasswd", "-Bbn", USER, PASSWORD).strip()  # Debian apache2-utils: $2y$ bcrypt
    else:
        from dockyard.registry.auth.htpasswd import hash_password

        line = f"{USER}:{hash_password(PASSWORD)}"
    with open(path, "w") as f:
        f.write(line + "\n")
