"""Readable input/output text, tool-call count and finish reason from captured content attributes.

Content arrives in one of four shapes: JSON message arrays (`gen_ai.input.messages`, parts
`text|tool_call|tool_call_response`), the obsolete JSON `gen_ai.prompt`/`gen_ai.completion`,
flattened indexed keys (`gen_ai.prompt.0.content`, `llm.input_messages.0.message.content`), or
raw payloads (`input.value`, `traceloop.entity.input`). Input text is one `role: text` line per
message; output text is the assistant text alone. Nothing here raises on malformed content.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from llmrel.normalize import tables as t
from llmrel.normalize.values import parse_json
from llmrel_core import spans

_OUTPUT_TEXT_PARTS = frozenset({"text", "refusal"})


class Content(NamedTuple):
    """What the content attributes of one span say."""

    input_text: str
    output_text: str
    tool_calls: int
    finish_reason: str
    keys: frozenset[str]  # indexed content keys read, dropped from the leftover attributes


def extract_content(attrs: dict[str, str], indexed_keys: list[str]) -> Content:
    """Collect text, tool calls and the first output finish reason from a span's attributes.

    Args:
        attrs: the span's attributes.
        indexed_keys: the keys of `attrs` starting with one of `tables.CONTENT_PREFIXES`.
    """
    indexed = _group_indexed(attrs, indexed_keys) if indexed_keys else _NO_INDEXED
    raw_instructions = attrs.get(t.SYSTEM_INSTRUCTIONS)
    input_messages: list[tuple[str, str]] = []
    instructions = _render_parts(parse_json(raw_instructions), raw_instructions) if raw_instructions else ""
    if instructions:
        input_messages.append(("system", instructions))
    input_messages += (_json_messages(attrs.get(t.INPUT_MESSAGES)) or indexed.prompts
                       or _json_messages(attrs.get(t.LEGACY_PROMPT)) or indexed.oi_inputs)

    outputs = _json_outputs(attrs.get(t.OUTPUT_MESSAGES))
    if not outputs.texts and not outputs.tool_calls and not outputs.finish_reason:
        outputs = (indexed.completions if indexed.completions.texts or indexed.completions.tool_calls
                   or indexed.completions.finish_reason else _json_outputs(attrs.get(t.LEGACY_COMPLETION)))
    if not outputs.texts and not outputs.tool_calls and (indexed.oi_outputs.texts or indexed.oi_outputs.tool_calls):
        outputs = indexed.oi_outputs

    input_text = "\n".join([f"{role}: {text}" if role else text for role, text in input_messages])
    output_text = "\n".join(outputs.texts)
    if not input_text:
        input_text = _first_raw(attrs, (t.TOOL_CALL_ARGUMENTS, t.OI_INPUT_VALUE, t.TRACELOOP_ENTITY_INPUT))
    if not output_text and not outputs.tool_calls:  # a tool-call-only answer has no text, not a raw payload
        output_text = _first_raw(attrs, (t.TOOL_CALL_RESULT, t.OI_OUTPUT_VALUE, t.TRACELOOP_ENTITY_OUTPUT))
        if output_text and output_text == attrs.get(t.OI_OUTPUT_VALUE):
            # A provider's JSON response body: its answer text, not the body (rules judge the text).
            output_text = response_fields(output_text).text or output_text
    return Content(input_text, output_text, outputs.tool_calls, outputs.finish_reason, indexed.keys)


class _Outputs(NamedTuple):
    texts: list[str]
    tool_calls: int
    finish_reason: str


_NO_OUTPUTS = _Outputs([], 0, "")


class _Indexed(NamedTuple):
    prompts: list[tuple[str, str]]
    completions: _Outputs
    oi_inputs: list[tuple[str, str]]
    oi_outputs: _Outputs
    keys: frozenset[str]


_NO_INDEXED = _Indexed([], _NO_OUTPUTS, [], _NO_OUTPUTS, frozenset())


def _group_indexed(attrs: dict[str, str], candidates: list[str]) -> _Indexed:
    """Group `<prefix><i>.<field>` keys by prefix and index."""
    groups: dict[str, dict[int, dict[str, str]]] = {}
    keys = []
    for key in candidates:
        for prefix in t.CONTENT_PREFIXES:
            if key.startswith(prefix):
                break
        index, _, field = key[len(prefix):].partition(".")
        if not (index.isascii() and index.isdigit()):
            continue
        keys.append(key)
        groups.setdefault(prefix, {}).setdefault(int(index), {})[field] = attrs[key]

    def ordered(prefix: str) -> list[dict[str, str]]:
        group = groups.get(prefix, {})
        return [group[i] for i in sorted(group)]

    prompts = [(m.get("role", ""), _text_of(m.get("content"))) for m in ordered(t.INDEXED_PROMPT_PREFIX)]
    completions = ordered(t.INDEXED_COMPLETION_PREFIX)
    oi_inputs = [(m.get("message.role", ""), _oi_text(m)) for m in ordered(t.OI_INPUT_MESSAGES_PREFIX)]
    oi_inputs += [("", m.get("prompt.text", "")) for m in ordered(spans.OI_PROMPTS_PREFIX)]
    oi_inputs += [("", m.get("embedding.text", "")) for m in ordered(t.OI_EMBEDDINGS_PREFIX)]
    oi_outputs = ordered(t.OI_OUTPUT_MESSAGES_PREFIX)
    oi_choices = [m.get("completion.text", "") for m in ordered(t.OI_CHOICES_PREFIX)]
    return _Indexed(
        prompts=[(role, text) for role, text in prompts if text],
        completions=_Outputs(
            [text for m in completions if (text := _text_of(m.get("content")))],
            sum(_count_indexed_tool_calls(m, "tool_calls.") for m in completions),
            next((m["finish_reason"] for m in completions if m.get("finish_reason")), ""),
        ),
        oi_inputs=[(role, text) for role, text in oi_inputs if text],
        oi_outputs=_Outputs(
            [text for m in oi_outputs if (text := _oi_text(m))] + [c for c in oi_choices if c],
            sum(_count_indexed_tool_calls(m, "message.tool_calls.") for m in oi_outputs),
            "",
        ),
        keys=frozenset(keys),
    )


def _count_indexed_tool_calls(fields: dict[str, str], prefix: str) -> int:
    return len({f[len(prefix):].partition(".")[0] for f in fields if f.startswith(prefix)})


def _oi_text(fields: dict[str, str]) -> str:
    """OpenInference message text: `message.content`, else the text `message.contents.{j}` parts."""
    content = fields.get("message.content")
    if content:
        return content
    parts = sorted((f, v) for f, v in fields.items()
                   if f.startswith("message.contents.") and f.endswith(".message_content.text"))
    return "\n".join(v for _, v in parts if v)


def _json_messages(raw: str | None) -> list[tuple[str, str]]:
    """`[{role, parts|content}]` as `(role, text)` pairs, text-bearing messages only."""
    messages = parse_json(raw)
    if not isinstance(messages, list):
        return []
    result = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        text = _message_text(message, include_tool_results=True)
        if text:
            result.append((str(message.get("role") or ""), text))
    return result


def _json_outputs(raw: str | None) -> _Outputs:
    messages = parse_json(raw)
    if not isinstance(messages, list):
        return _NO_OUTPUTS
    texts, tool_calls, finish_reason = [], 0, ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        parts = message.get("parts")
        if isinstance(parts, list):
            text = _render_parts(parts, None, include_tool_results=False)
            tool_calls += _count_tool_call_parts(parts)
        else:
            text = _text_of(message.get("content"))
            calls = message.get("tool_calls")
            tool_calls += len(calls) if isinstance(calls, list) else 0
        if text:
            texts.append(text)
        if not finish_reason and message.get("finish_reason"):
            finish_reason = str(message["finish_reason"])
    return _Outputs(texts, tool_calls, finish_reason)


def _count_tool_call_parts(parts: list[Any]) -> int:
    count = 0
    for part in parts:
        if isinstance(part, dict) and part.get("type") == "tool_call":
            count += 1
    return count


def _message_text(message: dict[str, Any], *, include_tool_results: bool) -> str:
    parts = message.get("parts")
    if isinstance(parts, list):
        return _render_parts(parts, None, include_tool_results=include_tool_results)
    return _text_of(message.get("content"))


def _render_parts(parts: Any, fallback: str | None, *, include_tool_results: bool = True) -> str:
    """Text of a semconv parts list; a plain string value is returned as it is."""
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return fallback or ""
    if len(parts) == 1 and isinstance(part := parts[0], dict) and part.get("type") == "text":
        text = part.get("content", part.get("text", ""))
        if type(text) is str:  # the usual single text part
            return text
    texts = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if not isinstance(kind, str | None):
            continue
        if kind in _OUTPUT_TEXT_PARTS or (kind is None and "content" in part):
            text = part.get("content", part.get("text", ""))
        elif kind == "tool_call_response" and include_tool_results:
            text = part.get("result", part.get("response", ""))
        else:
            continue
        if text:
            texts.append(text if type(text) is str else _stringify(text))
    return texts[0] if len(texts) == 1 else "\n".join(texts)


def _text_of(content: Any) -> str:
    """A message `content`: a string, possibly a JSON list of `{type: text, text}` blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        if content.startswith("[{"):
            blocks = parse_json(content)
            if isinstance(blocks, list):
                return _text_of(blocks)
        return content
    if isinstance(content, list):
        texts = [_stringify(b.get("text", b.get("content", ""))) for b in content
                 if isinstance(b, dict) and b.get("type", "text") == "text"]
        return "\n".join(x for x in texts if x)
    return _stringify(content)


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _first_raw(attrs: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        if value := attrs.get(key):
            return value
    return ""


class ResponseFields(NamedTuple):
    """What a provider's JSON response body says (OpenInference keeps it in `output.value`)."""

    response_id: str
    model: str
    finish_reason: str
    text: str


_NO_RESPONSE = ResponseFields("", "", "", "")


def response_fields(raw: str | None) -> ResponseFields:
    """Id, model, first finish reason and answer text of an OpenAI (chat or text completion, also
    streamed and accumulated) or Anthropic (messages) JSON response body; empty fields when absent."""
    if not raw or not raw.startswith("{"):
        return _NO_RESPONSE
    body = parse_json(raw)
    if not isinstance(body, dict):
        return _NO_RESPONSE
    finish_reason, text = "", ""
    choices = body.get(t.RESPONSE_JSON_CHOICES)
    if isinstance(choices, list) and choices and isinstance(first := choices[0], dict):
        finish_reason = _string_field(first, t.RESPONSE_JSON_FINISH_REASONS)
        message = first.get("message")
        text = _text_of(message.get("content")) if isinstance(message, dict) else _string_field(first, ("text",))
    else:
        finish_reason = _string_field(body, t.RESPONSE_JSON_FINISH_REASONS)
        if isinstance(body.get("content"), list):
            text = _text_of(body["content"])
    return ResponseFields(_string_field(body, (t.RESPONSE_JSON_ID,)), _string_field(body, (t.RESPONSE_JSON_MODEL,)),
                          finish_reason, text)


def _string_field(obj: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return ""
