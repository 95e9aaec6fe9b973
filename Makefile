# crmsync: `make demo` and `make test` are the two commands. Each creates .venv on
# first use and reinstalls only when a requirements or lock file changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov lives in its own venv: its pins must not move ours
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
PORT ?= 8085
SERVE_PORT ?= 8080

# pip-tools for `make lock`, in a throwaway venv of its own (never .venv or .venv-tools)
PIP_TOOLS := pip-tools==7.6.2
LOCK_VENV ?= /tmp/crmsync-piptools
LOCK_FLAGS ?=

.PHONY: demo test test-thorough bench serve sandbox lint fmt clean lock check-lock

# requirements*.txt are edited by hand; requirements*.lock are generated from them by
# `make lock` (every transitive dependency pinned, with the hashes of its release files)
# and are what gets installed, with --require-hashes.
INSTALL = pip install --quiet --disable-pip-version-check --require-hashes
PIP_NOISE = is ignored: it is neither a file nor a directory

$(STAMP): requirements.lock requirements-dev.lock requirements.txt requirements-dev.txt
	@$(PY) -c "$$CHECK_LOCK" requirements.txt requirements.lock \
		requirements-dev.txt requirements-dev.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing requirements-dev.lock into $(VENV) ..."
	@$(BIN)/$(INSTALL) -r requirements-dev.lock > $(VENV)/pip.log 2>&1 \
		|| { grep -v "$(PIP_NOISE)" $(VENV)/pip.log; exit 1; }
	@$(BIN)/python -c "import googleapiclient, google.cloud.firestore, functions_framework, pydantic, pytest"
	@touch $(STAMP)

$(TOOLS_STAMP): requirements-tools.lock requirements-tools.txt
	@$(PY) -c "$$CHECK_LOCK" requirements-tools.txt requirements-tools.lock
	@test -x $(TOOLS)/bin/python || $(PY) -m venv $(TOOLS)
	@echo "installing requirements-tools.lock (infrastructure checkers) into $(TOOLS) ..."
	@$(TOOLS)/bin/$(INSTALL) -r requirements-tools.lock > $(TOOLS)/pip.log 2>&1 \
		|| { grep -v "$(PIP_NOISE)" $(TOOLS)/pip.log; exit 1; }
	@$(TOOLS)/bin/checkov --version > /dev/null
	@touch $(TOOLS_STAMP)

# Regenerate the lock files after editing a requirements*.txt (`make lock LOCK_FLAGS=--upgrade`
# to move every unpinned transitive dependency to its newest release). Resolved against
# the package index alone: this machine's pip configuration (local wheel folders and
# mirrors) is left out, so that the hashes are those of the index's release files. The
# dev lock is constrained by requirements.lock: tests run the versions that deploy.
LOCK_COMPILE = env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PY) -m venv $(LOCK_VENV) \
		&& $(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check $(PIP_TOOLS); }
	$(LOCK_COMPILE) --output-file requirements.lock requirements.txt
	$(LOCK_COMPILE) --constraint requirements.lock --output-file requirements-dev.lock requirements-dev.txt
	$(LOCK_COMPILE) --output-file requirements-tools.lock requirements-tools.txt

check-lock:
	@$(PY) -c "$$CHECK_LOCK" requirements.txt requirements.lock requirements-dev.txt \
		requirements-dev.lock requirements-tools.txt requirements-tools.lock && echo "locks up to date"

# Each pin of a requirements file (NAME==VERSION) must be the one its lock holds.
define CHECK_LOCK
import re, sys
def pins(path):
    found = {}
    for line in open(path):
        m = re.match(r"([A-Za-z0-9._-]+)(\[[^]]*\])?==([^\s;\\]+)", line)
        if m:
            found[re.sub(r"[-_.]+", "-", m[1]).lower()] = m[3]
    return found
bad = []
for src, lock in zip(sys.argv[1::2], sys.argv[2::2]):
    locked = pins(lock)
    bad += [f"{src}: {n}=={v}, {lock}: {locked.get(n, 'absent')}"
            for n, v in pins(src).items() if locked.get(n) != v]
if bad:
    sys.exit("lock files out of date, run `make lock`:\n  " + "\n  ".join(bad))
endef
export CHECK_LOCK

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
