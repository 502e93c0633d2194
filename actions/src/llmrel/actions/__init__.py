"""llmrel's action layer: circuit breakers that apps honour, Grafana alert inputs, outgoing webhooks, canary gates.

Data flow, one direction:

    findings (analyzers) ─┐
    Grafana alerts ───────┼─> signals / inputs ─> BreakerController (leader) ─> BreakerMachine per scope
    manual overrides ─────┘                             │ transitions
                                   llm_breaker_events <─┤─> Board (GET /api/v1/breakers, long-poll) ─> app guards
                                                        └─> outgoing signed webhooks

    llm_calls by service.version ─> gate (GET /api/v1/gate) ─> Argo Rollouts / Flagger

Modules: `machine` (pure state machine), `breakers` (pure registry of machines), `board` (published
state), `store` and `lease` (ClickHouse edges), `controller` (the loop), `alerts` (Grafana webhook
input), `webhooks` (outgoing), `gate` + `gate_data` (canary verdicts), `api` (FastAPI routes), `cli`.
"""
