"""OCI hooks: run each with the container state as JSON on stdin, honouring timeouts.

A failing hook fails the operation for prestart, createRuntime,
createContainer and startContainer; poststart and poststop failures are only
logged (runtime spec 1.2). Hooks run wherever the caller runs: the runtime's
namespaces for runtime-side hooks, the container's for createContainer and
startContainer (called from the container's init).
"""

from __future__ import annotations

from ..oci import jsonio
import os
import select
import time

from ..errors import DockyardError


class HookError(DockyardError):
    """A hook exited non-zero, timed out or could not be started."""


def run_hooks(spec: dict, name: str, state: dict) -> None:
    """Run every hook of kind ``name`` in order; raise HookError on the first failure."""
    hooks = (spec.get("hooks") or {}).get(name) or []
    if not hooks:
        return
    payload = jsonio.dumps(state).encode()
    for index, hook in enumerate(hooks):
        try:
            _run_one(hook, payload)
        except HookError as e:
            raise HookError(f"error running {name} hook #{index}: {e}") from e


def _run_one(hook: dict, payload: bytes) -> None:
    path = hook["path"]
    args = hook.get("args") or [path]
    env = hook.get("env")
    env_map = dict(os.environ) if env is None else dict(e.split("=", 1) for e in env if "=" in e)
    timeout = hook.get("timeout")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        pid = os.posix_spawn(path, args, env_map, file_actions=[
            (os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, out_w, 2)],
            setsigdef=(13, 25), setsigmask=())
    except OSError as e:
        for fd in (in_r, in_w, out_r, out_w):
            os.close(fd)
        raise HookError(f"{e.strerror}: {path}") from e
    os.close(in_r)
    os.close(out_w)
    try:
        os.write(in_w, payload)
    except BrokenPipeError:
        pass
    os.close(in_w)
    output, status = _collect(pid, out_r, timeout)
    os.close(out_r)
    if status is None:
        raise HookError(f"timeout after {timeout}s, output: {output.decode(errors='replace')!r}")
    if status != 0:
        raise HookError(f"exit status {status}, output: {output.decode(errors='replace')!r}")


def _collect(pid: int, out_fd: int, timeout: int | None) -> tuple[bytes, int | None]:
    """Read the hook's output until it exits; None status means it was killed on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    chunks: list[bytes] = []
    open_out = True
    while open_out:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([out_fd], [], [], wait)
        if not ready:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return b"".join(chunks), None
        data = os.read(out_fd, 65536)
        if data:
            chunks.append(data)
        else:
            open_out = False
    # Output closed; the hook may still run (it closed stdout) until the deadline.
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return b"".join(chunks), os.waitstatus_to_exitcode(status)
        if deadline is not None and time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return b"".join(chunks), None
        time.sleep(0.005)
