"""dockyard-registry's configuration: a YAML file in distribution's shape plus REGISTRY_* overrides.

Understood keys::

    version: 0.1
    log: {level: error|warn|info|debug}
    storage: {filesystem: {rootdirectory: PATH} | inmemory: {} | s3: {bucket, regionendpoint, ...},
              delete: {enabled: BOOL},
              maintenance: {uploadpurging: {enabled, age, interval, dryrun},
                            gc: {enabled, interval, graceperiod, dryrun}}}     (gc: Dockyard's online GC)
    http: {addr: "host:port" | ":port", host: URL, headers: {Name: [value]},
           tls: {certificate: PEM, key: PEM}}
    auth: {htpasswd: {realm, path}} | {token: {realm, service, issuer, rootcertbundle,
           builtin: {key, certificate, htpasswd, expiration, anonymouspull}}}  (registry/auth/settings.py)
    proxy: {remoteurl, username, password, ttl}          (pull-through cache of remoteurl)
    immutabletags: [{repository: GLOB, tags: GLOB}, ...]  (Dockyard's: tags that never move)

Keys distribution's stock config.yml carries that have no effect here yet (log.fields,
log.formatter, storage.cache, storage.maintenance.readonly, storage.redirect, http.secret, health) are
accepted and ignored, so that file runs unchanged; any other key is an error naming its path.
An environment variable ``REGISTRY_<PATH>`` (path parts upper-cased, joined with ``_``) overrides
the key at that path, e.g. ``REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from dockyard.errors import InvalidArgument
from dockyard.registry.auth import settings as auth_settings

DEFAULT_ROOT = "/var/lib/registry"
DEFAULT_ADDR = ":5000"
DRIVERS = ("filesystem", "inmemory", "s3")
# distribution's storage.s3 keys (values are parsed by dockyard.registry.storage.s3)
S3_KEYS = ("accesskey", "secretkey", "region", "regionendpoint", "forcepathstyle", "bucket", "rootdirectory",
           "secure", "skipverify", "v4auth", "chunksize", "encrypt", "keyid", "storageclass",
           "multipartcopychunksize", "multipartcopymaxconcurrency", "multipartcopythresholdsize",
           "loglevel", "useragent")
LOG_LEVELS = ("error", "warn", "info", "debug")
# The schema: a dict is a section, a type is a leaf, None is a section accepted and ignored.
_SCHEMA: dict[str, Any] = {
    "version": str,
    "log": {"level": str, "fields": None, "formatter": None, "accesslog": None},
    "storage": {"filesystem": {"rootdirectory": str}, "inmemory": None, "delete": {"enabled": bool},
                "s3": {key: str for key in S3_KEYS},
                "cache": None, "redirect": None,
                "maintenance": {"uploadpurging": {"enabled": bool, "age": str, "interval": str, "dryrun": bool},
                                "readonly": None,
                                "gc": {"enabled": bool, "interval": str, "graceperiod": str, "dryrun": bool}}},
    "http": {"addr": str, "host": str, "headers": None, "secret": None, "relativeurls": None,
             "tls": auth_settings.TLS_SCHEMA},
    "auth": auth_settings.SCHEMA,
    "proxy": {"remoteurl": str, "username": str, "password": str, "ttl": str},
    "immutabletags": list,
    "health": None,
}
_ENV_PREFIX = "REGISTRY_"
_ENV_NOT_KEYS = {"REGISTRY_CONFIGURATION_PATH"}


@dataclass
class RegistryConfig:
    """The settings dockyard-registry runs with."""

    version: str = "0.1"
    log_level: str = "info"
    storage: str = "filesystem"  # one of DRIVERS
    root_directory: str = DEFAULT_ROOT
    delete_enabled: bool = True
    host: str = ""  # listen host; "" = every address
    port: int = 5000
    public_url: str = ""  # http.host: the externally reachable URL (unused while Locations are relative)
    headers: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # the file it was read from
    auth: auth_settings.AuthSettings | None = None  # None: no authentication
    tls: auth_settings.TlsSettings | None = None  # None: plain HTTP
    s3: dict[str, Any] = field(default_factory=dict)  # storage.s3, raw (parsed by the s3 driver)
    maintenance: dict[str, Any] = field(default_factory=dict)  # storage.maintenance, raw
    proxy: dict[str, Any] | None = None  # proxy (pull-through cache), raw; None: not a cache
    immutable_tags: list[Any] = field(default_factory=list)  # immutabletags rules, raw


def load(path: str | None = None, environ: Mapping[str, str] | None = None) -> RegistryConfig:
    """Read ``path`` (or only defaults when None), apply REGISTRY_* overrides, validate."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_yaml(path)
    _apply_env(raw, env)
    _check_keys(raw, _SCHEMA, "")
    cfg = _build(raw)
    cfg.source = path
    return cfg


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise InvalidArgument(f"configuration file {path}: {e.strerror}", path=path) from None
    except yaml.YAMLError as e:
        raise InvalidArgument(f"configuration file {path}: invalid YAML: {e}", path=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument(f"configuration file {path}: expected a mapping at the top level", path=path)
    return data


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    """Set each REGISTRY_<PATH> variable's value at its path (unknown paths are errors)."""
    for var in sorted(env):
        if not var.startswith(_ENV_PREFIX) or var in _ENV_NOT_KEYS:
            continue
        keys = _env_path(var)
        section = raw
        for key in keys[:-1]:
            child = section.get(key)
            if not isinstance(child, dict):
                child = section[key] = {}
            section = child
        section[keys[-1]] = _env_value(env[var])


def _env_path(var: str) -> list[str]:
    """The schema path of REGISTRY_A_B_C, matched case-insensitively against the schema."""
    parts = var[len(_ENV_PREFIX):].lower().split("_")
    node: Any = _SCHEMA
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            raise InvalidArgument(f"environment variable {var}: no configuration key "
                                  f"{'.'.join(parts[:i + 1])!r}")
        node = node[part]
    if isinstance(node, dict):
        raise InvalidArgument(f"environment variable {var}: {'.'.join(parts)!r} is a section, not a value")
    return parts


def _env_value(value: str) -> Any:
    """An override's value: "true"/"false" are booleans, anything else stays text."""
    return {"true": True, "false": False}.get(value.strip().lower(), value)


def _check_keys(raw: Any, schema: dict[str, Any], prefix: str) -> None:
    if not isinstance(raw, dict):
        raise InvalidArgument(f"configuration: {prefix.rstrip('.') or 'top level'} must be a mapping")
    for key, value in raw.items():
        where = f"{prefix}{key}"
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise InvalidArgument(f"configuration: unknown key {where!r} (known here: {known})")
        sub = schema[key]
        if isinstance(sub, dict) and value is not None:
            _check_keys(value, sub, where + ".")


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _build(raw: dict[str, Any]) -> RegistryConfig:
    cfg = RegistryConfig()
    version = raw.get("version", cfg.version)
    if str(version) != "0.1":
        raise InvalidArgument(f"configuration: unsupported version {version!r} (expected 0.1)")
    level = str(_section(raw, "log").get("level", cfg.log_level)).lower()
    if level not in LOG_LEVELS:
        raise InvalidArgument(f"configuration: log.level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    cfg.log_level = level
    _build_storage(cfg, _section(raw, "storage"))
    _build_http(cfg, _section(raw, "http"))
    cfg.auth = auth_settings.parse_auth(raw.get("auth"))
    cfg.tls = auth_settings.parse_tls(_section(raw, "http").get("tls"))
    if raw.get("proxy") is not None:
        cfg.proxy = _section(raw, "proxy")
    rules = raw.get("immutabletags") or []
    if not isinstance(rules, list):
        raise InvalidArgument("configuration: immutabletags must be a list of {repository, tags} rules")
    cfg.immutable_tags = rules
    return cfg


def _build_storage(cfg: RegistryConfig, storage: dict[str, Any]) -> None:
    drivers = [d for d in DRIVERS if d in storage]
    if len(drivers) > 1:
        raise InvalidArgument("configuration: storage must name exactly one driver, got "
                              + " and ".join(drivers))
    cfg.storage = drivers[0] if drivers else "filesystem"
    if cfg.storage == "filesystem":
        root = _section(storage, "filesystem").get("rootdirectory", DEFAULT_ROOT)
        if not isinstance(root, str) or not root:
            raise InvalidArgument("configuration: storage.filesystem.rootdirectory must be a path")
        cfg.root_directory = root
    if cfg.storage == "s3":
        cfg.s3 = _section(storage, "s3")
    cfg.maintenance = _section(storage, "maintenance")
    enabled = _section(storage, "delete").get("enabled", cfg.delete_enabled)
    cfg.delete_enabled = _as_bool(enabled, "storage.delete.enabled")


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidArgument(f"configuration: {where} must be true or false, got {value!r}")


def _build_http(cfg: RegistryConfig, http: dict[str, Any]) -> None:
    cfg.host, cfg.port = parse_addr(str(http.get("addr", DEFAULT_ADDR)))
    cfg.public_url = str(http.get("host") or "")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise InvalidArgument("configuration: http.headers must be a mapping of header names to values")
    cfg.headers = {str(k): ", ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in headers.items()}


def parse_addr(addr: str) -> tuple[str, int]:
    """``host:port`` or ``:port`` (every address) -> (host, port); ``[v6]:port`` is allowed."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"configuration: http.addr {addr!r} must be host:port or :port")
    return host.strip("[]"), int(port)
