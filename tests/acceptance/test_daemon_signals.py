"""dockyardd's signals: SIGHUP reloads daemon.json (a `daemon reload` event), SIGTERM leaves
running containers running (live-restore) and a restarted daemon picks them up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.support.dockyardd import DockyardDaemon

pytestmark = [pytest.mark.privileged, pytest.mark.acceptance]


class ConfigDaemon(DockyardDaemon):
    def argv(self) -> list[str]:
        return [*super().argv(), "--config-file", self.path("daemon.json")]


def test_sighup_reloads_config_and_sigterm_keeps_containers():
    daemon = ConfigDaemon()
    with open(daemon.path("daemon.json"), "w") as f:
        json.dump({"labels": ["before=1"]}, f)
    daemon.start()
    try:
        daemon.load_busybox()
        since = str(int(time.time()) - 1)
        with open(daemon.path("daemon.json"), "w") as f:
            json.dump({"labels": ["after=2"]}, f)
        assert daemon.pid is not None
        os.kill(daemon.pid, signal.SIGHUP)
        events = subprocess.run(daemon.cli_argv("events", "--since", since, "--until", str(int(time.time()) + 2),
                                                "--filter", "type=daemon", "--format", "{{.Action}}"),
                                env=daemon.cli_env(), capture_output=True, text=True, timeout=30)
        assert "reload" in events.stdout.split(), events
        labels = daemon.docker("info", "--format", "{{json .Labels}}")
        assert labels.rc == 0 and "after=2" in labels.stdout, labels

        r = daemon.docker("run", "-d", "--name", "survivor", "busybox", "sleep", "300")
        assert r.rc == 0, r
        daemon.restart()  # SIGTERM, then start on the same roots
        state = daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "survivor")
        assert state.rc == 0 and state.stdout.split()[0] == "running", state
        out = daemon.docker("exec", "survivor", "echo", "still here")
        assert out.rc == 0 and out.stdout == "still here\n", out
        assert daemon.docker("rm", "-f", "survivor").rc == 0
    finally:
        daemon.stop()
