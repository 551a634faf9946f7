# Two commands for a fresh machine:  make lab  (try it)  and  make test  (check it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := demo-logs
PORT ?= 8888

.PHONY: lab test lint bench install demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[lab,test]"
	touch $@

demo: $(STAMP)
	$(PY) examples/make_demo_logdir.py $(DEMO)

# JupyterLab with the extension, serving this directory, with a demo log directory in it.
lab: demo
	@echo
	@echo "Demo log directory: $(DEMO)/  (launch TensorBoard on it with the REST API; see README)"
	@echo
	$(VENV)/bin/jupyter lab --allow-root --ServerApp.root_dir="$(CURDIR)" --port=$(PORT) \
		$(if $(CI),--no-browser,)

# All tests. pytest exits 5 when it collects nothing: report that, do not fail on it.
test: $(STAMP)
	@$(PY) -m pytest -q $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

# Benchmarks against bare TensorBoard, measured in the same run (a few minutes).
bench: $(STAMP)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check jupyter_forgather_tb tests examples benchmarks
	$(VENV)/bin/ruff format --check jupyter_forgather_tb tests examples benchmarks

clean:
	rm -rf $(VENV) $(DEMO) build dist *.egg-info .pytest_cache .ruff_cache
