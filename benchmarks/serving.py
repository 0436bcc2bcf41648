"""Ray Serve app throughput and p50/p99 latency, cold (new document: encode + answer) versus cached documents.

    python benchmarks/serving.py            # 1 and 4 clients, 60 s each (about 3 minutes with start-up)
    python benchmarks/serving.py --quick    # a short run (smoke test; Ray start-up dominates)

Starts a local Ray instance and the perk-ray app in-process (``serving.app.build_app``, tiny preset, no checkpoint)
on a free port of 127.0.0.1, then drives ``POST /v1/answers`` with the load generator's documents and client
(``serving.loadtest``). Every client picks cold or cached at random per request (``--warm-fraction``), so both kinds
are measured interleaved under the same load. Cached documents are encoded before the load starts. The encoders
are pinned (min = max = ``--encoders``) so autoscaling does not move the numbers; 2 encoders + 1 answerer at
0.5 CPU each is the app's default placement on this 2-core machine.
"""

from __future__ import annotations

import argparse
import random
import socket
import threading
import time
import uuid
from typing import Any

from bench_utils import (load_average, machine_info, machine_line, median, pyplot, quiet_warnings, results_path,
                         save_figure, table, write_results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one short level with small documents (smoke test)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4], help="concurrency levels, one phase each")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load per level")
    p.add_argument("--warm-fraction", type=float, default=0.5)
    p.add_argument("--warm-docs", type=int, default=8)
    p.add_argument("--doc-chars", type=int, default=1000, help="about 1 token per character (tiny preset)")
    p.add_argument("--questions", type=int, default=2)
    p.add_argument("--encoders", type=int, default=2)
    p.add_argument("--answerers", type=int, default=1)
    p.add_argument("--mode", choices=["serve", "inprocess"], default=None,
                   help="serve: the Ray Serve app over HTTP (default); inprocess: one engine and an adapter dict in "
                        "this process, no Ray (default with --quick: Ray start-up alone takes 30-100 s here)")
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.duration, args.warm_docs, args.doc_chars = [2], 2.0, 2, 200
        args.mode = args.mode or "inprocess"
    args.mode = args.mode or "serve"
    return args


def start_app(args: argparse.Namespace):
    import ray
    from ray import serve

    from perk_ray.config import load_config
    from serving.app import build_app

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    cfg = load_config("tiny", [f"serve.encoder_min_replicas={args.encoders}",
                               f"serve.encoder_max_replicas={args.encoders}",
                               f"serve.answerer_replicas={args.answerers}", "serve.max_context_tokens=8192"])
    serve.run(build_app(cfg), name="perk-bench", route_prefix="/")
    return cfg, port


def stop_app() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


class InProcessApp:
    """The serving path without Ray: one engine, a dict of adapters keyed like the app's cache, one request's model
    work at a time (as one replica's SerialRunner). ``post`` mimics the two HTTP routes the benchmark uses."""

    def __init__(self, cfg):
        from perk_ray.engine import PerkEngine
        from serving.settings import engine_digest

        self.engine = PerkEngine.from_config(cfg)
        self.digest = engine_digest(cfg)
        self.adapters: dict[str, Any] = {}
        self.lock = threading.Lock()

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        from serving.auth import OPEN_TENANT
        from serving.cache import context_key

        key = context_key(self.digest, OPEN_TENANT, body["text"])
        with self.lock:
            memory = self.adapters.get(key)
            cached = memory is not None
            encode_ms = 0.0
            if memory is None:
                memory = self.engine.encode(body["text"])
                self.adapters[key] = memory
                encode_ms = memory.encode_seconds * 1000
            if path == "/v1/contexts":
                return 200, {"context_id": key, "cached": cached}
            start = time.perf_counter()
            answers = self.engine.answer(memory, body["questions"])
            answer_ms = (time.perf_counter() - start) * 1000
        return 200, {"context_id": key, "answers": answers, "cached": cached,
                     "timings": {"encode_ms": encode_ms, "answer_ms": answer_ms}}


def http_client(port: int):
    from serving.loadtest import Client

    return Client("127.0.0.1", port, 300.0)


def run_level(args: argparse.Namespace, connect, clients: int, run_id: str) -> tuple[list[dict], float]:
    """``clients`` threads (keep-alive connections from ``connect()``) for ``args.duration`` s; a sample per request."""
    from serving.loadtest import make_document

    warm_docs = [make_document(f"warm-{run_id}-{clients}-{i}", args.doc_chars) for i in range(args.warm_docs)]
    client = connect()
    for doc in warm_docs:
        status, body = client.post("/v1/contexts", {"text": doc})
        if status != 200:
            raise RuntimeError(f"encoding a cached document failed: {status} {body}")
    questions = [f"What is the code of record #{i}?" for i in range(args.questions)]
    samples: list[dict] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + args.duration

    def worker(index: int) -> None:
        rng = random.Random(f"{run_id}-{clients}-{index}")
        conn = connect()
        n = 0
        while time.perf_counter() < deadline:
            warm = rng.random() < args.warm_fraction
            text = rng.choice(warm_docs) if warm else make_document(f"cold-{run_id}-{clients}-{index}-{n}",
                                                                      args.doc_chars)
            n += 1
            start = time.perf_counter()
            try:
                status, body = conn.post("/v1/answers", {"text": text, "questions": questions})
            except OSError:
                status, body = 0, {}
                conn = connect()
            end = time.perf_counter()
            t = body.get("timings", {})
            with lock:
                samples.append({"kind": "cached" if warm else "cold", "latency_ms": (end - start) * 1000,
                                "end": end, "status": status, "cached_flag": body.get("cached"),
                                "encode_ms": t.get("encode_ms"), "answer_ms": t.get("answer_ms")})

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples, time.perf_counter() - start


def summarize(samples: list[dict], elapsed: float, clients: int) -> list[dict]:
    from serving.loadtest import percentile

    rows = []
    ok_all = [s for s in samples if s["status"] == 200]
    for kind in ("cold", "cached", "all"):
        mine = [s for s in samples if kind == "all" or s["kind"] == kind]
        ok = [s for s in mine if s["status"] == 200]
        lat = [s["latency_ms"] for s in ok]
        row = {"clients": clients, "kind": kind, "requests": len(mine), "ok": len(ok),
               "throughput_rps": len(ok) / elapsed if elapsed else float("nan"),
               "p50_ms": percentile(lat, 50) if lat else float("nan"),
               "p95_ms": percentile(lat, 95) if lat else float("nan"),
               "p99_ms": percentile(lat, 99) if lat else float("nan"),
               "server_encode_ms": median([s["encode_ms"] for s in ok if s["encode_ms"]]),
               "server_answer_ms": median([s["answer_ms"] for s in ok if s["answer_ms"] is not None]),
               "cache_flag_wrong": sum(1 for s in ok if kind != "all" and s["cached_flag"] != (kind == "cached"))}
        rows.append(row)
    assert ok_all, "no request succeeded"
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    quiet_warnings()
    info = machine_info(1)
    info["torch_threads"] = 1  # Ray sets OMP_NUM_THREADS=1 in replicas reserving 0.5 CPU
    print(f"machine: {machine_line(info)}")
    wall0 = time.perf_counter()
    if args.mode == "serve":
        cfg, port = start_app(args)
        connect, stop = (lambda: http_client(port)), stop_app
        where = f"127.0.0.1:{port} ({args.encoders} encoders, {args.answerers} answerer)"
    else:
        import torch

        from perk_ray.config import load_config

        torch.set_num_threads(1)
        cfg = load_config("tiny", [])
        app = InProcessApp(cfg)
        connect, stop, where = (lambda: app), (lambda: None), "this process (no Ray, no HTTP)"
    startup = time.perf_counter() - wall0
    print(f"app up ({where}) in {startup:.1f} s", flush=True)
    run_id = uuid.uuid4().hex[:8]
    rows, all_samples = [], []
    try:
        for clients in args.clients:
            samples, elapsed = run_level(args, connect, clients, run_id)
            level = summarize(samples, elapsed, clients)
            rows += level
            all_samples += [{**s, "clients": clients} for s in samples]
            cold, cached = level[0], level[1]
            print(f"{clients} client(s), {elapsed:.0f} s: {level[2]['ok']} ok, {level[2]['throughput_rps']:.2f} req/s; "
                  f"cold p50 {cold['p50_ms']:.0f} ms p99 {cold['p99_ms']:.0f} ms; cached p50 {cached['p50_ms']:.0f} "
                  f"ms p99 {cached['p99_ms']:.0f} ms", flush=True)
    finally:
        stop()
    ratios = []
    for clients in args.clients:
        cold = next(r for r in rows if r["clients"] == clients and r["kind"] == "cold")
        cached = next(r for r in rows if r["clients"] == clients and r["kind"] == "cached")
        ratios.append({"clients": clients, "p50_cold_over_cached": cold["p50_ms"] / cached["p50_ms"],
                       "p99_cold_over_cached": cold["p99_ms"] / cached["p99_ms"]})
    wall = time.perf_counter() - wall0
    if args.mode == "serve":
        how = (f"`serving.app` (tiny preset, no checkpoint) on a local Ray {ray_version()} started by the script, "
               f"{args.encoders} encoder replicas (pinned), {args.answerers} answerer, over HTTP")
    else:
        how = "in-process mode (one engine, adapter dict, no Ray, no HTTP; tiny preset)"
    md = ["## Serving: throughput and latency, cold versus cached documents\n",
          f"Machine: {machine_line(info)}; load average at end {load_average()}. {how}; `POST /v1/answers` with "
          f"{args.doc_chars}-character documents (about "
          f"{args.doc_chars} tokens, {-(-args.doc_chars // cfg.inner.chunk_tokens)} chunks, K={cfg.inner.steps}) and "
          f"{args.questions} questions; {int(args.warm_fraction * 100)}% of requests for one of {args.warm_docs} "
          f"pre-encoded documents, mixed at random. {args.duration:.0f} s per concurrency level; app start-up "
          f"{startup:.0f} s.\n",
          table(rows, [("clients", "clients"), ("kind", "documents"), ("ok", "ok"),
                       ("throughput_rps", "req/s"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"),
                       ("p99_ms", "p99 ms"), ("server_encode_ms", "server encode ms (median)"),
                       ("server_answer_ms", "server answer ms (median)"), ("cache_flag_wrong", "cache flag wrong")]),
          "\n" + table(ratios, [("clients", "clients"), ("p50_cold_over_cached", "p50 cold / cached"),
                                ("p99_cold_over_cached", "p99 cold / cached")])]
    markdown = "\n".join(md)
    print()
    print(markdown)
    stem = results_path("serving", args.quick, args.out_dir)
    payload = {"benchmark": "serving", "mode": args.mode, "args": vars(args), "machine": info,
               "startup_seconds": startup, "rows": rows, "ratios": ratios, "samples": all_samples, "wall_seconds": wall}
    write_results(stem, payload, markdown)
    plot(all_samples, rows, stem.with_suffix(".png"), info)
    print(f"\nwrote {stem}.json/.md/.png in {wall:.0f} s")
    return payload


def ray_version() -> str:
    import ray

    return ray.__version__


def plot(samples: list[dict], rows: list[dict], path, info: dict) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    levels = sorted({s["clients"] for s in samples})
    for i, clients in enumerate(levels):
        for kind, style in (("cold", "-"), ("cached", "--")):
            lat = sorted(s["latency_ms"] for s in samples if s["clients"] == clients and s["kind"] == kind
                         and s["status"] == 200)
            if lat:
                axes[0].plot(lat, [(j + 1) / len(lat) for j in range(len(lat))], style, color=f"C{i}",
                             label=f"{kind}, {clients} client(s)")
    axes[0].set(xscale="log", xlabel="latency ms (log)", ylabel="fraction of requests", title="latency CDF")
    axes[0].grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    width = 0.35
    for j, kind in enumerate(("cold", "cached")):
        vals = [next(r["throughput_rps"] for r in rows if r["clients"] == c and r["kind"] == kind) for c in levels]
        axes[1].bar([x + (j - 0.5) * width for x in range(len(levels))], vals, width, label=kind)
    axes[1].set_xticks(range(len(levels)), [f"{c} client(s)" for c in levels])
    axes[1].set(ylabel="requests / s", title="throughput by document kind")
    axes[1].legend(fontsize=8)
    save_figure(fig, path, f"perk-ray on Ray Serve, tiny preset, {info['cores']}-core CPU (shared, loaded)")


if __name__ == "__main__":
    main()
