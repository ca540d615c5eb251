"""dockyard-registry: ``serve [CONFIG]`` runs the registry until SIGTERM/SIGINT; ``garbage-collect
[--dry-run] [--delete-untagged] [--grace D] [CONFIG]`` deletes unreferenced blobs (online); ``--version``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys

from aiohttp import web

import dockyard
from dockyard.errors import DockyardError, InvalidArgument
from dockyard.registry.config import RegistryConfig, load
from dockyard.registry.server import create_app, runner_options
from dockyard.registry.storage.driver import StorageDriver

log = logging.getLogger("dockyard.registry")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


class _LogfmtFormatter(logging.Formatter):
    """distribution's (logrus) text line: time="..." level=info msg="..." """

    def format(self, record: logging.LogRecord) -> str:
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower())
        msg = record.getMessage().replace("\\", "\\\\").replace('"', '\\"')
        line = f'time="{self.formatTime(record, "%Y-%m-%dT%H:%M:%S")}" level={level} msg="{msg}"'
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str) -> None:
    """Log lines to stderr at ``level`` (the config's log.level)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogfmtFormatter())
    root = logging.getLogger("dockyard")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


def make_driver(config: RegistryConfig) -> StorageDriver:
    """The storage driver the config names."""
    if config.storage == "inmemory":
        from dockyard.registry.storage.inmemory import InMemoryDriver

        return InMemoryDriver()
    if config.storage == "s3":
        from dockyard.registry.storage.s3 import S3Driver

        return S3Driver.from_config(config.s3)
    from dockyard.registry.storage.filesystem import FilesystemDriver

    os.makedirs(config.root_directory, exist_ok=True)
    return FilesystemDriver(config.root_directory)


def _storage_where(config: RegistryConfig) -> str:
    if config.storage == "filesystem":
        return f" at {config.root_directory}"
    if config.storage == "s3":
        return f" bucket {config.s3.get('bucket')}"
    return ""


def make_ssl_context(config: RegistryConfig) -> ssl.SSLContext | None:
    """The server's TLS context when ``http.tls`` is configured (errors name the files)."""
    if config.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls.certificate, config.tls.key)
    except (OSError, ssl.SSLError) as e:
        raise InvalidArgument(f"http.tls: cannot load {config.tls.certificate} / {config.tls.key}: {e}") from None
    return context


async def serve(config: RegistryConfig, ready: asyncio.Event | None = None) -> None:
    """Serve the registry on config's address until SIGTERM or SIGINT, then stop cleanly."""
    from dockyard.registry.auth import build as build_auth
    from dockyard.registry.store.immutable import parse_rules
    from dockyard.registry.store.maintenance import Maintenance, parse_maintenance
    from dockyard.registry.store.registry import Registry

    immutable = parse_rules(config.immutable_tags)  # configuration errors first: exit 1
    settings = parse_maintenance(config.maintenance)
    driver = make_driver(config)
    registry: Registry
    if config.proxy is not None:
        from dockyard.registry.proxy import ProxyRegistry, parse_settings

        proxy = ProxyRegistry(driver, parse_settings(config.proxy), delete_enabled=config.delete_enabled,
                              immutable=immutable)
        registry = proxy
    else:
        registry = Registry(driver, delete_enabled=config.delete_enabled, immutable=immutable)
    maintenance = Maintenance(registry, settings)
    auth = build_auth(config.auth) if config.auth is not None else None
    ssl_context = make_ssl_context(config)
    runner = web.AppRunner(create_app(registry, extra_headers=config.headers, auth=auth), handle_signals=False,
                           shutdown_timeout=2.0, **runner_options())
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, config.host or None, config.port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
        log.info("listening on %s:%d (%s), storage %s%s, auth %s", config.host or "[::]", config.port,
                 "https" if ssl_context else "http", config.storage,
                 _storage_where(config),
                 type(config.auth).__name__ if config.auth else "none")
        if config.proxy is not None:
            log.info("pull-through cache of %s", config.proxy.get("remoteurl"))
        maintenance.start()
        if config.proxy is not None:
            from dockyard.registry.proxy.fetch import purge_incoming

            await purge_incoming(driver)
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await maintenance.stop()
        await runner.cleanup()
        if config.proxy is not None:
            await proxy.close()
        driver.close()
    log.info("stopped")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard-registry",
                                description="An OCI distribution (Docker registry v2) server.")
    p.add_argument("--version", "-v", action="version", version=f"dockyard-registry {dockyard.__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the registry API")
    s.add_argument("config", nargs="?", help="YAML configuration file (default: REGISTRY_CONFIGURATION_PATH, "
                                             "else built-in defaults)")
    g = sub.add_parser("garbage-collect", help="delete blobs no manifest references (safe while serving)")
    g.add_argument("--dry-run", "-d", action="store_true", help="only print what would be deleted")
    g.add_argument("--delete-untagged", "-m", action="store_true", help="also delete manifests no tag reaches")
    g.add_argument("--grace", help="override storage.maintenance.gc.graceperiod (e.g. 0s)")
    g.add_argument("config", nargs="?", help="YAML configuration file (as for serve)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the dockyard-registry console script."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    path = args.config or os.environ.get("REGISTRY_CONFIGURATION_PATH") or None
    try:
        config = load(path)
    except DockyardError as e:
        print(f"dockyard-registry: {e}", file=sys.stderr)
        return 1
    setup_logging(config.log_level)
    if args.command == "garbage-collect":
        from dockyard.registry.store.maintenance import run_gc_command

        try:
            return run_gc_command(config, args)
        except DockyardError as e:
            print(f"dockyard-registry: {e}", file=sys.stderr)
            return 1
    try:
        asyncio.run(serve(config))
    except (DockyardError, OSError) as e:
        log.critical("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
