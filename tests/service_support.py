"""Helpers for the service tests: configs with a [service] section, processes, their logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.engine_support import REPO, Setup, write_config

FAST_SERVICE = {
    "sync_interval_minutes": 0.05,  # every 3 s
    "retry_sweep_minutes": 60,
    "health_port": 0,
    "leader_poll_seconds": 0.5,
    "worker_idle_seconds": 0.3,
    "stop_timeout_seconds": 20,
    "json_logs": "true",
}


def service_config(
    tmp_path: Path,
    db_url: str,
    *,
    service: dict[str, Any] | None = None,
    extra_sections: str = "",
    **kwargs: Any,
) -> Setup:
    """``write_config`` plus a [service] section (fast intervals, ephemeral health port)."""
    setup = write_config(tmp_path, db_url, **kwargs)
    values = FAST_SERVICE | (service or {})
    lines = "\n".join(
        f"{k} = {json.dumps(v) if isinstance(v, str) and v not in ('true', 'false') else v}"
        for k, v in values.items()
    )
    text = setup.config_path.read_text()
    text = text.replace("[targets.erp]", f"[service]\n{lines}\n\n{extra_sections}\n[targets.erp]")
    setup.config_path.write_text(text)
    return setup


@dataclass
class ServiceProcess:
    """A `finsync serve` (or `worker`) subprocess whose JSON logs go to a file."""

    config: Path
    log_path: Path
    command: str = "serve"
    process: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)

    def start(self) -> ServiceProcess:
        """Start the process."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "finsync", "--config", str(self.config), self.command],
            cwd=REPO,
            stdout=self._log,
            stderr=self._log,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        return self

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other output is skipped)."""
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def text(self) -> str:
        """Everything the process wrote."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """Log lines with ``event == name``."""
        return [line for line in self.lines() if line.get("event") == name]

    def health_port(self, timeout: float = 60) -> int:
        """The port of /health, read from the log."""
        line = wait_for(lambda: self.events("http_started"), timeout, self)[0]
        return int(line["message"].rsplit(":", 1)[1].split("/")[0])

    def health(self) -> dict[str, Any]:
        """GET /health as JSON."""
        port = self.health_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL and reap."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.wait(30)

    def wait(self, timeout: float = 60) -> int:
        """Wait for exit; returns the code."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def stop_quietly(self) -> None:
        """Kill if still running (test clean-up)."""
        if self.process is not None and self.process.poll() is None:
            self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_for(condition: Any, timeout: float, process: ServiceProcess | None = None) -> Any:
    """Poll ``condition()`` until it is truthy; fail with the process log after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        proc = process.process if process is not None else None
        if proc is not None and proc.poll() is not None and not condition():
            assert process is not None
            raise AssertionError(f"process exited early:\n{process.text()[-4000:]}")
        if time.monotonic() > deadline:
            detail = process.text()[-4000:] if process is not None else ""
            raise AssertionError(f"condition not met within {timeout}s\n{detail}")
        time.sleep(0.1)
