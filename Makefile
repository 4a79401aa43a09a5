# pixelwise: `make demo` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install demo test fuzz lint clean bench

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,coco,int8,onnx,openvino,pretrained,serve]"
	# Test-only reference for the Cityscapes label table; --no-deps: its labels module needs none of
	# its requirements (which include the obsolete 'typing' backport).
	$(BIN)/pip install -q --no-deps cityscapesscripts==2.3.0
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/pixelwise demo

test: install
	$(BIN)/python -m pytest -q

# The fuzz tests (hypothesis) with many more examples than `make test` runs (30 each); prints the count.
FUZZ_EXAMPLES ?= 2000
fuzz: install
	@PIXELWISE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider -m fuzz \
		--hypothesis-show-statistics tests > .fuzz.log 2>&1; status=$$?; cat .fuzz.log; \
	awk '/ passing, / {n += $$2} END {print "fuzz examples tried:", n}' .fuzz.log; rm -f .fuzz.log; exit $$status

bench: install
	# segmentation-models-pytorch is the baselines' library: a benchmark-only extra, not a test dependency.
	$(BIN)/pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py --out docs/benchmarks.md

lint: install
	$(BIN)/ruff check src tests benchmarks

# The README's tables of formats, models, losses, backends and class presets, from the registries.
.PHONY: readme
readme: install
	$(BIN)/python -m pixelwise.cli.readme README.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
