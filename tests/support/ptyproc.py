"""Run a command on a real pseudo-terminal and talk to it, like a person at a keyboard.

    with PtyProcess(["docker", "run", "-it", "--rm", "busybox", "sh"], env) as p:
        p.expect(rb"# ")                         # the prompt
        p.send("echo $((6*7)); exit 5\\r")        # Enter is CR on a terminal in raw mode
        rc, output = p.finish()

The command gets the pty as stdin/stdout/stderr and as its controlling terminal
(new session, TIOCSCTTY), with a fixed window size, so `docker -it` sees a TTY.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time


def _take_controlling_tty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    """A child process whose terminal is a pty we hold the master side of."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, rows: int = 24, cols: int = 80) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        try:
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                         start_new_session=True, preexec_fn=_take_controlling_tty)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        self.output = b""
        self._eof = False

    def __enter__(self) -> PtyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, deadline: float) -> bool:
        """Read what is available before ``deadline``; False at end of output or timeout."""
        remaining = deadline - time.monotonic()
        if self._eof or remaining <= 0:
            return False
        ready, _, _ = select.select([self.master], [], [], remaining)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every slave fd is closed, the command is gone
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self.output += chunk
        return True

    def expect(self, pattern: bytes, timeout: float = 30.0) -> re.Match[bytes]:
        """Wait until the output so far matches ``pattern`` (a regex); raise TimeoutError if not."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while (match := regex.search(self.output)) is None:
            if not self._read(deadline):
                why = "the command closed the terminal" if self._eof else f"not within {timeout}s"
                raise TimeoutError(f"no {pattern!r} in the output ({why}): {self.text!r}")
        return match

    def resize(self, rows: int, cols: int) -> None:
        """Change the window size and tell the foreground process group, as a terminal does."""
        import signal

        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.killpg(self.proc.pid, signal.SIGWINCH)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """Read to the end, wait for the command; return (exit status, all output as text)."""
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        rc = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        return rc, self.text

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
