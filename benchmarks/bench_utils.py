"""Shared helpers of the benchmark scripts: machine description, medians, the matmul roof, tables, JSON and plots.

Every script pins torch's intra-op threads (``--threads``, default 1). On a shared 2-core machine the default of
2 OpenMP threads that spin while waiting makes small kernels 10-100x slower whenever a neighbour holds a core
(measured in ``benchmarks/inner_loop_costs.py``), so unpinned numbers would measure the neighbours, not perk-ray.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` from the repo root: make `serving` importable too
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"


def setup_torch(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def quiet_warnings() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info(threads: int) -> dict[str, Any]:
    """Where the numbers came from (the load average says how shared the machine was)."""
    import torch
    import transformers

    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = float("nan")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "torch_threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_start": load_average(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how much the repeats disagreed (the machine is shared)."""
    if len(values) < 2:
        return 0.0
    m = median(values)
    return (max(values) - min(values)) / m if m else float("nan")


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) on log(x): the growth exponent of y ~ x^slope."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0 and math.isfinite(y)]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else float("nan")


def matmul_roof(threads: int, sizes: Sequence[int] = (512, 1024, 2048), repeats: int = 5,
                budget_s: float = 1.0, dtype: str = "float32") -> dict[str, Any]:
    """Plain matmul throughput (``dtype``) with ``threads`` intra-op threads: the best of the per-size medians.

    This is the practical roof of the machine as it is right now (loaded), measured in the same run as the
    numbers it is compared with. ``flops_per_s`` is per wall second; with 1 thread, ``flops_per_cpu_s`` is per
    CPU second of the calling thread (what a matmul achieves while it holds a core), the roof for CPU-time rates.
    """
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    per_size, per_size_cpu = {}, {}
    try:
        for n in sizes:
            a, b = torch.randn(n, n, dtype=getattr(torch, dtype)), torch.randn(n, n, dtype=getattr(torch, dtype))
            a @ b
            start = time.perf_counter()
            a @ b
            once = max(time.perf_counter() - start, 1e-6)
            inner = max(1, int(budget_s / repeats / once))
            rates, cpu_rates = [], []
            for _ in range(repeats):
                wall0, cpu0 = time.perf_counter(), time.thread_time()
                for _ in range(inner):
                    a @ b
                rates.append(2 * n**3 * inner / (time.perf_counter() - wall0))
                cpu_rates.append(2 * n**3 * inner / max(time.thread_time() - cpu0, 1e-9))
            per_size[n] = median(rates)
            per_size_cpu[n] = median(cpu_rates)
    finally:
        torch.set_num_threads(old)
    best = max(per_size, key=per_size.get)
    out = {"threads": threads, "dtype": dtype, "flops_per_s": per_size[best], "best_size": best,
           "per_size_gflops": {str(k): round(v / 1e9, 2) for k, v in per_size.items()}}
    if threads == 1:
        out["flops_per_cpu_s"] = max(per_size_cpu.values())
        out["per_size_gflops_per_cpu_s"] = {str(k): round(v / 1e9, 2) for k, v in per_size_cpu.items()}
    return out


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of the calling thread, result).

    With one torch thread all of torch's CPU work (forward, autograd's backward, gloo's collectives) runs in the
    calling thread, so its CPU time is the work done. A loaded machine inflates it much less than the wall time:
    time spent descheduled or waiting does not count (nor does the PeakMemory sampler thread).
    """
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    out = fn(*args)
    return time.perf_counter() - wall0, time.thread_time() - cpu0, out


def interleaved(cases: dict[str, Callable[[], Any]], repeats: int,
                on_result: Callable[[str, int, float, Any], None] | None = None) -> dict[str, list[float]]:
    """Run each case once per round, rounds ``repeats`` times (A B A B ...): the wall times per case."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(repeats):
        for name, fn in cases.items():
            seconds, _, out = timed(fn)
            times[name].append(seconds)
            if on_result is not None:
                on_result(name, r, seconds, out)
    return times


def table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A GitHub-markdown table of ``rows`` (dicts) with (key, header) columns."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if not math.isfinite(v):
                return "-"
            if abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 10:
                return f"{v:.1f}"
            if abs(v) >= 0.01:
                return f"{v:.2f}"
            return f"{v:.2g}"
        return "-" if v is None else str(v)

    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(row.get(k)) for k, _ in columns) + " |" for row in rows]
    return "\n".join([head, sep, *body])


def results_path(name: str, quick: bool, out_dir: str | None) -> Path:
    base = Path(out_dir) if out_dir else RESULTS
    base.mkdir(parents=True, exist_ok=True)
    return base / (f"{name}_quick" if quick else name)


def write_results(stem: Path, payload: dict[str, Any], markdown: str) -> None:
    """``<stem>.json`` (all numbers) and ``<stem>.md`` (the printed tables)."""
    payload = {**payload, "load_average_end": load_average(), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=float) + "\n")
    stem.with_suffix(".md").write_text(markdown.rstrip() + "\n")


def save_figure(fig, path: Path, title: str) -> None:
    """Title the figure, lay it out, write it as a PNG and free it."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def machine_line(info: dict[str, Any]) -> str:
    load = info.get("load_average_start") or []
    return (f"{info['cores']}-core CPU ({info['cpu']}), {info['memory_gib']} GiB, no GPU, torch {info['torch']}, "
            f"{info['torch_threads']} torch thread(s); shared with other jobs: load average "
            f"{load[0] if load else '?'} at start")
