"""A real `llmrel serve` subprocess on its own embedded store, and read-back of its tables."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .helpers import clean_env

LLMREL = Path(sys.executable).with_name("llmrel")
_LISTENING = re.compile(r"OTLP/gRPC :(\d+), OTLP/HTTP \+ API :(\d+)")
_QUERY = """
import json, sys
from llmrel.config import load_settings
from llmrel.store import connect
client = connect(load_settings(clickhouse_url=sys.argv[1]))
print(json.dumps(client.query(sys.argv[2]).result_rows, default=str))
"""


@dataclass
class Serve:
    url: str
    process: subprocess.Popen[str]
    grpc_port: int = 0
    http_port: int = 0
    log: list[str] = field(default_factory=list)


@contextmanager
def llmrel_serve(store_dir: Path, timeout_s: float = 60, env: dict[str, str] | None = None) -> Iterator[Serve]:
    """Start `llmrel serve` on free loopback ports (plus `env` settings); stop it with SIGTERM on exit."""
    url = f"chdb://{store_dir}?database=e2e"
    process = subprocess.Popen(
        [str(LLMREL), "serve", "--clickhouse-url", url, "--grpc-endpoint", "127.0.0.1:0",
         "--http-endpoint", "127.0.0.1:0", "--log-format", "console"],
        env=clean_env({"LLMREL_CLICKHOUSE_HTTP_ENDPOINT": "127.0.0.1:0", **(env or {})}),
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    serve = Serve(url, process)
    ready = threading.Event()

    def drain() -> None:
        for line in process.stderr:
            serve.log.append(line)
            match = _LISTENING.search(line)
            if match:
                serve.grpc_port, serve.http_port = int(match.group(1)), int(match.group(2))
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout_s
        while not ready.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("llmrel serve did not start:\n" + "".join(serve.log))
        yield serve
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query_store(url: str, sql: str) -> list[list[Any]]:
    """Rows of `sql` on a stopped server's embedded store (read in a fresh process: one chDB path each)."""
    done = subprocess.run([sys.executable, "-c", _QUERY, url, sql], env=clean_env({}), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
