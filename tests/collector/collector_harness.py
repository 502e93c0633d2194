"""Real processes for the collector tests: the built collector, `llmrel serve`, and a store probe.

Every process listens on 127.0.0.1 only, on ports picked free, and writes its log to a file
under the test's tmp dir (quoted in assertion messages). An embedded store belongs to the one
process that opened it, so `llmrel serve` gets a store path of its own, and the tests read it
in a short-lived probe process after `serve` exited.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "collector-config"
LLMREL_BIN = Path(sys.executable).with_name("llmrel")
AUTH_TOKEN = "collector-test-token"
WRITER_PASSWORD = "collector-writer-password"
_OWN_ENV_PREFIXES = ("LLMREL_", "OTELCOL_", "TAIL_SAMPLING_", "CLICKHOUSE_", "OTEL_")
_METRIC_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

_PROBE = """
import json, sys
from llmrel.config import load_settings
from llmrel.store import connect
client = connect(load_settings(clickhouse_url=sys.argv[1]))
request = json.loads(sys.stdin.read())
for table, columns, rows in request["inserts"]:
    client.insert(table, rows, column_names=columns)
print(json.dumps({name: client.query(sql).result_rows for name, sql in request["queries"].items()}, default=str))
"""


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], what: str | Callable[[], str], timeout_s: float = 60.0,
               log: Path | None = None) -> None:
    """Poll `condition` every 100 ms until it holds; fail with `what` (and the log tail) after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    description = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {description}\n{tail}")


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without the settings the products read, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_ENV_PREFIXES)}
    env.update(values)
    return env


def probe_store(store_url: str, *, queries: dict[str, str],
                inserts: list[tuple[str, list[str], list[Any]]] = ()) -> dict[str, list[list[object]]]:
    """In a short-lived process that owns the embedded store: run `inserts`, then `queries`.

    Args:
        store_url: `chdb:///path` of a store no running process holds.
        queries: name -> SELECT; the result maps each name to its rows.
        inserts: (table, column names, rows) sent as clickhouse-connect inserts, before the queries.
    """
    request = json.dumps({"inserts": list(inserts), "queries": queries})
    done = subprocess.run([sys.executable, "-c", _PROBE, store_url], input=request, env=clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_llmrel(*args: str, timeout_s: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run an `llmrel` command to completion with a clean environment plus `env`; fail on a non-zero exit."""
    done = subprocess.run([str(LLMREL_BIN), *args], env=clean_env(LLMREL_LOG_FORMAT="console", **env),
                          capture_output=True, text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, f"llmrel {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done


class _Process:
    """A subprocess with its output in a log file; `stop()` sends SIGTERM and waits."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str], env: Mapping[str, str]) -> None:
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> None:
        if not self.running:
            return
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise AssertionError(f"{self.log_path.name}: did not stop within {timeout_s} s") from None


class LlmrelServer(_Process):
    """`llmrel serve` on its own embedded store; restartable on the same ports and store."""

    def __init__(self, work_dir: Path, auth_token: str) -> None:
        super().__init__(work_dir / "llmrel-serve.log")
        self.store_url = f"chdb://{work_dir / 'llmrel-store'}"
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.clickhouse_http_port = free_port()
        self.auth_token = auth_token

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> LlmrelServer:
        env = clean_env(LLMREL_CLICKHOUSE_URL=self.store_url, LLMREL_GRPC_ENDPOINT=self.grpc_endpoint,
                        LLMREL_HTTP_ENDPOINT=f"127.0.0.1:{self.http_port}", LLMREL_AUTH_TOKEN=self.auth_token,
                        LLMREL_CLICKHOUSE_HTTP_ENDPOINT=f"127.0.0.1:{self.clickhouse_http_port}",
                        LLMREL_WRITER_PASSWORD=WRITER_PASSWORD, LLMREL_LOG_FORMAT="console")
        self._spawn([str(LLMREL_BIN), "serve"], env)
        wait_until(self._ready, "llmrel serve to be ready", log=self.log_path)
        return self

    def _ready(self) -> bool:
        if not self.running:
            raise AssertionError(f"llmrel serve exited:\n{self.log()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def query(self, queries: dict[str, str]) -> dict[str, list[list[object]]]:
        """Run SELECTs on the store (after `stop()`: the store is free again) in a probe process."""
        assert not self.running, "the store belongs to the running llmrel serve; stop it first"
        return probe_store(self.store_url, queries=queries)


class Collector(_Process):
    """The built collector on one of the shipped configs, with its ports picked free.

    The config's `${env:...}` placeholders are filled from `env`; `overrides` are extra
    `--config=yaml:` fragments merged over the file (e.g. shorter retry intervals).
    """

    def __init__(self, binary: Path, config: str, work_dir: Path, env: Mapping[str, str],
                 overrides: tuple[str, ...] = ()) -> None:
        super().__init__(work_dir / f"otelcol-{Path(config).stem}.log")
        self.binary = binary
        self.config = CONFIG_DIR / config
        self.grpc_port, self.health_port, self.metrics_port = free_port(), free_port(), free_port()
        self.env = clean_env(OTELCOL_GRPC_ENDPOINT=f"127.0.0.1:{self.grpc_port}",
                             OTELCOL_HTTP_ENDPOINT=f"127.0.0.1:{free_port()}",
                             OTELCOL_HEALTH_ENDPOINT=f"127.0.0.1:{self.health_port}",
                             OTELCOL_METRICS_HOST="127.0.0.1", OTELCOL_METRICS_PORT=str(self.metrics_port),
                             **env)
        self.overrides = overrides

    def start(self) -> Collector:
        argv = [str(self.binary), f"--config=file:{self.config}", *(f"--config=yaml:{o}" for o in self.overrides)]
        self._spawn(argv, self.env)
        wait_until(self._healthy, f"the collector on {self.config.name} to be healthy", log=self.log_path)
        return self

    def _healthy(self) -> bool:
        if not self.running:
            raise AssertionError(f"collector exited:\n{self.log()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.health_port}/", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the collector's own metric `name` (with or without `_total`) over matching series."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            match = _METRIC_LINE.match(line)
            if not match or match["name"] not in (name, f"{name}_total"):
                continue
            series = dict(_LABEL.findall(match["labels"] or ""))
            if all(series.get(k) == v for k, v in labels.items()):
                total += float(match["value"])
        return total

    def wait_metric(self, name: str, expected: float, timeout_s: float = 60.0, **labels: str) -> None:
        """Wait until `metric(name, **labels)` equals `expected`."""
        wait_until(lambda: self.metric(name, **labels) == expected,
                   lambda: f"{name}{labels} == {expected} (now {self.metric(name, **labels)})", timeout_s,
                   self.log_path)
