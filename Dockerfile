# llmrel server image: `llmrel serve` (OTLP gRPC :4317, OTLP/HTTP + API :4318) and the other
# `llmrel` commands. Built by docker-compose.yml; works alone too:
#   docker build -t llmrel:0.1.0 .
#   docker run -e LLMREL_AUTH_TOKEN=... -e LLMREL_CLICKHOUSE_URL=http://user:pass@clickhouse:8123/llmrel \
#     -p 4317:4317 -p 4318:4318 llmrel:0.1.0
# Without LLMREL_CLICKHOUSE_URL it uses the embedded store under /var/lib/llmrel (mount a volume there).
# The image listens on every interface, so `llmrel serve` refuses to start without LLMREL_AUTH_TOKEN
# (senders pass `Authorization: Bearer <token>`). LLMREL_ALLOW_UNAUTHENTICATED=true lifts that, for a
# network where every host is trusted. For TLS, mount a certificate and key and set
# LLMREL_TLS_CERT_FILE / LLMREL_TLS_KEY_FILE: the token otherwise travels in clear.

FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY otlp-receiver/src ./otlp-receiver/src
COPY analyzers/src ./analyzers/src
COPY actions/src ./actions/src
COPY grafana/src ./grafana/src
COPY schemas ./schemas
COPY core ./core
# llmrel names llmrel-core by path (`file:///src/...`): install into a
# virtual environment here and copy it, rather than wheels that would need /src in the final image.
RUN python -m venv /opt/llmrel && /opt/llmrel/bin/pip install --no-cache-dir .

FROM python:3.11.14-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/llmrel --create-home llmrel
COPY --from=build /opt/llmrel /opt/llmrel
ENV PATH=/opt/llmrel/bin:$PATH
USER llmrel
WORKDIR /var/lib/llmrel
ENV LLMREL_CLICKHOUSE_URL=chdb:///var/lib/llmrel/data \
    LLMREL_GRPC_ENDPOINT=0.0.0.0:4317 \
    LLMREL_HTTP_ENDPOINT=0.0.0.0:4318 \
    PYTHONUNBUFFERED=1
EXPOSE 4317 4318
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4318/readyz', timeout=4)"]
ENTRYPOINT ["llmrel"]
CMD ["serve"]
