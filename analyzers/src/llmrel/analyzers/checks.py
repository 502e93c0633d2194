"""Per-call invariant checks, compiled once from validated `Rule`s into plain functions.

A check returns `None` when the call passes, `SKIP` when the rule does not apply to it, or a
`Violation`. Content checks (JSON, schema, regex on output, PII, refusal) apply only when the
output text was captured: a call with an empty `output_text` is skipped, because an empty text
usually means content capture is off. `not_empty` is the exception: it fires when the call
succeeded and either content was captured (`input_text` present) with an empty output, or the
provider reported zero output tokens without tool calls.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any

import jsonschema
from simpleeval import EvalWithCompoundTypes

from llmrel.analyzers.callfields import NUMBER_FIELDS, STATUS_ERROR, empty_call, expression_names
from llmrel.analyzers.pii import compile_scanner
from llmrel.analyzers.userregex import MAX_SCAN_CHARS, compile_user_regex
from llmrel.call_traits import is_refusal
from llmrel.model import LlmCall

SKIP: Any = object()
_JSON_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)
_DECLARED_JSON_KEYS = ("gen_ai.output.type", "gen_ai.request.response_format", "llm.response_format")


@dataclass(frozen=True, slots=True)
class Violation:
    observed: float | None
    expected: float | None
    message: str
    attributes: dict[str, str] | None = None


class CallFacts:
    """Values several checks and metrics need, computed at most once per call."""

    __slots__ = ("_json", "_refusal", "call")

    def __init__(self, call: LlmCall) -> None:
        self.call = call
        self._json: tuple[bool, Any] | None = None
        self._refusal: bool | None = None

    @property
    def parsed_json(self) -> tuple[bool, Any]:
        """(parsed ok, value) of the output, accepting a ```json fenced block."""
        if self._json is None:
            text = self.call.output_text
            fenced = _JSON_FENCE.match(text)
            try:
                self._json = (True, json.loads(fenced.group(1) if fenced else text))
            except ValueError:
                self._json = (False, None)
        return self._json

    @property
    def refusal(self) -> bool | None:
        """Whether the output is a refusal; `None` when no output text was captured."""
        if self._refusal is None and self.call.output_text:
            self._refusal = is_refusal(self.call.output_text)
        return self._refusal


Check = Callable[[LlmCall, CallFacts], "Violation | None"]


def _looks_like_json(call: LlmCall) -> bool:
    head = call.output_text.lstrip()[:8]
    return head[:1] in ("{", "[") or head.startswith("```")


def _declares_json(call: LlmCall) -> bool:
    return any("json" in call.attributes.get(k, "") for k in _DECLARED_JSON_KEYS)


def _json_valid(params: dict[str, Any]) -> Check:
    mode = params["mode"]

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        if not call.output_text:
            return SKIP
        if mode == "declared" and not _declares_json(call):
            return SKIP
        if mode == "looks_like" and not (_looks_like_json(call) or _declares_json(call)):
            return SKIP
        ok, _ = facts.parsed_json
        return None if ok else Violation(None, None, "output is not valid JSON")
    return check


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why a JSON Schema is invalid, or `None`."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return exc.message
    return None


def _json_schema(params: dict[str, Any]) -> Check:
    schema = json.loads(json.dumps(params["schema"]))
    validator = jsonschema.validators.validator_for(schema)(schema)

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        if not call.output_text:
            return SKIP
        ok, value = facts.parsed_json
        if not ok:
            return Violation(None, None, "output is not valid JSON, so it cannot match the schema")
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Violation(None, None, f"schema violation at {where}: {error.message[:200]}", {"path": where})
    return check


def _regex(params: dict[str, Any]) -> Check:
    pattern = compile_user_regex(params["pattern"], params["ignore_case"])
    field, must_match = params["field"], params["must"] == "match"
    content = field in ("output_text", "input_text")

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        text = getattr(call, field)
        if content and not text:
            return SKIP
        found = pattern.search(text[:MAX_SCAN_CHARS]) is not None
        if found == must_match:
            return None
        verb = "does not match" if must_match else "matches"
        return Violation(None, None, f"{field} {verb} /{pattern.pattern}/")
    return check


def _no_pii(params: dict[str, Any]) -> Check:
    scan = compile_scanner(params["kinds"])

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        if not call.output_text:
            return SKIP
        kinds = scan(call.output_text[:MAX_SCAN_CHARS])
        if not kinds:
            return None
        return Violation(float(len(kinds)), 0.0, f"output contains {', '.join(kinds)}", {"pii": ",".join(kinds)})
    return check


def _not_empty(params: dict[str, Any]) -> Check:
    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        if call.status_code == STATUS_ERROR or call.tool_calls or call.finish_reason == "tool_calls":
            return SKIP
        if call.output_text.strip():
            return None
        if call.input_text or call.output_tokens == 0:
            return Violation(0.0, None, "output is empty")
        return SKIP
    return check


def _no_refusal(params: dict[str, Any]) -> Check:
    extra = compile_user_regex(params["pattern"], ignore_case=True) if params.get("pattern") else None

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        if not call.output_text:
            return SKIP
        if facts.refusal or (extra is not None and extra.search(call.output_text[:MAX_SCAN_CHARS])):
            return Violation(None, None, "output is a refusal")
        return None
    return check


def _finish_reason(params: dict[str, Any]) -> Check:
    banned = frozenset(params["not_in"])

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        if not call.finish_reason:
            return SKIP
        if call.finish_reason in banned:
            reason = call.finish_reason
            return Violation(None, None, f"finish_reason is {reason!r}", {"finish_reason": reason})
        return None
    return check


def _bounds(params: dict[str, Any]) -> Check:
    field, low, high = params["field"], params["min"], params["max"]
    get = NUMBER_FIELDS[field]

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        value = get(call)
        if value is None:
            return SKIP
        if low is not None and value < low:
            return Violation(value, low, f"{field} {value:g} is below {low:g}")
        if high is not None and value > high:
            return Violation(value, high, f"{field} {value:g} is above {high:g}")
        return None
    return check


def _model_allowed(params: dict[str, Any]) -> Check:
    patterns, field = params["models"], params["field"]

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        model = getattr(call, field)
        if not model:
            return SKIP
        if any(fnmatchcase(model, p) for p in patterns):
            return None
        return Violation(None, None, f"{field} {model!r} is not allowed", {"model": model})
    return check


_MAX_EXPONENT = 64
_MAX_POWER_BITS = 4096

# Attributes an expression may use, by type: reading and comparing only. Nothing that builds a value
# larger than its input (`'a'.ljust(10**8)` allocated 100 MB per call), formats, or reaches objects.
_STR_METHODS = frozenset({
    "lower", "upper", "casefold", "strip", "lstrip", "rstrip", "startswith", "endswith", "count", "find",
    "rfind", "index", "rindex", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "isnumeric",
    "isdecimal", "removeprefix", "removesuffix", "title", "capitalize", "swapcase",
})
_MAPPING_METHODS = frozenset({"get", "keys", "values", "items"})
_ALLOWED_ATTRS: dict[type | None, set[str]] = {
    str: set(_STR_METHODS), dict: set(_MAPPING_METHODS), MappingProxyType: set(_MAPPING_METHODS),
    list: {"count", "index"}, tuple: {"count", "index"},
}


def _bounded_power(base: Any, exponent: Any) -> Any:
    """`**` with small bounds: rule expressions compare fields, they do not need 9**3999999 or (10**64)**64."""
    if isinstance(exponent, int | float) and abs(exponent) > _MAX_EXPONENT:
        raise ValueError(f"exponent above {_MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 \
            and abs(base).bit_length() * exponent > _MAX_POWER_BITS:
        raise ValueError(f"result above {_MAX_POWER_BITS} bits")
    return base**exponent


def _evaluator() -> EvalWithCompoundTypes:
    evaluator = EvalWithCompoundTypes(functions={"len": len, "abs": abs, "min": min, "max": max,
                                                 "lower": str.lower, "contains": lambda text, part: part in text},
                                      allowed_attrs=_ALLOWED_ATTRS)
    evaluator.operators = {**evaluator.operators, ast.Pow: _bounded_power}
    # No comprehensions: a rule over one call has nothing to iterate that needs them, and
    # nested ones are how an expression multiplies its cost.
    evaluator.nodes.pop(ast.ListComp, None)
    evaluator.nodes.pop(ast.GeneratorExp, None)
    evaluator.nodes.pop(ast.SetComp, None)
    evaluator.nodes.pop(ast.DictComp, None)
    return evaluator


def expression_problem(expr: str) -> str | None:
    """Why an expression cannot run (syntax, unknown name), checked on an empty call; else `None`."""
    evaluator = _evaluator()
    evaluator.names = expression_names(empty_call())
    try:
        evaluator.eval(expr)
    except (TypeError, KeyError, IndexError, ZeroDivisionError):
        return None  # unknown (None) values, missing attributes, empty text: fine at run time, the call is skipped
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _expression(params: dict[str, Any]) -> Check:
    expr = params["expr"]
    evaluator = _evaluator()
    parsed = evaluator.parse(expr)

    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        evaluator.names = expression_names(call)
        try:
            ok = evaluator.eval(expr, previously_parsed=parsed)
        except Exception:
            # e.g. an unknown (None) field in a comparison, a division by zero: the rule cannot judge this call.
            return SKIP
        return None if ok else Violation(None, None, f"expression is false: {expr}")
    return check


def _no_error(params: dict[str, Any]) -> Check:
    def check(call: LlmCall, facts: CallFacts) -> Violation | None:
        if call.status_code != STATUS_ERROR:
            return None
        what = call.error_type or call.status_message[:120] or "error"
        return Violation(None, None, f"call failed: {what}", {"error_type": call.error_type})
    return check


_FACTORIES: dict[str, Callable[[dict[str, Any]], Check]] = {
    "json_valid": _json_valid, "json_schema": _json_schema, "regex": _regex, "no_pii": _no_pii,
    "not_empty": _not_empty, "no_refusal": _no_refusal, "finish_reason": _finish_reason, "bounds": _bounds,
    "model_allowed": _model_allowed, "expression": _expression, "no_error": _no_error,
}


def compile_check(kind: str, params: dict[str, Any]) -> Check:
    """The check function for a per-call rule kind."""
    return _FACTORIES[kind](dict(params))
