"""Every command of the README's "Using it" section works as printed after the demo.

The test runs ``finsync demo`` as ``make demo`` does (on free ports, since other test runs may
hold the README's 8088, 8766, 8000 and 8080), then each line of the section's code block in the
demo's folder with the same port numbers swapped for the free ones. Commands that keep running
(the sandboxes, ``serve``, ``console``) are started, awaited until they answer, stopped with
Ctrl-C (SIGINT) and must exit 0 too; the others must exit 0 on their own.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
FINSYNC = Path(sys.executable).with_name("finsync")
README_PORTS = {"netsuite": 8088, "avatax": 8766, "console": 8000, "service": 8080}
#: Long-running commands answer within this; it bounds waiting, it is not asserted on.
READY_WITHIN_SECONDS = 60


def readme_commands() -> list[str]:
    """The command lines of the README's "Using it" code block, comments left out."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command.startswith("finsync"):
            commands.append(command)
    return commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(ready, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"{what} ended with {process.returncode} before it answered")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{what} did not answer within {READY_WITHIN_SECONDS} s")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return process.returncode, err.decode()


def test_readme_commands_work_after_the_demo(tmp_path):
    ports = {name: free_port() for name in README_PORTS}
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSYNC_")}
    env["COLUMNS"] = "160"
    demo_dir = tmp_path / ".finsync" / "demo"
    demo = subprocess.run(
        [
            str(FINSYNC),
            "demo",
            "--dir",
            str(demo_dir),
            "--netsuite-port",
            str(ports["netsuite"]),
            "--avatax-port",
            str(ports["avatax"]),
            "--service-port",
            str(ports["service"]),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr.decode()[-2000:]
    # The demo tells how to start its sandboxes again, on the ports its config names.
    assert f"sandbox netsuite --port {ports['netsuite']}" in demo.stdout.decode()

    commands = readme_commands()
    assert len(commands) >= 14, commands
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for line in commands:
            background = line.endswith("&")
            for name, port in README_PORTS.items():
                line = line.replace(f"--port {port}", f"--port {ports[name]}")
            argv = [str(FINSYNC), *shlex.split(line.rstrip("&").strip())[1:]]
            words = argv[1:]
            if background or "serve" in words or "console" in words:
                process = subprocess.Popen(
                    argv, cwd=demo_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
                if "serve" in words:
                    port = ports["service"]
                    wait_until(partial(health_ok, port), process, line)
                else:
                    port = int(argv[argv.index("--port") + 1])
                    wait_until(partial(answers, port), process, line)
                if background:
                    running.append((line, process))
                    continue
                code, err = stop(process)
                assert code == 0, f"{line}: exit {code}: {err[-2000:]}"
                continue
            done = subprocess.run(argv, cwd=demo_dir, env=env, capture_output=True, check=False)
            assert done.returncode == 0, (
                f"{line}: exit {done.returncode}: {done.stderr.decode()[-2000:]}"
            )
            if words[:2] == ["sync", "--dry-run"]:
                assert "Would be sent" in done.stdout.decode()
            if words[:1] == ["resync"] and "INV-00000048" in words:
                assert "INV-00000048 matched invoice INV-00000048 in netsuite" in (
                    done.stdout.decode()
                )
    finally:
        for line, process in running:
            code, err = stop(process)
            assert code == 0, f"{line}: exit {code}: {err[-2000:]}"
    assert (demo_dir / "billing-trial.db").exists()


def health_ok(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
