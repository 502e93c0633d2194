// An ordinary Node.js LLM app: the official openai client and no llmrel code. Capture comes from
// OpenTelemetry's zero-code setup, as a user runs it:
//   OTEL_SERVICE_NAME=... OTEL_EXPORTER_OTLP_ENDPOINT=http://<llmrel>:4318 \
//   node --require @opentelemetry/auto-instrumentations-node/register app.js <OpenAI-compatible base URL>
'use strict';

const OpenAI = require('openai');

const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'sk-test', maxRetries: 0 });
const ask = [{ role: 'user', content: 'Where is my order 1234?' }]; // 23 chars: a 13-token prompt
const forced = (tokens) => ({ headers: { 'x-llmrel-sim-output-tokens': String(tokens) } });

async function main() {
  await client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: ask, temperature: 0.2, max_tokens: 50 }, forced(7));

  const stream = await client.chat.completions.create(
    { model: 'gpt-4o', messages: ask, stream: true, stream_options: { include_usage: true } }, forced(5));
  for await (const chunk of stream) {
    void chunk;
  }

  await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world' });

  try {
    await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: ask }, { headers: { 'x-llmrel-sim': 'rate_limit' } });
  } catch (error) {
    console.error(`rate_limit: ${error.status}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
