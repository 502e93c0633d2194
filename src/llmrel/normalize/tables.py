"""Versioned mapping tables: which span attributes feed which `LlmCall` column.

Each tuple lists attribute keys in priority order; the first key present wins, and every key
of a consumed tuple is removed from the row's leftover `attributes`. Sources: OTel GenAI
semantic conventions (v1.30 `gen_ai.system` era and v1.37+ `gen_ai.provider.name` era),
OpenLLMetry/Traceloop (`opentelemetry-semantic-conventions-ai` 0.5, instrumentation 0.62) and
OpenInference (`openinference-semantic-conventions` 0.1.42). Bump `NORMALIZER_VERSION`
whenever a table changes, so stored rows say which mapping produced them.
"""

from __future__ import annotations

from llmrel_core.spans import (
    LLM_REQUEST_TYPE,
    OI_PROMPTS_PREFIX,
    OPENINFERENCE_SPAN_KIND,
    OPERATION_NAME,
    PROVIDER_NAME,
    SYSTEM,
    TRACELOOP_SPAN_KIND,
)

NORMALIZER_VERSION = "2026.12.1"

VERSION_ATTRIBUTE = "llmrel.normalizer.version"
WARNINGS_ATTRIBUTE = "llmrel.normalize.warnings"

# Provider spellings of older conventions to the v1.37+ `gen_ai.provider.name` values.
PROVIDERS: dict[str, str] = {
    "az.ai.openai": "azure.ai.openai", "azure": "azure.ai.openai", "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai", "gemini": "gcp.gemini", "google": "gcp.gen_ai", "mistralai": "mistral_ai",
    "xai": "x_ai", "aws": "aws.bedrock", "bedrock": "aws.bedrock", "watsonx": "ibm.watsonx.ai",
}

FINISH_REASONS: dict[str, str] = {"tool_call": "tool_calls", "function_call": "tool_calls"}

# Error types named differently by the client libraries of other languages, to the Python SDK's names
# (after `canonical_error_type` dropped the module or package path).
ERROR_TYPES: dict[str, str] = {
    "RateLimitException": "RateLimitError", "InternalServerException": "InternalServerError",
    "BadRequestException": "BadRequestError", "UnauthorizedException": "AuthenticationError",
    "PermissionDeniedException": "PermissionDeniedError", "NotFoundException": "NotFoundError",
    "UnprocessableEntityException": "UnprocessableEntityError", "OpenAIIoException": "APIConnectionError",
    "APIConnectionTimeoutError": "APITimeoutError",
}

PROVIDER_KEYS = (PROVIDER_NAME, SYSTEM, "llm.provider", "llm.system")
REQUEST_MODEL_KEYS = ("gen_ai.request.model", "llm.request.model_name", "embedding.model_name")
RESPONSE_MODEL_KEYS = ("gen_ai.response.model", "llm.response.model_name")
OPENINFERENCE_MODEL = "llm.model_name"

INPUT_TOKENS_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
                     "llm.usage.prompt_tokens")
OUTPUT_TOKENS_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                      "llm.token_count.completion", "llm.usage.completion_tokens")
CACHE_READ_KEYS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                   "llm.token_count.prompt_details.cache_read")
CACHE_CREATION_KEYS = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                       "llm.token_count.prompt_details.cache_write")
REASONING_KEYS = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                  "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning")

STREAMING_KEYS = ("gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming")
TEMPERATURE_KEYS = ("gen_ai.request.temperature",)
TOP_P_KEYS = ("gen_ai.request.top_p",)
MAX_TOKENS_KEYS = ("gen_ai.request.max_tokens", "gen_ai.request.max_completion_tokens")
FINISH_REASON_KEYS = ("gen_ai.response.finish_reasons", "gen_ai.response.finish_reason",
                      "llm.response.finish_reason", "llm.finish_reason")
TTFT_SECONDS_KEYS = ("gen_ai.response.time_to_first_chunk",)
ERROR_TYPE_KEYS = ("error.type",)
TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name")
RESPONSE_ID_KEYS = ("gen_ai.response.id",)
SERVER_ADDRESS_KEYS = ("server.address",)
API_BASE_KEYS = ("gen_ai.openai.api_base",)
CONVERSATION_ID_KEYS = ("gen_ai.conversation.id",)
SESSION_ID_KEYS = ("session.id", "traceloop.association.properties.session_id")
USER_ID_KEYS = ("user.id", "enduser.id", "gen_ai.user", "llm.user", "traceloop.association.properties.user_id")
FEATURE_KEYS = ("llmrel.feature",)
TENANT_KEYS = ("llmrel.tenant",)
ENVIRONMENT_RESOURCE_KEYS = ("deployment.environment.name", "deployment.environment")
SERVICE_VERSION_RESOURCE_KEY = "service.version"

# OpenInference puts request parameters in one JSON object (`embedding.` on embedding spans).
INVOCATION_PARAMETERS = "llm.invocation_parameters"
EMBEDDING_INVOCATION_PARAMETERS = "embedding.invocation_parameters"
INVOCATION_TEMPERATURE = ("temperature",)
INVOCATION_TOP_P = ("top_p",)
INVOCATION_MAX_TOKENS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
INVOCATION_STREAM = ("stream",)
INVOCATION_MODEL = ("model", "model_name")

# Events
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
# The first of these span events marks the first streamed chunk (Traceloop, OpenInference).
FIRST_CHUNK_EVENTS = frozenset({"gen_ai.content.completion.chunk", "llm.content.completion.chunk",
                                "First Token Stream Event"})

# Content: JSON message arrays (semconv v1.37+, Traceloop >= 0.55).
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
# Obsolete JSON attributes (semconv <= v1.26) and Traceloop entity payloads.
LEGACY_PROMPT = "gen_ai.prompt"
LEGACY_COMPLETION = "gen_ai.completion"
TRACELOOP_ENTITY_INPUT = "traceloop.entity.input"
TRACELOOP_ENTITY_OUTPUT = "traceloop.entity.output"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
# Flattened indexed content: `<prefix><i>.<field>` (only keys whose next character is a digit).
INDEXED_PROMPT_PREFIX = "gen_ai.prompt."
INDEXED_COMPLETION_PREFIX = "gen_ai.completion."
OI_INPUT_MESSAGES_PREFIX = "llm.input_messages."
OI_OUTPUT_MESSAGES_PREFIX = "llm.output_messages."
OI_CHOICES_PREFIX = "llm.choices."
OI_EMBEDDINGS_PREFIX = "embedding.embeddings."  # `.embedding.text` is input; `.embedding.vector` is dropped
OI_INPUT_VALUE = "input.value"
OI_OUTPUT_VALUE = "output.value"
OI_CONTENT_EXTRA = ("input.mime_type", "output.mime_type")
OI_OUTPUT_MIME_TYPE = "output.mime_type"
# Fields of the provider's JSON response that `output.value` may hold (OpenAI, Anthropic).
RESPONSE_JSON_ID = "id"
RESPONSE_JSON_MODEL = "model"
RESPONSE_JSON_CHOICES = "choices"
RESPONSE_JSON_FINISH_REASONS = ("finish_reason", "stop_reason")

CONTENT_KEYS = frozenset((INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS, LEGACY_PROMPT, LEGACY_COMPLETION,
                TRACELOOP_ENTITY_INPUT, TRACELOOP_ENTITY_OUTPUT, TOOL_CALL_ARGUMENTS, TOOL_CALL_RESULT,
                OI_INPUT_VALUE, OI_OUTPUT_VALUE,
                *OI_CONTENT_EXTRA))
CONTENT_PREFIXES = (INDEXED_PROMPT_PREFIX, INDEXED_COMPLETION_PREFIX, OI_INPUT_MESSAGES_PREFIX,
                    OI_OUTPUT_MESSAGES_PREFIX, OI_PROMPTS_PREFIX, OI_CHOICES_PREFIX, OI_EMBEDDINGS_PREFIX)

# Every attribute that becomes a column (and so leaves the row's `attributes`).
COLUMN_KEYS = frozenset((
    OPERATION_NAME, LLM_REQUEST_TYPE, OPENINFERENCE_SPAN_KIND, TRACELOOP_SPAN_KIND, OPENINFERENCE_MODEL,
    *PROVIDER_KEYS, *REQUEST_MODEL_KEYS, *RESPONSE_MODEL_KEYS, *INPUT_TOKENS_KEYS, *OUTPUT_TOKENS_KEYS,
    *CACHE_READ_KEYS, *CACHE_CREATION_KEYS, *REASONING_KEYS, *STREAMING_KEYS, *TEMPERATURE_KEYS, *TOP_P_KEYS,
    *MAX_TOKENS_KEYS, *FINISH_REASON_KEYS, *TTFT_SECONDS_KEYS, *ERROR_TYPE_KEYS, *TOOL_NAME_KEYS,
    *RESPONSE_ID_KEYS, *SERVER_ADDRESS_KEYS, *API_BASE_KEYS, *CONVERSATION_ID_KEYS, *SESSION_ID_KEYS,
    *USER_ID_KEYS, *FEATURE_KEYS, *TENANT_KEYS,
))
