"""A container's record: what `docker inspect` shows, persisted as config.v2.json.

The record is plain JSON-able data (Docker's field names) plus a few private fields of ours
(SnapshotKey, ImageRef, Runtime); `inspect()` renders Docker's shape from it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from dockyard.engine.daemon.timefmt import ZERO_TIME

RUNNING_LIKE = ("running", "paused", "restarting")
# Config fields Docker leaves out of JSON when empty (omitempty in its types).
OMIT_EMPTY_CONFIG = frozenset({"ExposedPorts", "StopSignal", "StopTimeout", "Healthcheck", "Shell", "MacAddress",
                               "NetworkDisabled", "ArgsEscaped"})


def new_state() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
            "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


@dataclass
class Container:
    """One container; mutable, saved by the store after each change."""

    id: str
    name: str                      # with the leading "/"
    created: str                   # RFC 3339 nano
    image_id: str                  # sha256:...
    image_ref: str                 # what the user asked for (Config.Image)
    config: dict[str, Any]         # merged with the image's defaults
    host_config: dict[str, Any]
    path: str = ""
    args: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=new_state)
    snapshot_key: str = ""
    driver: str = "overlay2"
    runtime: str = "runc"
    restart_count: int = 0
    has_been_started: bool = False
    manually_stopped: bool = False
    mount_points: list[dict[str, Any]] = field(default_factory=list)   # Docker's Mounts[] entries
    mount_specs: list[dict[str, Any]] = field(default_factory=list)    # the MountPoints they came from
    networking: dict[str, Any] = field(default_factory=dict)           # EndpointsConfig: the networks it is on
    network_settings: dict[str, Any] = field(default_factory=dict)     # the live endpoints, ports, sandbox
    exec_ids: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)                # LogPath, HostsPath, ...

    # -- state ---------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return str(self.state["Status"])

    @property
    def running(self) -> bool:
        return bool(self.state["Running"])

    @property
    def paused(self) -> bool:
        return bool(self.state["Paused"])

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def bare_name(self) -> str:
        return self.name.lstrip("/")

    def set_running(self, pid: int, started_at: str) -> None:
        self.state.update(Status="running", Running=True, Paused=False, Restarting=False, Pid=pid, ExitCode=0,
                          Error="", StartedAt=started_at, OOMKilled=False, Dead=False)
        self.has_been_started = True

    def set_exited(self, exit_code: int, finished_at: str, error: str = "", oom: bool = False) -> None:
        self.state.update(Status="exited", Running=False, Paused=False, Restarting=False, Pid=0,
                          ExitCode=exit_code, FinishedAt=finished_at, Error=error, OOMKilled=oom)

    def set_restarting(self) -> None:
        self.state.update(Status="restarting", Running=True, Restarting=True, Paused=False, Pid=0)

    def set_paused(self, paused: bool) -> None:
        self.state.update(Status="paused" if paused else "running", Paused=paused)

    # -- persistence ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"ID": self.id, "Name": self.name, "Created": self.created, "Image": self.image_id,
                "ImageRef": self.image_ref, "Config": self.config, "HostConfig": self.host_config,
                "Path": self.path, "Args": self.args, "State": self.state, "SnapshotKey": self.snapshot_key,
                "Driver": self.driver, "Runtime": self.runtime, "RestartCount": self.restart_count,
                "HasBeenStartedBefore": self.has_been_started, "HasBeenManuallyStopped": self.manually_stopped,
                "MountPoints": self.mount_points, "MountSpecs": self.mount_specs, "Networking": self.networking,
                "NetworkSettings": self.network_settings, "Paths": self.paths}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Container:
        return cls(id=d["ID"], name=d["Name"], created=d["Created"], image_id=d["Image"],
                   image_ref=d.get("ImageRef", ""), config=d["Config"], host_config=d["HostConfig"],
                   path=d.get("Path", ""), args=list(d.get("Args") or []), state={**new_state(), **d["State"]},
                   snapshot_key=d.get("SnapshotKey", ""), driver=d.get("Driver", "overlay2"),
                   runtime=d.get("Runtime", "runc"), restart_count=int(d.get("RestartCount", 0)),
                   has_been_started=bool(d.get("HasBeenStartedBefore")),
                   manually_stopped=bool(d.get("HasBeenManuallyStopped")),
                   mount_points=list(d.get("MountPoints") or []), mount_specs=list(d.get("MountSpecs") or []),
                   networking=dict(d.get("Networking") or {}),
                   network_settings=dict(d.get("NetworkSettings") or {}),
                   paths=dict(d.get("Paths") or {}))

    # -- Docker's inspect shape ------------------------------------------------------------------
    def inspect(self, network_settings: dict[str, Any], graph_driver: dict[str, Any]) -> dict[str, Any]:
        state = copy.deepcopy(self.state)
        config = {k: v for k, v in copy.deepcopy(self.config).items() if v or k not in OMIT_EMPTY_CONFIG}
        if "Health" in state and state["Health"] is None:
            del state["Health"]
        return {
            "Id": self.id, "Created": self.created, "Path": self.path, "Args": list(self.args), "State": state,
            "Image": self.image_id, "ResolvConfPath": self.paths.get("ResolvConfPath", ""),
            "HostnamePath": self.paths.get("HostnamePath", ""), "HostsPath": self.paths.get("HostsPath", ""),
            "LogPath": self.paths.get("LogPath", ""), "Name": self.name, "RestartCount": self.restart_count,
            "Driver": self.driver, "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
            "ExecIDs": list(self.exec_ids) or None, "HostConfig": copy.deepcopy(self.host_config),
            "GraphDriver": graph_driver, "Mounts": copy.deepcopy(self.mount_points),
            "Config": config, "NetworkSettings": network_settings,
        }
