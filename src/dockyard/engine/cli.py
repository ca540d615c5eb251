"""dockyardd: the engine daemon's entry point (flags, logging, pidfile, listeners, signals)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from aiohttp import web

from dockyard.engine.config import DaemonConfig, parse_args, reload
from dockyard.engine.listeners import Listener, open_listeners
from dockyard.errors import DockyardError

log = logging.getLogger("dockyard.engine")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
          "fatal": logging.CRITICAL}


class _DockerdFormat(logging.Formatter):
    """dockerd's log line: time="..." level=info msg="..." """

    def format(self, record: logging.LogRecord) -> str:
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower())
        msg = record.getMessage().replace('"', '\\"')
        line = f'time="{self.formatTime(record, "%Y-%m-%dT%H:%M:%S")}" level={level} msg="{msg}"'
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(config: DaemonConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_DockerdFormat())
    root = logging.getLogger("dockyard")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(config.effective_log_level, logging.INFO))
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


def write_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            old = int(f.read().strip() or 0)
        if old and old != os.getpid() and os.path.exists(f"/proc/{old}"):
            raise DockyardError(f"pid file found, ensure dockyardd is not running or delete {path}")
    except (FileNotFoundError, ValueError):
        pass
    os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)


def _log(level: str, message: str) -> None:
    log.log(LEVELS.get(level, logging.INFO), message)


async def serve(config: DaemonConfig) -> None:
    from dockyard.engine.daemon.daemon import Daemon
    from dockyard.engine.routers import all_routers
    from dockyard.engine.server.app import create_app

    write_pidfile(config.pidfile)
    # Listen first (bad TLS files or a busy socket fail before anything else); clients that connect
    # while containers are being restored wait in the backlog until the API is served.
    try:
        listeners: list[Listener] = open_listeners(config, log=_log)
    except BaseException:
        os.unlink(config.pidfile)
        raise
    daemon = Daemon(config)
    try:
        await daemon.start()
        app = create_app(daemon, all_routers())
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        for lst in listeners:
            await web.SockSite(runner, lst.sock, ssl_context=lst.ssl).start()
            log.info("API listen on %s", lst.addr)
        log.info("Daemon has completed initialization")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: _reload(daemon))
        await stop.wait()
        log.info("Processing signal 'terminated'")
        await runner.cleanup()
    finally:
        await daemon.shutdown()
        for lst in listeners:
            lst.close()
        try:
            os.unlink(config.pidfile)
        except OSError:
            pass
    log.info("Daemon shutdown complete")


def _reload(daemon: object) -> None:
    try:
        new = reload(daemon.config)  # type: ignore[attr-defined]
    except DockyardError as e:
        log.error("Error reconfiguring the daemon: %s", e)
        return
    daemon.config = new  # type: ignore[attr-defined]
    setup_logging(new)
    daemon.events.emit("daemon", "reload", daemon.id, {"name": os.uname().nodename})  # type: ignore[attr-defined]
    log.info("Reloaded configuration: %s", new.config_file)


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
    except DockyardError as e:
        print(e, file=sys.stderr)
        return 1
    setup_logging(config)
    if os.geteuid() != 0:
        print("dockyardd needs to be started with root privileges. To run dockyardd in rootless mode as an "
              "unprivileged user, see the documentation", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(config))
    except DockyardError as e:
        log.critical("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
