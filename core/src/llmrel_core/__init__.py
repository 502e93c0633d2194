"""Concepts every llmrel component shares, one owner each, pure Python and import-light.

- `llmrel_core.redaction`: the one rule set for secrets and PII, used by the app-side exporter,
  the receiver's content policy and the analyzers' `no_pii` check.
- `llmrel_core.checksums`: card (Luhn + issuer ranges), IBAN (ISO 13616) and US SSN validity.
- `llmrel_core.phones`: phone-number validation backed by libphonenumber's metadata.
- `llmrel_core.spans`: what a span is (LLM call, step around calls, neither) and which attributes
  carry content.
"""
