"""Starts the real sightline binary for the Python end-to-end tests."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

TOKEN = "py-test-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sightline:
    def __init__(self, data_dir: Path, config_text: str | None = None):
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        # A config file beside the data dir, passed as --config (flags still win).
        self.config_path = None
        if config_text is not None:
            self.config_path = data_dir.parent / "sightline.toml"
            self.config_path.parent.mkdir(parents=True, exist_ok=True)
            self.config_path.write_text(config_text)

    def start(self):
        binary = os.environ.get("SIGHTLINE_BIN")
        assert binary, "SIGHTLINE_BIN must point at the built sightline binary"
        config = ["--config", str(self.config_path)] if self.config_path else []
        self.proc = subprocess.Popen(
            [binary, "serve", *config, "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir),
             "--api-token", TOKEN, "--log-level", "warn"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, "sightline exited during start"
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError("sightline did not become healthy")

    def logs(self, **params):
        r = requests.get(self.url + "/api/v1/logs", params=params,
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["logs"]

    def get(self, path: str, **params) -> requests.Response:
        """GET a read API with the bearer token."""
        return requests.get(self.url + path, params=params,
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)

    def put(self, path: str, body) -> requests.Response:
        """PUT JSON to a read/write API with the bearer token."""
        return requests.put(self.url + path, json=body,
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def sightline(tmp_path):
    s = Sightline(tmp_path / "data").start()
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait()


def files_containing(root: Path, needle: bytes):
    """Files whose raw bytes contain `needle`, plus every stored row decoded by
    `sightline inspect` (the WAL and parts are compressed: raw bytes alone prove
    nothing)."""
    hits = [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
    out = subprocess.run([os.environ["SIGHTLINE_BIN"], "inspect", "--data-dir", str(root)],
                         check=True, capture_output=True).stdout
    assert out.count(b"\n") > 0, "nothing decoded: the search would prove nothing"
    hits += [f"decoded row: {line[:200]!r}" for line in out.splitlines() if needle in line]
    return hits
