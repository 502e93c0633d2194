"""llmrel: reliability platform for LLM applications in production.

`llmrel` is a namespace spread over the repository's product folders
(`src/`, `otlp-receiver/src/`, `analyzers/src/`, `grafana/src/`); an installed
wheel merges them into one package.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)
__version__ = "0.1.0"
