# Two commands for a fresh machine:  make lab  (try it)  and  make test  (check it).
# Everything is installed into $(VENV); nothing outside this directory is touched.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Rewritten whenever pyproject.toml changes, so a second `make test` skips pip.
STAMP := $(VENV)/.installed
DEMO := demo-logs
PORT ?= 8888

.PHONY: lab test lint bench bench-loaders install demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[lab,test]"
	touch $@

demo: $(STAMP)
	$(PY) examples/make_demo_logdir.py $(DEMO)

# JupyterLab with the extension, serving this directory, with a demo log directory in it.
# --allow-root: these machines often run as root; it changes nothing for other users.
lab: demo
	@echo
	@echo "Demo log directory: $(DEMO)  (relative to the server root, $(CURDIR))"
	@echo "Once JupyterLab prints its URL, launch TensorBoard on it from another terminal, with"
	@echo "TOKEN set to the token=... in that URL (and its port, if JupyterLab did not get $(PORT)):"
	@echo "  curl -s -H \"Authorization: token \$$TOKEN\" -X POST http://127.0.0.1:$(PORT)/forgather-tb/api/jobs -d '{\"logdir\": \"$(DEMO)\"}'"
	@echo "then open the \"url\" it answers (/tb/<id>/) on the same address in your browser."
	@echo "(Or: $(VENV)/bin/jupyter forgather-tb launch $(DEMO) --wait, which finds the server itself.)"
	@echo
	$(VENV)/bin/jupyter lab --allow-root --ServerApp.root_dir="$(CURDIR)" --port=$(PORT)$(if $(CI), --no-browser)

# All tests. pytest exits 5 when it collects nothing: report that, do not fail on it.
test: $(STAMP)
	@$(PY) -m pytest -q $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests (exit code 5): nothing to fail"; exit 0; fi; \
	exit $$status

# Benchmarks against bare TensorBoard, measured in the same run (a few minutes).
bench: $(STAMP)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# TensorBoard's Python and Rust loaders on generated log directories, small to large
# (generated once into build/bench-logdirs; about 15 minutes on 2 cores).
bench-loaders: $(STAMP)
	$(PY) benchmarks/bench_loaders.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check jupyter_forgather_tb tests examples benchmarks
	$(VENV)/bin/ruff format --check jupyter_forgather_tb tests examples benchmarks

clean:
	rm -rf $(VENV) $(DEMO) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
