VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: install test test-fast lint format demo clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install
	$(VENV)/bin/ruff check edgernn tests benchmarks
	$(VENV)/bin/ruff format --check edgernn tests benchmarks
	$(VENV)/bin/pytest

test-fast: install  # the same minus end-to-end and subprocess tests (marked slow)
	$(VENV)/bin/ruff check edgernn tests benchmarks
	$(VENV)/bin/ruff format --check edgernn tests benchmarks
	$(VENV)/bin/pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check edgernn tests benchmarks
	$(VENV)/bin/ruff format --check edgernn tests benchmarks

format: install
	$(VENV)/bin/ruff format edgernn tests benchmarks
	$(VENV)/bin/ruff check --fix edgernn tests benchmarks

demo: install
	$(VENV)/bin/edgernn run pipelines/sentiment_bilstm.toml -o runs/demo
	@echo "report: runs/demo/report.md (and report.html); bundle: runs/demo"

clean:
	rm -rf $(VENV) runs build *.egg-info
