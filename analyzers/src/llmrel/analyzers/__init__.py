"""Streaming analyzers: invariant rules and River drift detection over `LlmCall`s, written as findings."""
