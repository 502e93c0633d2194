"""`action:` of a rule or drift metric: which circuit breaker its findings count toward.

```yaml
- id: support-bot-json
  kind: json_valid
  scope: {service: support-bot, operation: chat}
  action: {breaker: support-bot/chat, trip_after: 5, within: 2m}
drift:
  actions:
    error_rate: {breaker: "{service}/{operation}", trip_after: 1, within: 10m}
```

The analyzers only carry the declaration: each finding of such a rule gets the action with its
scope filled in (`Finding.action`), stored with the finding as `action.*` attributes. What a
breaker does with it belongs to the breaker controller (`llmrel.actions`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmrel.analyzers.ruleparams import as_duration
from llmrel.analyzers.yamlmarks import MarkedDict
from llmrel.breaker_scope import template_problem
from llmrel.findings import DEFAULT_WITHIN_S, BreakerAction, Finding

_KEYS = ("breaker", "trip_after", "within")


def parse_action(raw: Any, line: int, report: Callable[[int, str], None]) -> BreakerAction | None:
    """Validate an `action:` mapping; problems go to `report(line, message)`."""
    if not isinstance(raw, MarkedDict):
        report(line, "action must be a mapping like {breaker: service/operation, trip_after: 5, within: 2m}")
        return None
    ok = True
    for key in raw:
        if key not in _KEYS:
            report(raw.line_of(key), f"action: unknown key {key!r}; allowed: {list(_KEYS)}")
            ok = False
    breaker = raw.get("breaker")
    problem = template_problem(breaker) if "breaker" in raw else "action needs 'breaker'"
    if problem:
        report(raw.line_of("breaker"), f"action.breaker {problem}")
        ok = False
    trip_after = raw.get("trip_after", 1)
    if not isinstance(trip_after, int) or isinstance(trip_after, bool) or trip_after < 1:
        report(raw.line_of("trip_after"), "action.trip_after must be an integer >= 1")
        ok = False
    within, problem = as_duration(raw.get("within", f"{DEFAULT_WITHIN_S}s"))
    if problem:
        report(raw.line_of("within"), f"action.within {problem}")
        ok = False
    return BreakerAction(breaker, trip_after, within) if ok else None


def attach_actions(findings: Sequence[Finding], actions: Mapping[str, BreakerAction]) -> list[Finding]:
    """`findings` with the declared action of their rule (`drift.<metric>` for drift) resolved and attached."""
    out = []
    for finding in findings:
        action = actions.get(finding.rule_id)
        resolved = action.resolve(finding) if action is not None else None
        out.append(dataclasses.replace(finding, action=resolved) if resolved is not None else finding)
    return out
