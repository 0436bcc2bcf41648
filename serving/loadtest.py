"""Load generator for a local perk-ray app: N concurrent clients for a bounded time and request count.

    python -m serving.loadtest --url http://127.0.0.1:8000 --clients 4 --duration 30

Each request is POST /v1/answers with a document: "cold" requests send a new document (encoded on the way),
"warm" ones a document encoded before the run (served from the adapter cache). Prints throughput and
p50/p95/p99 latency per kind. Only local addresses are accepted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
WORDS = ("amber", "basil", "cedar", "delta", "ember", "fjord", "glade", "harbor", "indigo", "juniper", "kestrel",
         "lumen", "maple", "nectar", "onyx", "pepper", "quartz", "raven", "sable", "tundra")


def make_document(name: str, chars: int) -> str:
    """A synthetic key-value document of about ``chars`` characters, determined by ``name``."""
    rng = random.Random(name)
    lines = []
    while sum(len(line) + 1 for line in lines) < chars:
        lines.append(f"The {rng.choice(WORDS)} code of {name} #{len(lines)} is {rng.randrange(10**6):06d}.")
    return "\n".join(lines)


@dataclass
class Sample:
    kind: str
    latency_ms: float
    status: int
    cached: bool | None = None
    replicas: tuple[str | None, str | None] = (None, None)


@dataclass
class Plan:
    """What the clients share: the deadline, the request budget and the results."""

    deadline: float
    max_requests: int
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self) -> bool:
        with self.lock:
            if time.perf_counter() >= self.deadline or self.max_requests <= 0:
                return False
            self.max_requests -= 1
            return True


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, host: str, port: int, timeout: float, api_key: str | None = None):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        self.conn.request("POST", path, json.dumps(body), self.headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")


def run_client(index: int, args: argparse.Namespace, warm_docs: list[str], plan: Plan, run_id: str) -> None:
    rng = random.Random(f"{run_id}-{index}")
    client = Client(args.host, args.port, args.request_timeout, args.api_key)
    questions = [f"What is the code of record #{i}?" for i in range(args.questions)]
    n = 0
    while plan.claim():
        warm = rng.random() < args.warm_fraction
        text = rng.choice(warm_docs) if warm else make_document(f"cold-{run_id}-{index}-{n}", args.doc_chars)
        n += 1
        start = time.perf_counter()
        try:
            status, body = client.post("/v1/answers", {"text": text, "questions": questions})
        except (OSError, http.client.HTTPException):
            status, body = 0, {}
            client = Client(args.host, args.port, args.request_timeout, args.api_key)
        meta = body.get("meta", {})
        sample = Sample("warm" if warm else "cold", (time.perf_counter() - start) * 1000, status, body.get("cached"),
                        (meta.get("encoder_replica"), meta.get("answerer_replica")))
        with plan.lock:
            plan.samples.append(sample)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def report(samples: list[Sample], elapsed: float, clients: int) -> str:
    ok = [s for s in samples if s.status == 200]
    failed = sorted({s.status for s in samples if s.status != 200})
    lines = [f"{len(samples)} requests from {clients} clients in {elapsed:.1f} s: {len(ok)} ok, "
             f"{len(samples) - len(ok)} failed{f' (status {failed})' if failed else ''}; "
             f"throughput {len(ok) / elapsed:.2f} req/s"]
    for kind in ("cold", "warm"):
        lat = [s.latency_ms for s in ok if s.kind == kind]
        if not lat:
            continue
        wrong = sum(1 for s in ok if s.kind == kind and s.cached != (kind == "warm"))
        lines.append(f"{kind:>4}: {len(lat):5d} ok  {len(lat) / elapsed:6.2f} req/s  p50 {percentile(lat, 50):7.0f} ms"
                     f"  p95 {percentile(lat, 95):7.0f} ms  p99 {percentile(lat, 99):7.0f} ms"
                     f"  (cache flag unexpected: {wrong})")
    encoders = {s.replicas[0] for s in ok if s.replicas[0]}
    answerers = {s.replicas[1] for s in ok if s.replicas[1]}
    lines.append(f"replicas seen: {len(encoders)} encoder(s), {len(answerers)} answerer(s)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the app (a local address only)")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load (upper bound)")
    p.add_argument("--max-requests", type=int, default=5000, help="requests in all (upper bound)")
    p.add_argument("--warm-fraction", type=float, default=0.5, help="share of requests for a cached document")
    p.add_argument("--warm-docs", type=int, default=8, help="documents encoded before the run")
    p.add_argument("--doc-chars", type=int, default=1000, help="characters per document")
    p.add_argument("--questions", type=int, default=2, help="questions per request")
    p.add_argument("--request-timeout", type=float, default=300.0, help="client-side timeout per request (s)")
    p.add_argument("--api-key", default=os.environ.get("PERK_API_KEY"),
                   help="sent as Authorization: Bearer (default: $PERK_API_KEY) when the app has serve.api_keys_file")
    args = p.parse_args(argv)
    url = urlsplit(args.url)
    if url.scheme != "http" or url.hostname not in LOCAL_HOSTS:
        p.error(f"--url must be http:// on a local address ({sorted(LOCAL_HOSTS)}), got {args.url!r}")
    if args.clients < 1 or args.duration <= 0 or args.max_requests < 1 or not 0 <= args.warm_fraction <= 1:
        p.error("need --clients >= 1, --duration > 0, --max-requests >= 1 and 0 <= --warm-fraction <= 1")
    args.host, args.port = url.hostname, url.port or 80
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id = uuid.uuid4().hex[:8]  # new cold documents on every run, even against a warm cache
    warm_docs = [make_document(f"warm-{run_id}-{i}", args.doc_chars) for i in range(args.warm_docs)]
    if args.warm_fraction > 0:
        client = Client(args.host, args.port, args.request_timeout, args.api_key)
        for doc in warm_docs:
            status, body = client.post("/v1/contexts", {"text": doc})
            if status != 200:
                print(f"encoding a warm document failed: {status} {body}", file=sys.stderr)
                return 1
    start = time.perf_counter()
    plan = Plan(start + args.duration, args.max_requests)
    threads = [threading.Thread(target=run_client, args=(i, args, warm_docs, plan, run_id), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(report(plan.samples, time.perf_counter() - start, args.clients))
    return 0 if any(s.status == 200 for s in plan.samples) else 1


if __name__ == "__main__":
    sys.exit(main())
