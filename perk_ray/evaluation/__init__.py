"""Evaluation of PERK against prompt-based baselines: metrics, methods, runs (in-process or over Ray actors),
aggregates, reports and plots; the icl-ft baseline's fine-tune lives in ``icl_ft`` / ``icl_ft_ray``.

Dev accuracy during training: ``evaluate_records(engine, records, ["perk"]).accuracy("perk")``.

The names below are imported on first use, so that ``perk_ray.evaluation.metrics`` (the training loop's dev
accuracy) does not pull in the data stack (pyarrow) where only torch, transformers and peft are installed.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "METHODS": "methods", "EvalOptions": "runner", "EvalResults": "runner", "babilong_match": "metrics",
    "bootstrap_ci": "metrics", "evaluate_records": "runner", "exact_match": "metrics", "load_records": "records",
    "normalize_answer": "metrics", "write_outputs": "report",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'perk_ray.evaluation' has no attribute {name!r}")
    return getattr(import_module(f"perk_ray.evaluation.{_HOMES[name]}"), name)
