VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: install test lint format demo clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install
	$(VENV)/bin/ruff check edgernn tests
	$(VENV)/bin/ruff format --check edgernn tests
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check edgernn tests
	$(VENV)/bin/ruff format --check edgernn tests

format: install
	$(VENV)/bin/ruff format edgernn tests
	$(VENV)/bin/ruff check --fix edgernn tests

demo: install
	$(VENV)/bin/edgernn run pipelines/sentiment_bilstm.toml -o runs/demo
	@echo "report: runs/demo/report.md (and report.html); bundle: runs/demo"

clean:
	rm -rf $(VENV) runs build *.egg-info
