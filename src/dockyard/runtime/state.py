"""Container state on disk, and the legal transitions between states.

Each container has a directory under the runtime root (``--root``)::

    <root>/<id>/
        state.json     what create recorded: init pid + start time, bundle, config, cgroup
        exec.fifo      exists while the container is `created`; `start` opens it

The status is derived, never stored: a record without an init pid is
``creating`` while the create that wrote it runs (``stopped`` if it was
killed: delete then cleans up); the init process gone (or its pid reused)
means ``stopped``; the fifo present means ``created``; a frozen cgroup means
``paused``; otherwise ``running``. state.json is written atomically (temp file,
rename), so a kill -9 at any moment leaves the old or the new state.
"""

from __future__ import annotations

from ..oci import jsonio
import os

from ..errors import Conflict, InvalidArgument, NotFound

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"

_ID_EXTRA = set("_+-.")


def validate_id(container_id: str) -> None:
    """IDs are made of letters, digits and ``_+-.`` (and are not . or ..)."""
    if not container_id:
        raise InvalidArgument("container id cannot be empty")
    if container_id in (".", "..") or not all(c.isalnum() and c.isascii() or c in _ID_EXTRA for c in container_id):
        raise InvalidArgument("invalid container ID format", id=container_id)


class Container:
    """One container's state directory and recorded state."""

    def __init__(self, root: str, container_id: str, data: dict | None = None) -> None:
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.data: dict = data or {}

    # -- recorded fields ------------------------------------------------
    @property
    def pid(self) -> int:
        return int(self.data.get("init_pid", 0))

    @property
    def config(self) -> dict:
        return self.data["config"]

    @property
    def fifo_path(self) -> str:
        return os.path.join(self.dir, EXEC_FIFO)

    def save(self) -> None:
        """Write state.json atomically: a kill -9 at any moment leaves the old or the new file.

        No fsync, as with runc: the rename is atomic for every process on the
        machine, and the state describes processes a machine crash ends anyway
        (the root is a tmpfs such as /run in real use).
        """
        self.stage()
        self.publish()

    def stage(self) -> None:
        """Write the record beside state.json; :meth:`publish` makes it the state."""
        fd = os.open(self._staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, jsonio.dumps(self.data).encode())
        finally:
            os.close(fd)

    def publish(self) -> None:
        os.rename(self._staged, os.path.join(self.dir, STATE_FILE))

    @property
    def _staged(self) -> str:
        return os.path.join(self.dir, f".{STATE_FILE}.tmp")

    # -- derived status -------------------------------------------------
    def init_alive(self) -> bool:
        """True if the recorded init process still exists and is not a zombie."""
        stat = proc_stat(self.pid)
        return stat is not None and stat[0] != "Z" and stat[1] == self.data.get("init_start")

    def status(self) -> str:
        if not self.pid:
            # A provisional record: create is under way, or was killed before it finished.
            creator = proc_stat(int(self.data.get("creator_pid", 0)))
            if creator is not None and creator[0] != "Z" and creator[1] == self.data.get("creator_start"):
                return CREATING
            return STOPPED
        if not self.init_alive():
            return STOPPED
        if os.path.exists(self.fifo_path):
            return CREATED
        if self.data.get("cgroup") and self.cgroup().frozen():
            return PAUSED
        return RUNNING

    def cgroup(self):
        from .cgroups import load_manager

        return load_manager(self.data["cgroup"])

    def oci_state(self, status: str | None = None) -> dict:
        """The OCI state document (what `state` prints and hooks read on stdin)."""
        status = status or self.status()
        out = {
            "ociVersion": self.config.get("ociVersion", ""),
            "id": self.id,
            "pid": self.pid if status != STOPPED else 0,
            "status": status,
            "bundle": self.data.get("bundle", ""),
            "rootfs": self.data.get("rootfs", ""),
            "created": self.data.get("created", ""),
            "owner": self.data.get("owner", ""),
        }
        annotations = self.config.get("annotations")
        if annotations:
            out["annotations"] = annotations
        return out


def load(root: str, container_id: str) -> Container:
    """The container named ``container_id``, or NotFound as runc words it."""
    validate_id(container_id)
    path = os.path.join(root, container_id, STATE_FILE)
    try:
        with open(path, "rb") as f:
            data = jsonio.loads(f.read())
    except FileNotFoundError:
        raise NotFound("container does not exist", id=container_id) from None
    except ValueError as e:
        raise NotFound(f"container state is corrupt: {path}: {e}", id=container_id) from e
    return Container(root, container_id, data)


def remove_dir(path: str) -> None:
    """Remove a state directory (flat: state.json, exec.fifo, temp files); fine if gone."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def list_ids(root: str) -> list[str]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.exists(os.path.join(root, n, STATE_FILE))]


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process, or None if gone."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


# -- legal transitions, in one place ------------------------------------
def check_can_start(status: str) -> None:
    if status == CREATED:
        return
    if status == STOPPED:
        raise Conflict("cannot start a container that has stopped")
    if status == RUNNING:
        raise Conflict("cannot start an already running container")
    raise Conflict(f"cannot start a container in the {status} state")


def check_can_signal(status: str) -> None:
    if status not in (CREATED, RUNNING, PAUSED):
        raise Conflict("container not running")


def check_can_exec(status: str, ignore_paused: bool = False) -> None:
    if status == STOPPED:
        raise Conflict("cannot exec in a stopped container")
    if status == PAUSED and not ignore_paused:
        raise Conflict("cannot exec in a paused container (use --ignore-paused to override)")


def check_can_pause(status: str) -> None:
    if status not in (RUNNING, CREATED):
        raise Conflict("container not running")


def check_can_resume(status: str) -> None:
    if status != PAUSED:
        raise Conflict("container not paused")
