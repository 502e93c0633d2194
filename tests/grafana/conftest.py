"""Known traffic for the Grafana query tests, written into the real embedded store.

One hour starting at `T0`: 200 LLM calls (checkout 120, search 80), 10% of checkout calls are
errors and violate the `latency_budget` invariant, 5 calls are to an unpriced model, one drift
finding on search. Every number the tests assert follows from the constants below.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from llmrel.actions.machine import State, Transition
from llmrel.actions.store import write_transitions
from llmrel.config import load_settings
from llmrel.findings import FINDING_COLUMNS, Finding, finding_id
from llmrel.grafana.provisioning import Bundle, build_bundle
from llmrel.grafana.query import DATASOURCE_TYPE
from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS, LlmCall, SpanRecord
from llmrel.store import connect, migrate

T0_S = int(datetime(2026, 11, 26, 9, 0, tzinfo=UTC).timestamp())
HOUR_S = 3600
FROM_MS, TO_MS = T0_S * 1000, (T0_S + HOUR_S) * 1000
CALL_COST_USD = 0.01
CHECKOUT_CALLS, CHECKOUT_ERRORS, SEARCH_CALLS, UNPRICED_CALLS = 120, 12, 80, 5
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def make_call(index: int, **fields: object) -> LlmCall:
    """A priced, successful chat call; `fields` override any column."""
    base = dict(
        timestamp_ns=(T0_S + 10 + index * 15) * 1_000_000_000, trace_id=f"{index:032x}", span_id=f"{index:016x}",
        parent_span_id="", span_name="chat gpt-4o", service_name="checkout", service_version="",
        environment="prod", provider="openai", operation="chat", model="gpt-4o", request_model="gpt-4o",
        response_model="gpt-4o",
        input_tokens=100, output_tokens=50, cached_input_tokens=None, cache_creation_input_tokens=None,
        reasoning_tokens=None, cost_usd=CALL_COST_USD, cost_status="priced", duration_ns=200_000_000,
        time_to_first_token_ns=None, is_streaming=False, finish_reason="stop", status_code="Unset",
        status_message="", error_type="", temperature=None, top_p=None, max_tokens=None, tool_calls=0,
        tool_name="", response_id="", server_address="api.openai.com", conversation_id="", session_id="",
        user_id="", feature="cart", tenant="acme", input_text="", output_text="", convention="genai-semconv",
        attributes={},
    )
    base.update(fields)
    return LlmCall(**base)  # type: ignore[arg-type]


def seeded_calls() -> list[LlmCall]:
    """Calls every 15 s, services interleaved (3 checkout : 2 search), so any window sees both.

    Every 10th checkout call fails after 30 s (the rest take 200 ms); every 16th search call is to
    a model without a price. Over the hour: 12 of 120 checkout calls fail, 5 of 80 search calls are unpriced.
    """
    calls = []
    checkout = search = 0
    for i in range(CHECKOUT_CALLS + SEARCH_CALLS):
        if i % 5 < 3:
            failed = checkout % 10 == 0
            calls.append(make_call(i, status_code="Error" if failed else "Unset",
                                   error_type="timeout" if failed else "",
                                   duration_ns=30_000_000_000 if failed else 200_000_000,
                                   feature="cart" if checkout % 2 else "search-box",
                                   tenant="acme" if checkout % 3 else "globex",
                                   environment="prod" if checkout % 4 else "staging"))
            checkout += 1
        else:
            unpriced = search % 16 == 0
            calls.append(make_call(i, service_name="search", model="mystery-1" if unpriced else "gpt-4o-mini",
                                   cost_usd=None if unpriced else CALL_COST_USD,
                                   cost_status="unpriced" if unpriced else "priced", is_streaming=True,
                                   time_to_first_token_ns=50_000_000, feature="suggest", tenant="acme"))
            search += 1
    return calls


LINKED_TRACE_ID = "0af7651916cd43dd8448eb211c80319d"


def trace_spans() -> list[SpanRecord]:
    """A two-span trace: an HTTP server span and its LLM client child (with an event and a link)."""
    start = (T0_S + 100) * 1_000_000_000
    common = dict(trace_id=TRACE_ID, trace_state="", span_kind="Client", service_name="checkout",
                  resource_attributes={"service.name": "checkout"}, scope_name="test", scope_version="1",
                  status_message="", events_timestamp=[], events_name=[], events_attributes=[], links_trace_id=[],
                  links_span_id=[], links_trace_state=[], links_attributes=[])
    return [
        SpanRecord(timestamp_ns=start, span_id="b7ad6b7169203331", parent_span_id="", span_name="POST /cart",
                   span_attributes={"http.route": "/cart"}, duration_ns=900_000_000, status_code="Unset",
                   **{**common, "span_kind": "Server"}),  # type: ignore[arg-type]
        SpanRecord(timestamp_ns=start + 1_000_000, span_id="00f067aa0ba902b7", parent_span_id="b7ad6b7169203331",
                   span_name="chat gpt-4o", span_attributes={"gen_ai.request.model": "gpt-4o"},
                   duration_ns=800_000_000, status_code="Error",
                   **{**common, "events_timestamp": [start + 2_000_000], "events_name": ["exception"],
                      "events_attributes": [{"exception.type": "RateLimitError"}],
                      "links_trace_id": [LINKED_TRACE_ID], "links_span_id": ["1111111111111111"],
                      "links_trace_state": [""], "links_attributes": [{"link.kind": "retry-of"}]}),  # type: ignore[arg-type]
    ]


VIOLATION_RULE, VIOLATION_IMPACT_USD = "latency_budget", 0.5
DRIFT_AT_S, DRIFT_BEFORE_MS, DRIFT_AFTER_MS = T0_S + 1800, 200.0, 400.0


def seeded_findings() -> list[Finding]:
    """`latency_budget` broken by each failing checkout call; one latency drift on search/gpt-4o-mini."""
    detected_ns = (T0_S + HOUR_S) * 1_000_000_000
    findings = [
        Finding.for_call(kind="invariant", rule_id=VIOLATION_RULE, severity="error", call=call, metric="latency_ms",
                         observed=call.duration_ns / 1e6, expected=10_000.0, message="latency over budget",
                         impact_usd=VIOLATION_IMPACT_USD, detected_at_ns=detected_ns)
        for call in seeded_calls() if call.status_code == "Error"
    ]
    findings.append(Finding(
        finding_id=finding_id("drift", "adwin", "search", "gpt-4o-mini", "chat", "latency_ms", DRIFT_AT_S),
        kind="drift", rule_id="adwin", severity="warning", service_name="search", model="gpt-4o-mini",
        operation="chat", feature="", tenant="", metric="latency_ms", trace_id="", span_id="",
        observed=DRIFT_AFTER_MS, expected=DRIFT_BEFORE_MS, message="latency_ms moved from 200 to 400",
        calls=40, cost_usd=0.4, impact_usd=0.0, confidence=0.99, event_time_ns=DRIFT_AT_S * 1_000_000_000,
        detected_at_ns=detected_ns))
    return findings


def seeded_breaker_steps() -> list[Transition]:
    """checkout/chat opens on findings, probes and closes; search is pinned open by hand."""
    s = 1_000_000_000
    at = [(T0_S + offset) * s for offset in (1200, 1800, 2400, 3000)]
    common = {"scope": "checkout/chat", "reason": "r"}
    return [
        Transition(**common, seq=1, at_ns=at[0], from_state=State.CLOSED, to_state=State.OPEN, cause="findings",
                   finding_ids=("a", "b", "c"), opened_by="findings", since_ns=at[0]),
        Transition(**common, seq=2, at_ns=at[1], from_state=State.OPEN, to_state=State.HALF_OPEN, cause="min_open",
                   opened_by="findings", since_ns=at[1]),
        Transition(**common, seq=3, at_ns=at[2], from_state=State.HALF_OPEN, to_state=State.CLOSED,
                   cause="probe_healthy", since_ns=at[2]),
        Transition(scope="search", seq=1, at_ns=at[3], from_state=State.CLOSED, to_state=State.OPEN, cause="manual",
                   reason="bad prompt release", actor="ana", override="open", opened_by="manual", since_ns=at[3]),
    ]


@dataclass(frozen=True)
class StoredQuery:
    """One SQL query as stored in a dashboard: where it lives and how Grafana reads its result."""

    dashboard: str
    title: str
    kind: str  # panel type, or "variable" / "annotation"
    sql: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.kind}:{self.title}"


def dashboard_queries(bundle: Bundle) -> list[StoredQuery]:
    """Every ClickHouse SQL in the dashboards: panel targets, variable queries, annotation targets."""
    found = []
    for uid, board in bundle.dashboards.items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(StoredQuery(uid, panel["title"], panel["type"], target["rawSql"]))
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                found.append(StoredQuery(uid, variable["name"], "variable", variable["query"]))
        for annotation in board["annotations"].get("list", []):
            if annotation["datasource"].get("type") == DATASOURCE_TYPE:
                found.append(StoredQuery(uid, annotation["name"], "annotation", annotation["target"]["rawSql"]))
    return found


NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*|Bool)\)?$")
TEXT = re.compile(r"^(Nullable\()?(LowCardinality\()?String\)?\)?$")
TIME = re.compile(r"^(Nullable\()?DateTime(64\(\d+\))?\)?$")


def result_columns(store: Client, sql: str) -> list[tuple[str, str]]:
    """(name, kind) of each result column, kind 'number', 'text', 'time' or the raw type.

    Read with `DESCRIBE TABLE (query)`, so an empty result still has its columns.
    """
    columns = []
    for name, type_name, *_ in store.query(f"DESCRIBE TABLE ({sql})").result_rows:
        kind = ("number" if NUMERIC.match(type_name) else "text" if TEXT.match(type_name)
                else "time" if TIME.match(type_name) else type_name)
        columns.append((name, kind))
    return columns


def new_store(chdb_dir: Path) -> Client:
    """A migrated client on a fresh database of the session's embedded store."""
    settings = load_settings(clickhouse_url=f"chdb://{chdb_dir}?database=g_{uuid.uuid4().hex[:12]}",
                             grpc_endpoint="127.0.0.1:0", http_endpoint="127.0.0.1:0", log_format="console")
    client = connect(settings)
    migrate(client, settings)
    return client


@pytest.fixture(scope="module")
def traffic_store(chdb_dir: Path) -> Iterator[Client]:
    """One seeded store per module (seeding is read-only for the tests that share it)."""
    client = new_store(chdb_dir)
    client.insert("llm_calls", seeded_calls(), column_names=list(LLM_CALL_COLUMNS))
    client.insert("otel_traces", trace_spans(), column_names=list(SPAN_COLUMNS))
    findings = seeded_findings()
    client.insert("llm_findings", [f.row() for f in findings], column_names=list(FINDING_COLUMNS))
    write_transitions(client, seeded_breaker_steps(), term=1)
    yield client
    client.command(f"DROP DATABASE IF EXISTS {client.database}")
    client.close()


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return build_bundle()
