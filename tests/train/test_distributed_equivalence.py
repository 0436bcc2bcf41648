"""2 ranks (gloo, float64) give the same meta-parameters as 1 rank on the same global batches: ddp, fsdp (sharded at
rest, and fully sharded during the step), cp."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from perk_ray.config import load_config
from perk_ray.train.loop import MetaTrainer

STEPS = 2
# full sharding needs the ranks in lockstep: one micro-batch per task (the 1-rank reference uses 2 chunks per micro-batch)
STRATEGIES = {"ddp": ["train.strategy=ddp"], "fsdp": ["train.strategy=fsdp"], "cp": ["train.strategy=cp"],
              "fsdp-full": ["train.strategy=fsdp", "train.fsdp_full_shard=true", "inner.micro_batch_chunks=16"]}
OVERRIDES = ["model.dtype=float64", "model.tiny.hidden_size=32", "model.tiny.num_layers=2",
             "model.tiny.intermediate_size=64", "lora.rank=4", "inner.chunk_tokens=16", "inner.micro_batch_chunks=2",
             "outer.batch_size=4", "outer.lr=0.01", "inner.shuffle_chunks=true"]


def _records(n: int = 8) -> list[dict]:
    fruits = ["lemon", "apple", "pear", "fig", "kiwi", "plum", "lime", "date"]
    return [{"id": f"r{i}", "context": [f"The code of {fruits[i]} is {i}. The code of {fruits[(i + 3) % 8]} is "
                                        f"{(i * 7) % 10}.", f"The sky over doc {i} is grey."],
             "question": f"What is the code of {fruits[i]}?", "answer": [str(i)], "support": []} for i in range(n)]


def _train(overrides: list[str]) -> MetaTrainer:
    cfg = load_config("tiny", [*OVERRIDES, *overrides, f"train.max_steps={STEPS}"])
    trainer = MetaTrainer(cfg, _records(), [])
    for _ in range(STEPS):
        trainer.run_step()
    return trainer


def _worker(rank: int, port: int, out: str) -> None:
    """Both ranks run every strategy in turn (one process start-up for all of them)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    results = {}
    for strategy, overrides in STRATEGIES.items():
        trainer = _train(overrides)
        results[strategy] = {"meta": {k: v.detach().clone() for k, v in trainer.meta.state_dict().items()},
                             "frozen_at_rest": trainer.frozen_bytes_at_rest, "frozen_full": trainer.frozen_bytes_full,
                             "frozen_in_step": trainer.frozen_bytes_in_step(),
                             "gathers": trainer.strategy.gathers.gathers if trainer.strategy.gathers else 0}
    results["lockstep_error"] = _unequal_contexts_error()
    if rank == 0:
        torch.save(results, out)
    dist.barrier()
    dist.destroy_process_group()


def _unequal_contexts_error() -> str:
    """Full sharding with one short and one long context in a batch of 2: the ranks would run different numbers
    of micro-batches (and of weight gathers), so both must refuse the step instead of hanging."""
    records = [{"id": "short", "context": ["A short one."], "question": "Q?", "answer": ["a"], "support": []},
               {"id": "long", "context": ["A much longer context. " * 8], "question": "Q?", "answer": ["b"], "support": []}]
    cfg = load_config("tiny", [*OVERRIDES, *STRATEGIES["fsdp-full"], "inner.micro_batch_chunks=1", "outer.batch_size=2"])
    try:
        MetaTrainer(cfg, records, []).run_step()
    except ValueError as err:
        return str(err)
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("two") / "results.pt"
    mp.spawn(_worker, args=(_free_port(), str(path)), nprocs=2, join=True)
    return torch.load(path)


@pytest.fixture(scope="module")
def one_rank() -> dict[str, torch.Tensor]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: Qwen2's float32 norm/softmax round differently with other thread counts
    try:
        return _train(STRATEGIES["ddp"]).meta.state_dict()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_two_ranks_match_one_rank(one_rank, two_ranks, strategy):
    init = MetaTrainer(load_config("tiny", OVERRIDES), _records(), []).meta.state_dict()
    assert max(float((one_rank[k] - init[k]).abs().max()) for k in init) > 1e-4  # the steps really moved them
    two = two_ranks[strategy]["meta"]
    for key, value in one_rank.items():
        torch.testing.assert_close(two[key], value, rtol=1e-9, atol=1e-12, msg=f"{strategy}: {key}")


def test_fsdp_shards_the_frozen_decoder_weights_at_rest(two_ranks):
    fsdp, ddp = two_ranks["fsdp"], two_ranks["ddp"]
    assert ddp["frozen_at_rest"] == ddp["frozen_full"] == ddp["frozen_in_step"]
    assert fsdp["frozen_at_rest"] < 0.8 * fsdp["frozen_full"]  # layers halved; embeddings stay replicated
    assert fsdp["frozen_in_step"] == fsdp["frozen_full"]  # gathered for the whole step


def test_full_sharding_keeps_the_frozen_weights_sharded_during_the_step(two_ranks):
    full = two_ranks["fsdp-full"]
    # every linear and the embedding halved (norms and biases stay replicated), plus one gathered weight at a time:
    # here the embedding, 31% of this tiny model (about 7% of Qwen2.5-7B)
    assert full["frozen_at_rest"] < 0.55 * full["frozen_full"]
    assert full["frozen_in_step"] < 0.85 * full["frozen_full"]
    assert full["gathers"] > 0


def test_full_sharding_refuses_ranks_out_of_lockstep(two_ranks):
    assert "train.fsdp_full_shard=true needs every rank to run the same number of tasks and micro-batches" in \
        two_ranks["lockstep_error"]
