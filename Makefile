# Both `make demo` and `make test` bootstrap .venv themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-python test-dbt test-spark test-slow bench clean

venv: $(STAMP)

# torch is pinned first: that CPU wheel is on local disk; an unpinned torch would pull a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/basemodel demo

test: test-python test-dbt

# Two pytest workers share the cores with torch's OpenMP threads: passive waiting keeps idle
# threads from spinning on cores the other worker needs.
test-python: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -m "not slow" -n 2 -q

# `dbt build` of the dbt package's integration project against DuckDB, run as a user would
# (deps, seed, build), in a temporary copy: the repository gets no target/, logs/,
# dbt_packages/ or database file. tests/test_dbt_package.py (in test-python) checks the same
# build from Python, and against PostgreSQL when a server is reachable.
test-dbt: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	cp -R dbt_package "$$tmp/" && cd "$$tmp/dbt_package/integration_tests" && \
	export BASEMODEL_DUCKDB_PATH="$$tmp/integration.duckdb" DBT_SEND_ANONYMOUS_USAGE_STATS=false && \
	"$(CURDIR)/$(VENV)/bin/dbt" deps --profiles-dir . --quiet && \
	"$(CURDIR)/$(VENV)/bin/dbt" seed --profiles-dir . --quiet && \
	"$(CURDIR)/$(VENV)/bin/dbt" build --profiles-dir .

# The integration project on local Spark (dbt-spark's session method, local[2]): dbt deps, seed
# and build in a temporary folder, then the results checked from Python (tests/test_dbt_spark.py,
# marked slow). .ci/spark first installs what is missing: a Java runtime (Debian package, as
# root), pyspark and dbt-spark. Not part of `make test`; CI (.ci/run) runs it after `make test`.
test-spark: $(STAMP)
	bash .ci/spark
	$(PY) -m pytest tests/test_dbt_spark.py tests/test_cleora_sql.py::test_spark_cleora_equals_cleora_embedder -m slow -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

bench: $(STAMP)
	$(PIP) install -q -e '.[bench]'
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
