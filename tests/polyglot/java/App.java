// An ordinary Java LLM app: the official OpenAI Java client and no llmrel code. Capture comes from the
// OpenTelemetry Java agent, as a user runs it:
//   OTEL_SERVICE_NAME=... OTEL_EXPORTER_OTLP_ENDPOINT=http://<llmrel>:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//   java -javaagent:opentelemetry-javaagent.jar -cp 'lib/*' App.java <OpenAI-compatible base URL>

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.RateLimitException;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.embeddings.EmbeddingCreateParams;

public class App {
  private static final String QUESTION = "Where is my order 1234?"; // 23 chars: a 13-token prompt

  public static void main(String[] args) {
    OpenAIClient client =
        OpenAIOkHttpClient.builder().baseUrl(args[0]).apiKey("sk-test").maxRetries(0).build();

    client.chat().completions().create(ChatCompletionCreateParams.builder()
        .model("gpt-4o-mini").addUserMessage(QUESTION).temperature(0.2).maxCompletionTokens(50)
        .putAdditionalHeader("x-llmrel-sim-output-tokens", "7").build());

    ChatCompletionCreateParams streamed = ChatCompletionCreateParams.builder()
        .model("gpt-4o").addUserMessage(QUESTION)
        .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
        .putAdditionalHeader("x-llmrel-sim-output-tokens", "5").build();
    try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(streamed)) {
      stream.stream().forEach(chunk -> { });
    }

    client.embeddings().create(EmbeddingCreateParams.builder()
        .model("text-embedding-3-small").input("hello world").build());

    try {
      client.chat().completions().create(ChatCompletionCreateParams.builder()
          .model("gpt-4o-mini").addUserMessage(QUESTION)
          .putAdditionalHeader("x-llmrel-sim", "rate_limit").build());
    } catch (RateLimitException error) {
      System.err.println("rate_limit: " + error.statusCode());
    }
  }
}
