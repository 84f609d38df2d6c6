"""A real `preroll serve` (the binary the Rust build made) with the demo camera, for the
integration's tests; and Home Assistant's test harness around them."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_socket

# Imported before the harness's hass fixture runs, so the loader finds it.
import custom_components.preroll  # noqa: F401

TOKEN = "ha-test-token-0123456789"
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Server:
    url: str
    token: str
    recordings: Path
    process: subprocess.Popen
    log: list[str]


def _binary() -> str:
    if os.environ.get("PREROLL_BIN"):
        return os.environ["PREROLL_BIN"]
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "preroll"
        if p.exists():
            return str(p)
    raise RuntimeError("no preroll binary: build it (cargo build) or set PREROLL_BIN")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def preroll_server() -> Iterator[Server]:
    # Set up inside the first test's setup, after the harness blocked sockets.
    pytest_socket.enable_socket()
    work = Path(tempfile.mkdtemp(prefix="preroll-ha-"))
    port = _free_port()
    config = work / "preroll.toml"
    config.write_text(
        f'[api]\nbind = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n\n'
        f'[storage]\nrecordings = "{work / "recordings"}"\n\n'
        '[[cameras]]\nname = "demo"\nsource = "demo"\nclip_duration = 2\nclip_lookback = 1\n'
    )
    process = subprocess.Popen(
        [_binary(), "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PREROLL_LOG": "info"},
    )
    log: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)

    threading.Thread(target=read, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            request = urllib.request.Request(f"{url}/api/cameras", headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=2) as resp:
                cameras = __import__("json").load(resp)
            if cameras and cameras[0]["connected"] and cameras[0]["ring_seconds"] >= 2:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("preroll serve did not come up:\n" + "".join(log))
        time.sleep(0.2)
    yield Server(url, TOKEN, work / "recordings", process, log)
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations):
    """The harness loads custom_components/ only when asked."""
    return


@pytest.fixture(autouse=True)
def loopback_sockets(socket_enabled):
    """The harness blocks sockets; these tests talk to a real server on loopback."""
    return
