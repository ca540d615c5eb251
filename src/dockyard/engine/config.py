"""dockyardd's configuration: dockerd-style flags merged with daemon.json.

Rules follow dockerd: a key given both as a flag and in the file is an error,
unknown file keys are an error, a missing *default* config file is fine, a
missing explicit ``--config-file`` is not. TLS files default to
``$DOCKYARD_CERT_PATH/{ca,cert,key}.pem`` (``/etc/dockyard`` when unset): a
daemon's keys belong under /etc, not in root's ~/.docker as dockerd has it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

import dockyard
from dockyard.engine.flags import Opt, go_repr, parse_flags, parse_size, usage_text  # noqa: F401 (parse_size)
from dockyard.engine.listeners import DEFAULT_HOST, parse_host
from dockyard.errors import InvalidArgument

DEFAULT_CONFIG_FILE = "/etc/dockyard/daemon.json"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
STORAGE_DRIVERS = ("overlay2", "vfs")
RESERVED_RUNTIMES = ("runc", "dockyard")
# Keys dockerd accepts that Dockyard does not act on (yet): accepted, kept in ``extra``.
ACCEPTED_ONLY = frozenset({
    "allow-direct-routing", "allow-nondistributable-artifacts", "api-cors-header",
    "authorization-plugins", "bip6", "builder", "cdi-spec-dirs", "containerd",
    "containerd-namespace", "containerd-plugins-namespace", "cpu-rt-period", "cpu-rt-runtime",
    "default-address-pools", "default-gateway", "default-gateway-v6", "default-network-opts",
    "experimental", "features", "firewall-backend", "fixed-cidr-v6", "host-gateway-ip",
    "host-gateway-ips", "ip", "ip6tables", "log-format", "metrics-addr",
    "node-generic-resources", "oom-score-adjust", "proxies", "raw-logs", "rootless",
    "seccomp-profile", "selinux-enabled", "swarm-default-advertise-addr", "userland-proxy-path",
    "userns-remap",
})
RELOADABLE = ("debug", "log-level", "labels", "default-runtime", "runtimes", "live-restore",
              "default-ulimits", "shutdown-timeout", "max-concurrent-downloads",
              "max-concurrent-uploads", "max-download-attempts", "insecure-registries",
              "registry-mirrors")


def _cert(name: str) -> str:
    return os.path.join(os.environ.get("DOCKYARD_CERT_PATH") or "/etc/dockyard", name)


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class DaemonConfig:
    """The daemon's effective settings; attribute = daemon.json key with '_' for '-'."""

    hosts: tuple[str, ...] = (DEFAULT_HOST,)
    data_root: str = "/var/lib/dockyard"
    exec_root: str = "/run/dockyard"
    pidfile: str = "/var/run/dockyard.pid"
    config_file: str = DEFAULT_CONFIG_FILE
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str = field(default_factory=lambda: _cert("ca.pem"))
    tlscert: str = field(default_factory=lambda: _cert("cert.pem"))
    tlskey: str = field(default_factory=lambda: _cert("key.pem"))
    insecure_tcp: bool = False
    default_runtime: str = "runc"
    runtimes: Mapping[str, str] = field(default_factory=lambda: _frozen(builtin_runtimes()))
    runtime_args: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen)
    live_restore: bool = True
    group: str = "docker"
    log_level: str = "info"
    default_ulimits: Mapping[str, tuple[int, int]] = field(default_factory=_frozen)
    storage_driver: str = "overlay2"
    storage_opts: tuple[str, ...] = ()
    debug: bool = False
    labels: tuple[str, ...] = ()
    cgroup_parent: str = "/dockyard"
    shutdown_timeout: int = 15
    default_shm_size: int = 64 * 1024 * 1024
    exec_opts: tuple[str, ...] = ()
    log_driver: str = "json-file"
    log_opts: Mapping[str, str] = field(default_factory=_frozen)
    bridge: str = ""
    bip: str = ""
    fixed_cidr: str = ""
    mtu: int = 1500
    icc: bool = True
    ipv6: bool = False
    iptables: bool = True
    ip_forward: bool = True
    ip_masq: bool = True
    userland_proxy: bool = True
    dns: tuple[str, ...] = ()
    dns_opts: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    max_download_attempts: int = 5
    init: bool = False
    init_path: str = ""
    no_new_privileges: bool = False
    default_ipc_mode: str = "private"
    default_cgroupns_mode: str = "private"
    extra: Mapping[str, Any] = field(default_factory=_frozen)
    # The flags given on the command line (key -> value), kept so reload() can re-merge.
    cli_values: Mapping[str, Any] = field(default_factory=_frozen, repr=False, compare=False)

    @property
    def effective_log_level(self) -> str:
        """``debug`` when -D/--debug is on (as dockerd), else log_level."""
        return "debug" if self.debug else self.log_level


OPTIONS: tuple[Opt, ...] = (
    Opt("hosts", "list", "host", "H", "Daemon socket(s) to connect to"),
    Opt("", "str", "config-file", "", "Daemon configuration file", DEFAULT_CONFIG_FILE),
    Opt("data-root", "str", "data-root", "", "Root directory of persistent state", "/var/lib/dockyard"),
    Opt("exec-root", "str", "exec-root", "", "Root directory for execution state files", "/run/dockyard"),
    Opt("pidfile", "str", "pidfile", "p", "Path to use for daemon PID file", "/var/run/dockyard.pid"),
    Opt("debug", "bool", "debug", "D", "Enable debug mode"),
    Opt("log-level", "str", "log-level", "l", "Set the logging level (debug|info|warn|error|fatal)", "info"),
    Opt("group", "str", "group", "G", "Group for the unix socket", "docker"),
    Opt("tls", "bool", "tls", "", "Use TLS; implied by --tlsverify"),
    Opt("tlsverify", "bool", "tlsverify", "", "Use TLS and verify the remote (client certificates)"),
    Opt("tlscacert", "str", "tlscacert", "", "Trust certs signed only by this CA", "$DOCKYARD_CERT_PATH/ca.pem"),
    Opt("tlscert", "str", "tlscert", "", "Path to TLS certificate file", "$DOCKYARD_CERT_PATH/cert.pem"),
    Opt("tlskey", "str", "tlskey", "", "Path to TLS key file", "$DOCKYARD_CERT_PATH/key.pem"),
    Opt("insecure-tcp", "bool", "insecure-tcp", "", "Allow tcp:// without TLS (root for anyone reaching the port)"),
    Opt("default-runtime", "str", "default-runtime", "", "Default OCI runtime for containers", "runc"),
    Opt("runtimes", "runtimes", "add-runtime", "", "Register an additional OCI runtime (name=path)"),
    Opt("live-restore", "bool", "live-restore", "", "Keep containers running while the daemon is down", "true"),
    Opt("default-ulimits", "ulimits", "default-ulimit", "", "Default ulimits for containers (nofile=1024:2048)"),
    Opt("storage-driver", "str", "storage-driver", "s", "Storage driver to use (overlay2|vfs)", "overlay2"),
    Opt("storage-opts", "list", "storage-opt", "", "Storage driver options"),
    Opt("labels", "list", "label", "", "Set key=value labels to the daemon"),
    Opt("cgroup-parent", "str", "cgroup-parent", "", "Set parent cgroup for all containers", "/dockyard"),
    Opt("shutdown-timeout", "int", "shutdown-timeout", "", "Default shutdown timeout in seconds", "15"),
    Opt("default-shm-size", "size", "default-shm-size", "", "Default shm size for containers", "64MiB"),
    Opt("exec-opts", "list", "exec-opt", "", "Runtime execution options"),
    Opt("log-driver", "str", "log-driver", "", "Default driver for container logs", "json-file"),
    Opt("log-opts", "kv", "log-opt", "", "Default log driver options for containers"),
    Opt("bridge", "str", "bridge", "b", "Attach containers to a network bridge"),
    Opt("bip", "str", "bip", "", "IPv4 address for the default bridge"),
    Opt("fixed-cidr", "str", "fixed-cidr", "", "IPv4 subnet for fixed IPs"),
    Opt("mtu", "int", "mtu", "", "Set the containers network MTU", "1500"),
    Opt("icc", "bool", "icc", "", "Enable inter-container communication", "true"),
    Opt("ipv6", "bool", "ipv6", "", "Enable IPv6 networking"),
    Opt("iptables", "bool", "iptables", "", "Enable addition of iptables rules", "true"),
    Opt("ip-forward", "bool", "ip-forward", "", "Enable net.ipv4.ip_forward", "true"),
    Opt("ip-masq", "bool", "ip-masq", "", "Enable IP masquerading", "true"),
    Opt("userland-proxy", "bool", "userland-proxy", "", "Use userland proxy for loopback traffic", "true"),
    Opt("dns", "list", "dns", "", "DNS server to use"),
    Opt("dns-opts", "list", "dns-opt", "", "DNS options to use"),
    Opt("dns-search", "list", "dns-search", "", "DNS search domains to use"),
    Opt("insecure-registries", "list", "insecure-registry", "", "Enable insecure registry communication"),
    Opt("registry-mirrors", "list", "registry-mirror", "", "Preferred registry mirror"),
    Opt("max-concurrent-downloads", "int", "max-concurrent-downloads", "", "Max concurrent downloads", "3"),
    Opt("max-concurrent-uploads", "int", "max-concurrent-uploads", "", "Max concurrent uploads", "5"),
    Opt("max-download-attempts", "int", "max-download-attempts", "", "Max download attempts", "5"),
    Opt("init", "bool", "init", "", "Run an init in the container to forward signals and reap processes"),
    Opt("init-path", "str", "init-path", "", "Path to the docker-init binary"),
    Opt("no-new-privileges", "bool", "no-new-privileges", "", "Set no-new-privileges by default"),
    Opt("default-ipc-mode", "str", "default-ipc-mode", "", "Default IPC mode (private|shareable)", "private"),
    Opt("default-cgroupns-mode", "str", "default-cgroupns-mode", "", "Default cgroup namespace mode (private|host)", "private"),
    Opt("", "bool", "version", "v", "Print version information and quit"),
    Opt("", "bool", "help", "h", "Print usage"),
)
_BY_KEY = {o.key: o for o in OPTIONS if o.key}


def builtin_runtimes() -> dict[str, str]:
    """runc from PATH; dockyard-runtime next to this Python first (a venv), then PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "dockyard-runtime")
    ours = beside if os.access(beside, os.X_OK) else shutil.which("dockyard-runtime")
    return {"runc": shutil.which("runc") or "runc", "dockyard": ours or "dockyard-runtime"}


def version_string() -> str:
    """dockerd's shape: ``Dockyard version 0.1.0, build 1a2b3c4``."""
    return f"Dockyard version {dockyard.__version__}, build {git_commit() or 'unknown'}"


def git_commit() -> str | None:
    """Short commit of a source checkout, read from .git without running git."""
    git = os.path.join(os.path.dirname(dockyard.__file__), "..", "..", ".git")
    try:
        with open(os.path.join(git, "HEAD")) as fh:
            head = fh.read().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = os.path.join(git, ref)
            if os.path.exists(ref_file):
                with open(ref_file) as fh:
                    head = fh.read().strip()
            else:
                with open(os.path.join(git, "packed-refs")) as fh:
                    head = next(ln.split()[0] for ln in fh if ln.rstrip().endswith(" " + ref))
        return head[:7] if len(head) >= 7 else None
    except (OSError, StopIteration, IndexError):
        return None


def usage() -> str:
    return usage_text("dockyardd", "A self-sufficient runtime for containers.", OPTIONS)


def parse_args(argv: list[str]) -> DaemonConfig:
    """Flags + daemon.json merged. Prints and exits 0 on -h/--version."""
    given, displays = parse_flags(argv, OPTIONS)
    if given.get("help"):
        print(usage())
        raise SystemExit(0)
    if given.get("version"):
        print(version_string())
        raise SystemExit(0)
    config_file = given.get("config-file", DEFAULT_CONFIG_FILE)
    cli = {k: v for k, v in given.items() if k in _BY_KEY}
    file_values = load_file(config_file, explicit="config-file" in given,
                            cli={k: displays[k] for k in cli})
    return _build({**file_values, **cli}, config_file, cli)


def reload(config: DaemonConfig) -> DaemonConfig:
    """Re-read daemon.json (SIGHUP): only reloadable keys change; flags still win.

    A reloadable key removed from the file falls back to its flag or default.
    """
    cli = dict(config.cli_values)
    displays = {k: go_repr(v) for k, v in cli.items()}
    file_values = load_file(config.config_file, explicit=False, cli=displays)
    fresh = _build({**file_values, **cli}, config.config_file, cli)
    attrs = {k.replace("-", "_"): getattr(fresh, k.replace("-", "_")) for k in RELOADABLE}
    attrs["runtime_args"] = fresh.runtime_args
    return replace(config, **attrs)


def load_file(path: str, *, explicit: bool, cli: Mapping[str, str]) -> dict[str, Any]:
    """daemon.json as converted values, after dockerd's unknown-key and conflict checks."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        if explicit:
            raise InvalidArgument(f"unable to configure the Dockyard daemon with file {path}: "
                                  f"open {path}: no such file or directory", path=path) from None
        return {}
    except OSError as exc:
        raise InvalidArgument(f"unable to configure the Dockyard daemon with file {path}: {exc}",
                              path=path) from None
    try:
        return _check_file(raw, cli)
    except InvalidArgument as exc:
        raise InvalidArgument(f"unable to configure the Dockyard daemon with file {path}: "
                              f"{exc.message}", path=path) from None


def _check_file(raw: bytes, cli: Mapping[str, str]) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("the configuration file must hold a JSON object")
    unknown = sorted(k for k in data if k not in _BY_KEY and k not in ACCEPTED_ONLY)
    if unknown:
        raise InvalidArgument("the following directives don't match any configuration "
                              f"option: {', '.join(unknown)}")
    both = [f"{k}: (from flag: {cli[k]}, from file: {go_repr(data[k])})" for k in data if k in cli]
    if both:
        raise InvalidArgument("the following directives are specified both as a flag and in "
                              f"the configuration file: {', '.join(both)}")
    values: dict[str, Any] = {"extra": {k: v for k, v in data.items() if k in ACCEPTED_ONLY}}
    for key, value in data.items():
        if key in _BY_KEY:
            values[key] = _BY_KEY[key].from_file(value)
    return values


def _build(values: Mapping[str, Any], config_file: str, cli: Mapping[str, Any]) -> DaemonConfig:
    """Turn merged key -> value into a validated DaemonConfig."""
    attrs: dict[str, Any] = {k.replace("-", "_"): v for k, v in values.items() if k != "runtimes"}
    user_runtimes: Mapping[str, tuple[str, tuple[str, ...]]] = values.get("runtimes", {})
    for name in user_runtimes:
        if name in RESERVED_RUNTIMES:
            raise InvalidArgument(f"runtime name '{name}' is reserved")
    attrs["runtimes"] = _frozen({**builtin_runtimes(), **{n: p for n, (p, _) in user_runtimes.items()}})
    attrs["runtime_args"] = _frozen({n: a for n, (_, a) in user_runtimes.items() if a})
    for key in ("default_ulimits", "log_opts", "extra"):
        if key in attrs:
            attrs[key] = _frozen(attrs[key])
    hosts = tuple(parse_host(h) for h in attrs.get("hosts", ())) or (DEFAULT_HOST,)
    attrs["hosts"] = tuple(dict.fromkeys(hosts))
    cfg = DaemonConfig(config_file=config_file, cli_values=_frozen(cli), **attrs)
    if cfg.tlsverify and not cfg.tls:
        cfg = replace(cfg, tls=True)
    _validate(cfg)
    return cfg


def _validate(cfg: DaemonConfig) -> None:
    if cfg.log_level not in LOG_LEVELS:
        raise InvalidArgument(f"unable to parse logging level: {cfg.log_level}")
    if cfg.storage_driver not in STORAGE_DRIVERS:
        raise InvalidArgument(f"driver not supported: {cfg.storage_driver} "
                              f"(Dockyard supports {' and '.join(STORAGE_DRIVERS)})")
    if cfg.default_runtime not in cfg.runtimes:
        raise InvalidArgument(f"specified default runtime '{cfg.default_runtime}' does not exist")
    for label in cfg.labels:
        if "=" not in label or label.startswith("="):
            raise InvalidArgument(f"bad attribute format: {label}")
    for name in ("max_concurrent_downloads", "max_concurrent_uploads", "max_download_attempts"):
        if getattr(cfg, name) < (1 if name == "max_download_attempts" else 0):
            raise InvalidArgument(f"invalid {name.replace('_', '-')}: {getattr(cfg, name)}")
    if cfg.default_ipc_mode not in ("private", "shareable"):
        raise InvalidArgument(f"invalid default IPC mode ({cfg.default_ipc_mode}): "
                              "must be \"private\" or \"shareable\"")
    if cfg.default_cgroupns_mode not in ("private", "host"):
        raise InvalidArgument(f"invalid default cgroup namespace ({cfg.default_cgroupns_mode}): "
                              "must be \"host\" or \"private\"")
    if cfg.default_shm_size <= 0 or cfg.mtu < 0:
        raise InvalidArgument("default-shm-size must be positive and mtu not negative")
