"""Ray Tune ablations over the shared PerkConfig.

A ``Space`` maps dotted config fields to values (a grid) or Tune domains. ``run_space`` refuses a bad space before
any trial starts, prepares the data (and, on ``tiny``, a briefly pre-trained base) once, and runs one trial per
point: each meta-trains through ``MetaTrainer`` (or Ray Train's ``fit`` when it asks for more than one worker) and
reports every meta-step (dev accuracy at evaluations, meta-step time, peak memory, tokens/s). Re-running with the
same output directory resumes; the directory ends with ``trials.csv``, ``summary.md``, ``best_config.yaml`` and
plots of accuracy and peak memory against the ablated variable.
"""

from perk_ray.tuning.run import SCHEDULERS, TuneOutcome, cli, main, run_space
from perk_ray.tuning.space import SEARCHES, Space, check_space, load_space

__all__ = ["SCHEDULERS", "SEARCHES", "Space", "TuneOutcome", "check_space", "cli", "load_space", "main", "run_space"]
