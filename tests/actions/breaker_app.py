"""An LLM app run under `opentelemetry-instrument` by the breaker tests, exactly as a user would run it.

Usage: `python breaker_app.py BASE_URL STOP_FILE [MODEL] [INTERVAL_S] [MAX_CALLS]`: one chat call every
INTERVAL_S seconds until STOP_FILE exists (or MAX_CALLS were made); one JSON line per call on stdout
(`t`, the model that answered, or the error's type).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import openai

from llmrel_instrumentation import BreakerOpen


def main() -> None:
    base_url, stop_file = sys.argv[1], Path(sys.argv[2])
    model = sys.argv[3] if len(sys.argv) > 3 else "gpt-4o"
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    max_calls = int(sys.argv[5]) if len(sys.argv) > 5 else 1_000_000
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=10)
    for _ in range(max_calls):
        if stop_file.exists():
            break
        started = time.time()
        line: dict[str, object] = {"t": started}
        try:
            response = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
            line["model"] = response.model
        except BreakerOpen as error:
            line["blocked"] = error.scope
        except openai.APIError as error:
            line["error"] = type(error).__name__
        line["seconds"] = time.time() - started
        print(json.dumps(line), flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main()
