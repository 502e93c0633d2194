.PHONY: demo test bench lint dashboards

demo:  ## install, start llmrel on the embedded store and show demo traffic, costs and findings
	./scripts/demo.sh

test:  ## install everything (incl. the collector) and run lint + the whole test suite
	./scripts/test.sh

lint:
	.venv/bin/ruff check .

bench:  ## run the benchmarks; figures are printed and written to benchmarks/results/
	for b in benchmarks/*.py; do .venv/bin/python $$b || exit 1; done
