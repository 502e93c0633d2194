"""The CLI while `llmrel serve` owns the embedded store: reads go through its API, writers through its
ClickHouse HTTP interface (a clear error when that is off)."""

from __future__ import annotations

import json
import re
import subprocess
import time

from tests.instrumentation.helpers import clean_env
from tests.instrumentation.serve import LLMREL, llmrel_serve
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "400", **env}  # rich wraps at the terminal width; keep messages on one line
    return subprocess.run([str(LLMREL), *args], env=clean_env(env), capture_output=True, text=True, timeout=120)


def test_report_and_findings_use_the_running_server(tmp_path):
    with llmrel_serve(tmp_path / "store") as serve:
        http_port = int(re.search(r"OTLP/HTTP \+ API :(\d+)", "".join(serve.log)).group(1))
        now = time.time_ns()
        spans = [chat_span(1), chat_span(2, error="RateLimitError")]
        for span in spans:
            span.start_time_unix_nano, span.end_time_unix_nano = now, now + 1_000_000
        export_raw(serve.grpc_port, request(spans).SerializeToString())
        env = {"LLMREL_CLICKHOUSE_URL": serve.url, "LLMREL_HTTP_ENDPOINT": f"127.0.0.1:{http_port}"}

        report = cli("report", "--since", "1h", "--json", env=env)
        assert report.returncode == 0, report.stderr
        totals = json.loads(report.stdout)["totals"]
        assert (totals["calls"], totals["errors"]) == (2, 1)

        deadline = time.monotonic() + 30  # analysis runs just after the commit
        while True:
            found = cli("findings", "--since", "1h", "--json", "--kind", "invariant", env=env)
            assert found.returncode == 0, found.stderr
            rows = json.loads(found.stdout)
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert {r["service"] for r in rows} == {"support-bot"}
        assert any(r["severity"] in ("error", "critical", "warning") for r in rows)

        for command in (["migrate"], ["reprice", "--since", "1h"]):  # writers go through the ClickHouse interface
            done = cli(*command, env=env)
            assert done.returncode == 0, done.stderr
            assert "Code: 76" not in done.stderr + done.stdout  # the engine's own lock message stays out


def test_without_the_clickhouse_interface_writers_get_a_clear_error(tmp_path):
    with llmrel_serve(tmp_path / "store", env={"LLMREL_CLICKHOUSE_HTTP_ENDPOINT": ""}) as serve:
        done = cli("migrate", env={"LLMREL_CLICKHOUSE_URL": serve.url})
        assert done.returncode == 1
        assert "open in another process" in " ".join(done.stderr.split())
        assert "Code: 76" not in done.stderr + done.stdout


def test_serve_refuses_invalid_configuration_listing_every_problem(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: x\n    kind: nope\n")
    done = cli("serve", "--clickhouse-url", f"chdb://{tmp_path / 'store'}", "--grpc-endpoint", "127.0.0.1:0",
               "--http-endpoint", "127.0.0.1:0", env={"LLMREL_RULES_FILE": str(rules)})
    assert done.returncode == 2
    assert f"{rules}:3: rule 'x': kind must be one of" in " ".join(done.stderr.split())
    bad = cli("serve", "--grpc-endpoint", "nowhere", env={"LLMREL_MAX_RECV_MIB": "lots"})
    assert bad.returncode == 2
    assert "grpc_endpoint" in bad.stderr and "max_recv_mib" in bad.stderr
