# crmsync: `make demo` and `make test` are the two commands. Each creates .venv on
# first use and reinstalls only when a requirements file changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov lives in its own venv: its pins must not move ours
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
PORT ?= 8085
SERVE_PORT ?= 8080

.PHONY: demo test test-thorough bench serve sandbox lint fmt clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing requirements into $(VENV) ..."
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 \
		| grep -v "is ignored: it is neither a file nor a directory" || true
	@$(BIN)/python -c "import googleapiclient, google.cloud.firestore, functions_framework, pydantic, pytest"
	@touch $(STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS)/bin/python || $(PY) -m venv $(TOOLS)
	@echo "installing infrastructure checkers into $(TOOLS) ..."
	@$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt 2>&1 \
		| grep -v "is ignored: it is neither a file nor a directory" || true
	@$(TOOLS)/bin/checkov --version > /dev/null
	@touch $(TOOLS_STAMP)

demo: $(STAMP)
	$(BIN)/python main.py demo

test: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/python -m pytest -q

# Long property runs: more examples for every hypothesis test.
test-thorough: $(STAMP) $(TOOLS_STAMP)
	CRMSYNC_HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -q --timeout=3600

bench: $(STAMP)
	$(BIN)/python -m bench

serve: $(STAMP)
	$(BIN)/python main.py serve --port $(SERVE_PORT)

sandbox: $(STAMP)
	$(BIN)/python main.py sandbox --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(TOOLS) .crmsync .pytest_cache
