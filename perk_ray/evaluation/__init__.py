"""Evaluation of PERK against prompt-based baselines: metrics, methods, runs (in-process or over Ray actors),
aggregates, reports and plots; the icl-ft baseline's fine-tune lives in ``icl_ft`` / ``icl_ft_ray``.

Dev accuracy during training: ``evaluate_records(engine, records, ["perk"]).accuracy("perk")``.
"""

from perk_ray.evaluation.methods import METHODS
from perk_ray.evaluation.metrics import babilong_match, bootstrap_ci, exact_match, normalize_answer
from perk_ray.evaluation.records import load_records
from perk_ray.evaluation.report import write_outputs
from perk_ray.evaluation.runner import EvalOptions, EvalResults, evaluate_records

__all__ = [
    "METHODS", "EvalOptions", "EvalResults", "babilong_match", "bootstrap_ci", "evaluate_records", "exact_match",
    "load_records", "normalize_answer", "write_outputs",
]
