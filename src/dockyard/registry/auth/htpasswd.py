"""An htpasswd file of bcrypt entries (``user:$2y$...``), as distribution's htpasswd auth reads it.

The file is re-read when its modification time changes, so users can be added without a restart.
bcrypt runs in a worker thread and a successful check is remembered (keyed by a SHA-256 of the
password, never the password itself): a push makes dozens of requests with the same credentials.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os

import bcrypt

log = logging.getLogger("dockyard.registry.auth")
_BCRYPT_PREFIXES = ("$2y$", "$2a$", "$2b$")


class Htpasswd:
    """The users of one htpasswd file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime: float | None = None
        self._users: dict[str, bytes] = {}
        self._verified: set[tuple[str, bytes, bytes]] = set()
        self._missing_logged = False
        self._reload()

    def _reload(self) -> None:
        """Read the file again if it changed (an unreadable file keeps no users)."""
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as e:
            if self._mtime is not None or not self._missing_logged:  # once, not on every request
                log.error("htpasswd %s: %s (nobody can log in)", self.path, e.strerror)
                self._missing_logged = True
            self._users, self._mtime = {}, None
            return
        self._missing_logged = False
        if mtime == self._mtime:
            return
        self._users = parse(self._read())
        self._mtime = mtime
        self._verified.clear()

    def _read(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            log.error("htpasswd %s: %s", self.path, e.strerror)
            return ""

    def users(self) -> list[str]:
        """The user names (sorted)."""
        self._reload()
        return sorted(self._users)

    async def verify(self, user: str, password: str) -> bool:
        """True if ``user`` exists and ``password`` matches its bcrypt hash."""
        self._reload()
        stored = self._users.get(user)
        if stored is None:
            return False
        key = (user, hashlib.sha256(password.encode()).digest(), stored)
        if key in self._verified:
            return True
        ok = await asyncio.get_running_loop().run_in_executor(None, check, password, stored)
        if ok:
            self._verified.add(key)
        return ok


def parse(text: str) -> dict[str, bytes]:
    """``user:hash`` lines -> {user: bcrypt hash}; blank, comment and non-bcrypt lines are skipped."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            log.warning("htpasswd line %d: not user:hash, skipped", number)
        elif not hashed.startswith(_BCRYPT_PREFIXES):
            log.warning("htpasswd user %s: only bcrypt entries are supported (htpasswd -B), skipped", user)
        else:
            users[user] = hashed.encode()
    return users


def check(password: str, hashed: bytes) -> bool:
    """bcrypt comparison; Apache's ``$2y$`` prefix is the same algorithm as ``$2b$``."""
    if hashed.startswith(b"$2y$"):
        hashed = b"$2b$" + hashed[4:]
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:
        return False


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt htpasswd hash of ``password`` (for tests and tooling)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
