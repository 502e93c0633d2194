"""The breaker state machine, pure: hysteresis, minimum open time, half-open probing, alerts, overrides, dry run."""

from __future__ import annotations

import doctest

import pytest

from llmrel.actions import machine as machine_module
from llmrel.actions.breakers import BreakerSet, policy_lookup
from llmrel.actions.machine import (
    AlertSeen,
    BreakerMachine,
    BreakerPolicy,
    DryRunSet,
    FindingSeen,
    Override,
    ProbeWindow,
    State,
    Tick,
)

S = 1_000_000_000
POLICY = BreakerPolicy(min_open_s=60, half_open_fraction=0.2, close_after=2, probe_window_s=30, min_probe_calls=5,
                       probe_max_failure_rate=0.1)


def finding(i: int, at_s: float, rule: str = "json", trip_after: int = 3, within_s: int = 60) -> FindingSeen:
    return FindingSeen(f"f{i}", rule, int(at_s * S), trip_after, within_s * S)


def opened(scope: str = "bot/chat") -> BreakerMachine:
    m = BreakerMachine(scope, POLICY)
    for i in range(3):
        m.update(finding(i, i))
    assert m.state is State.OPEN
    return m


def test_the_docstring_example_runs() -> None:
    assert doctest.testmod(machine_module).failed == 0


def test_trips_after_n_findings_within_the_window_only() -> None:
    m = BreakerMachine("bot/chat", POLICY)
    assert m.update(finding(1, 0)).transition is None
    assert m.update(finding(2, 50)).transition is None
    assert m.update(finding(3, 120)).transition is None  # the first two are out of the 60 s window by now
    assert m.update(finding(3, 121)).transition is None  # the same finding twice counts once
    assert m.update(finding(4, 130)).transition is None
    step = m.update(finding(5, 135)).transition
    assert (step.from_state, step.to_state, step.cause) == (State.CLOSED, State.OPEN, "findings")
    assert step.finding_ids == ("f3", "f4", "f5")
    assert m.seq == 1 and step.since_ns == 135 * S


def test_rules_count_separately() -> None:
    m = BreakerMachine("bot/chat", POLICY)
    m.update(finding(1, 0, rule="a"))
    m.update(finding(2, 1, rule="a"))
    m.update(finding(3, 2, rule="b"))
    assert m.state is State.CLOSED
    assert m.update(finding(4, 3, rule="a")).transition.to_state is State.OPEN


def test_minimum_open_time_then_half_open() -> None:
    m = opened()
    assert m.update(Tick(61 * S)).transition is None  # opened at 2 s: 59 s is not enough
    step = m.update(Tick(62 * S)).transition
    assert (step.to_state, step.cause) == (State.HALF_OPEN, "min_open")


def test_half_open_closes_after_m_healthy_windows_and_ignores_thin_ones() -> None:
    m = opened()
    m.update(Tick(62 * S))
    assert m.probe_due(91 * S) is None
    assert m.probe_due(92 * S) == (62 * S, 92 * S)
    assert m.update(ProbeWindow(62 * S, 92 * S, calls=4, failures=0, at_ns=95 * S)).transition is None  # too few
    assert m.state is State.HALF_OPEN and m.probe_due(122 * S) == (92 * S, 122 * S)
    assert m.update(ProbeWindow(92 * S, 122 * S, calls=20, failures=2, at_ns=125 * S)).transition is None  # 10%
    step = m.update(ProbeWindow(122 * S, 152 * S, calls=20, failures=0, at_ns=155 * S)).transition
    assert (step.from_state, step.to_state, step.cause) == (State.HALF_OPEN, State.CLOSED, "probe_healthy")


def test_an_unhealthy_window_opens_again_and_restarts_the_minimum_open_time() -> None:
    m = opened()
    m.update(Tick(62 * S))
    step = m.update(ProbeWindow(62 * S, 92 * S, calls=20, failures=3, at_ns=95 * S)).transition
    assert (step.to_state, step.cause) == (State.OPEN, "probe_unhealthy")
    assert m.update(Tick(150 * S)).transition is None
    assert m.update(Tick(155 * S)).transition.to_state is State.HALF_OPEN


def test_a_stale_window_result_is_ignored() -> None:
    m = opened()
    m.update(Tick(62 * S))
    assert m.update(ProbeWindow(0, 30 * S, calls=50, failures=0, at_ns=95 * S)).transition is None


def test_findings_made_before_the_breaker_closed_do_not_count() -> None:
    m = opened()
    m.update(Tick(62 * S))
    m.update(ProbeWindow(62 * S, 92 * S, calls=20, failures=0, at_ns=95 * S))
    m.update(ProbeWindow(92 * S, 122 * S, calls=20, failures=0, at_ns=125 * S))
    assert m.state is State.CLOSED
    for i in range(5):
        assert m.update(finding(10 + i, 100 + i)).transition is None  # detected before it closed at 125 s


def test_an_alert_opens_at_once_holds_it_open_and_its_resolution_is_judged() -> None:
    m = BreakerMachine("bot", POLICY)
    step = m.update(AlertSeen("fp1", True, 10 * S, "error rate high")).transition
    assert (step.to_state, step.cause, step.alert_fingerprint, step.actor) == (State.OPEN, "alert", "fp1", "grafana")
    assert m.update(Tick(200 * S)).transition is None  # still firing: no probing
    m.update(AlertSeen("fp1", False, 210 * S))
    assert m.update(Tick(211 * S)).transition.to_state is State.HALF_OPEN
    # Opened by an alert: windows are judged on the alert, whatever the calls.
    assert m.update(ProbeWindow(211 * S, 241 * S, calls=0, failures=0, at_ns=243 * S)).transition is None
    assert m.update(ProbeWindow(241 * S, 271 * S, calls=0, failures=0, at_ns=273 * S)).transition.to_state \
        is State.CLOSED


def test_an_alert_firing_again_while_half_open_reopens() -> None:
    m = opened()
    m.update(Tick(62 * S))
    step = m.update(AlertSeen("fp2", True, 70 * S)).transition
    assert (step.from_state, step.to_state) == (State.HALF_OPEN, State.OPEN)


def test_manual_override_wins_until_released() -> None:
    m = BreakerMachine("bot/chat", POLICY)
    step = m.update(Override(State.CLOSED, "known false positive", "ana", 1 * S)).transition
    assert (step.from_state, step.to_state, step.cause, step.override, step.actor) == (
        State.CLOSED, State.CLOSED, "manual", "closed", "ana")
    for i in range(10):
        assert m.update(finding(i, 2 + i)).transition is None
    assert m.update(AlertSeen("fp", True, 20 * S)).transition is None
    step = m.update(Override(None, "done", "ana", 30 * S)).transition
    assert (step.to_state, step.cause, step.override) == (State.CLOSED, "release", "")
    m.update(AlertSeen("fp", False, 31 * S))
    for i in range(3):
        m.update(finding(100 + i, 40 + i))
    assert m.state is State.OPEN  # automation is back


def test_manual_open_is_not_probed_until_released() -> None:
    m = BreakerMachine("bot/chat", POLICY)
    m.update(Override(State.OPEN, "bad prompt release", "ana", 0))
    assert m.update(Tick(10_000 * S)).transition is None and m.probe_due(10_000 * S) is None
    step = m.update(Override(None, "fixed", "ana", 10_001 * S)).transition
    assert (step.from_state, step.to_state, step.cause) == (State.OPEN, State.CLOSED, "release")


def test_dry_run_records_with_the_flag_and_resumes_from_the_last_step() -> None:
    lookup = policy_lookup(POLICY, ["shadow/*"])
    breakers = BreakerSet(lookup)
    for i in range(3):
        step = breakers.apply("shadow/chat", finding(i, i))
    assert step is not None and step.dry_run and step.to_state is State.OPEN
    toggled = breakers.apply("shadow/chat", DryRunSet(False, "ready to enforce", "ana", 5 * S))
    assert (toggled.cause, toggled.dry_run, toggled.from_state, toggled.to_state) == (
        "dry_run", False, State.OPEN, State.OPEN)
    resumed = BreakerMachine.from_transition(toggled, lookup("shadow/chat"))
    assert (resumed.state, resumed.seq, resumed.dry_run, resumed.since_ns) == (State.OPEN, 2, False, 2 * S)
    assert [v.to_json()["enforced"] for v in breakers.views()] == [True]


@pytest.mark.parametrize("scope", ["bot", "bot/chat", "bot/*/gpt-4o"])
def test_views_carry_what_apps_need(scope: str) -> None:
    breakers = BreakerSet(policy_lookup(POLICY, []))
    breakers.apply(scope, AlertSeen("fp", True, 0, "x"))
    (view,) = [v.to_json() for v in breakers.views()]
    assert (view["scope"], view["service"], view["state"], view["enforced"], view["half_open_fraction"]) == (
        scope, "bot", "open", True, 0.2)
