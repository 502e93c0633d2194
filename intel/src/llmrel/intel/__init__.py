"""llmrel's intelligence layer: why a finding happened and what to do about it.

* `contrast` (pure) + `scope` + `explain`: what the affected calls of a finding share that the baseline
  lacks (BubbleUp-style, Fisher-tested, Bonferroni-corrected), stored in `llm_explanations`.
* `recommend`: cheaper models whose quality is not worse (non-inferiority), with the monthly saving.
* `content_drift`: drift in what the model says (hashed n-grams of the output text + cheap signals),
  written as findings through the analyzers' findings writer.
* `api`, `runtime`, `cli`: HTTP routes, the wiring `llmrel serve` runs, `llmrel explain` / `llmrel recommend`.

Reads `llm_calls` and `llm_findings`; nothing below this package imports it.
"""
