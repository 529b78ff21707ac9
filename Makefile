# plsw — make help lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
PLSW := $(or $(CARGO_TARGET_DIR),target)/debug/plsw
DEMO_DIR ?= demo
DEMO_YEAR ?= 2025
DEMO_SCALE ?= 1
export PLSW_WAREHOUSE ?= $(DEMO_DIR)/warehouse

.PHONY: help build demo demo-data demo-clean test e2e bench check fmt clippy

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## Build the plsw binary (dev profile, optimised enough for a province-year)
	$(CARGO) build --bin plsw

demo-data: build ## Generate a synthetic province-year on the real divisions into demo/data
	@if [ -f $(DEMO_DIR)/data/README.txt ]; then echo "demo data present in $(DEMO_DIR)/data (make demo-clean to redo)"; \
	else $(PLSW) generate --out $(DEMO_DIR)/data --year $(DEMO_YEAR) --scale $(DEMO_SCALE); fi

# The demo's stand-in for the online platform: a token, and a few faults of each kind, so the
# pull shows its retries. Override DEMO_FAULTS= for a well-behaved server.
DEMO_FAULTS ?= 503:197,429:401,drop:149,repeat:41,overlap:53
# make demo ends by serving the query API (DEMO_SERVE=0 skips it).
DEMO_SERVE ?= 1
DEMO_ADDR ?= 127.0.0.1:8080
export PLSW_DEMO_TOKEN ?= demo-token-not-secret

demo: demo-data ## Generate, ingest, pull the work orders, compute the indicators, print the headline, serve the API
	@# A demo warehouse written by an older plsw (another table layout) is recreated.
	@$(PLSW) sql "SELECT 1" >/dev/null 2>&1 || { echo "recreating $(PLSW_WAREHOUSE)"; rm -rf $(PLSW_WAREHOUSE); }
	$(PLSW) ingest hotline $(DEMO_DIR)/data/hotline
	$(PLSW) ingest cases $(DEMO_DIR)/data/cases
	for f in $(DEMO_DIR)/data/platforms/*.csv; do $(PLSW) ingest platforms --as-of $$(basename $$f .csv) $$f || exit 1; done
	for f in $(DEMO_DIR)/data/staff/*.csv; do $(PLSW) ingest staff --as-of $$(basename $$f .csv) $$f || exit 1; done
	$(PLSW) ingest funding $(DEMO_DIR)/data/funding
	$(PLSW) ingest population $(DEMO_DIR)/data/population
	@echo; echo "== work orders: serve the generated versions on 127.0.0.1 (faults: $(DEMO_FAULTS)) and pull them =="
	@rm -f $(DEMO_DIR)/upstream.addr
	@$(PLSW) upstream --dir $(DEMO_DIR)/data/work_orders --addr 127.0.0.1:0 --addr-file $(DEMO_DIR)/upstream.addr \
	  --token-env PLSW_DEMO_TOKEN --faults "$(DEMO_FAULTS)" & pid=$$!; \
	for i in $$(seq 600); do [ -s $(DEMO_DIR)/upstream.addr ] && break; sleep 0.1; done; \
	PLSW_LOG=$${PLSW_LOG:-warn} $(PLSW) pull work-orders --url http://$$(cat $(DEMO_DIR)/upstream.addr) --token-env PLSW_DEMO_TOKEN; \
	rc=$$?; kill $$pid; wait $$pid 2>/dev/null; exit $$rc
	@echo; echo "== indicators: run the SQL models =="
	$(PLSW) transform
	@echo; echo "== the province's headline indicators in $(DEMO_YEAR), beside the speech's targets (seeds/targets.csv) =="
	$(PLSW) sql "SELECT indicator, \
	  round(max(CASE WHEN quarter = '$(DEMO_YEAR)Q1' THEN value END), 3) AS q1, \
	  round(max(CASE WHEN quarter = '$(DEMO_YEAR)Q2' THEN value END), 3) AS q2, \
	  round(max(CASE WHEN quarter = '$(DEMO_YEAR)Q3' THEN value END), 3) AS q3, \
	  round(max(CASE WHEN quarter = '$(DEMO_YEAR)Q4' THEN value END), 3) AS q4, \
	  max(target) AS target, \
	  CASE WHEN max(target) IS NULL THEN '' WHEN bool_and(meets_target) THEN 'met every quarter' WHEN bool_or(meets_target) THEN 'met in some' ELSE 'not met' END AS status \
	  FROM indicators WHERE scope = 'province' AND quarter LIKE '$(DEMO_YEAR)Q%' AND indicator IN ( \
	  'hotline.answer_rate', 'hotline.evaluation_rate', 'hotline.satisfaction_rate', \
	  'coverage.city_center', 'coverage.county_center', 'coverage.township_build_rate', 'coverage.township_operating_rate', \
	  'coverage.village_build_rate', 'coverage.village_adviser_rate', 'coverage.notary_settled', \
	  'staff.full_time_mediator_share', 'funding.in_budget_share', 'workorders.on_time_rate') \
	  GROUP BY indicator ORDER BY indicator"
	@echo; echo "== per feed: read = accepted + quarantined =="
	$(PLSW) sql "SELECT feed, count(*) AS loads, sum(rows_read) AS read, sum(rows_accepted) AS accepted, \
	  sum(rows_quarantined) AS quarantined, sum(rows_read) = sum(rows_accepted) + sum(rows_quarantined) AS balanced \
	  FROM loads WHERE status = 'committed' GROUP BY feed ORDER BY feed"
	@echo; echo "== work orders: versions stored once each, and the watermark the next pull resumes from =="
	$(PLSW) sql "SELECT count(*) AS versions, count(DISTINCT order_id) AS orders, \
	  (SELECT max(watermark) FROM loads WHERE feed = 'work_orders') AS watermark FROM work_order_versions_current"
	@echo; echo "== quarantine reasons =="
	$(PLSW) sql "SELECT feed, reason, count(*) AS n FROM quarantine GROUP BY feed, reason ORDER BY feed, n DESC"
	@echo; echo "== sample: hotline answer rate by answering city, $(DEMO_YEAR) (current rows) =="
	$(PLSW) sql "SELECT h.seat_city_code AS city, coalesce(c.name, '省级兜底') AS name, count(*) AS inbound, \
	  round(100.0 * count(answered_at) / count(*), 1) AS answered_pct \
	  FROM hotline_calls_current h LEFT JOIN cities c ON c.code = h.seat_city_code \
	  GROUP BY 1, 2 ORDER BY answered_pct"
	@echo; echo "== the assessment of $(DEMO_YEAR)Q4: published once (seeds/targets.csv, seeds/assessment.toml), then read back as published =="
	@$(PLSW) assess --quarter $(DEMO_YEAR)Q4 --published --format json >/dev/null 2>&1 || $(PLSW) assess --quarter $(DEMO_YEAR)Q4 --publish --format json >/dev/null
	$(PLSW) assess --quarter $(DEMO_YEAR)Q4 --published --format xlsx --out $(DEMO_DIR)/assessment-$(DEMO_YEAR)Q4.xlsx
	$(PLSW) assess --quarter $(DEMO_YEAR)Q4 --published --format html --out $(DEMO_DIR)/assessment-$(DEMO_YEAR)Q4.html
	@$(PLSW) assess --quarter $(DEMO_YEAR)Q4 --published 2>/dev/null | head -20

	@if [ "$(DEMO_SERVE)" = 1 ]; then \
	  [ -s $(DEMO_DIR)/api-token ] || $(PLSW) tokens create --unit sfj --role analyst > $(DEMO_DIR)/api-token; \
	  token=$$(cat $(DEMO_DIR)/api-token); \
	  echo; echo "== the query API and the dashboard on http://$(DEMO_ADDR)/ (Ctrl-C stops it); sign in with the demo analyst token in $(DEMO_DIR)/api-token: $$token =="; \
	  echo "curl -s -H \"Authorization: Bearer $$token\" 'http://$(DEMO_ADDR)/v1/indicators?indicator=hotline.answer_rate&scope=city&quarter=$(DEMO_YEAR)Q4'"; \
	  exec $(PLSW) serve --addr $(DEMO_ADDR); \
	fi

demo-clean: ## Remove the demo data and warehouse
	rm -rf $(DEMO_DIR)

test: ## Run every test (unit, SQL, end-to-end)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi

bench: ## Benchmarks at 1 and 10 province-years in a release build, each beside a floor (not part of make test; BENCH_SCALES=1 for one)
	scripts/bench.sh

e2e: ## The dashboard in Debian's Chromium (installs chromium and playwright-core; screenshots in e2e/screenshots)
	scripts/e2e.sh

fmt: ## Format the code
	$(CARGO) fmt --all

check: ## Formatting and lints, as CI runs them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
