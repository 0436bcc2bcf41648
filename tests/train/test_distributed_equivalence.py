"""2 ranks (gloo, float64) give the same meta-parameters as 1 rank on the same global batches: ddp, fsdp (sharded at
rest, and fully sharded during the step, on Qwen2 and GPT-2), cp (also on contexts of one chunk, where a rank has no
chunks). Every collective runs on the model's device, through ``perk_ray.train.collectives``."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from perk_ray.config import load_config
from perk_ray.tokenizer import build_byte_tokenizer
from perk_ray.train.loop import MetaTrainer

STEPS = 2
# full sharding needs the ranks in lockstep: one micro-batch per task (the 1-rank reference uses 2 chunks per
# micro-batch)
STRATEGIES = {"ddp": ["train.strategy=ddp"], "fsdp": ["train.strategy=fsdp"], "cp": ["train.strategy=cp"],
              "fsdp-full": ["train.strategy=fsdp", "train.fsdp_full_shard=true", "inner.micro_batch_chunks=16"]}
OVERRIDES = ["model.dtype=float64", "model.tiny.hidden_size=32", "model.tiny.num_layers=2",
             "model.tiny.intermediate_size=64", "lora.rank=4", "inner.chunk_tokens=16", "inner.micro_batch_chunks=2",
             "outer.batch_size=4", "outer.lr=0.01", "inner.doc_ids=shuffled"]
# contexts of one chunk: under cp one of the two ranks has no chunk of any context
ONE_CHUNK = ["train.strategy=cp", "inner.chunk_tokens=64"]
GPT2 = [*STRATEGIES["fsdp-full"], "lora.target_modules=[c_attn, c_proj, c_fc]"]
COLLECTIVES = ("all_reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter_tensor", "broadcast", "reduce")


def _records(n: int = 8) -> list[dict]:
    fruits = ["lemon", "apple", "pear", "fig", "kiwi", "plum", "lime", "date"]
    return [{"id": f"r{i}", "context": [f"The code of {fruits[i]} is {i}. The code of {fruits[(i + 3) % 8]} is "
                                        f"{(i * 7) % 10}.", f"The sky over doc {i} is grey."],
             "question": f"What is the code of {fruits[i]}?", "answer": [str(i)], "support": []} for i in range(n)]


def _one_chunk_records(n: int = 8) -> list[dict]:
    return [{"id": f"c{i}", "context": [f"The code of item {i} is {(i * 7) % 10}."], "question": f"Code of item {i}?",
             "answer": [str((i * 7) % 10)], "support": []} for i in range(n)]


def _tiny_gpt2(directory: Path) -> Path:
    """A random 2-layer GPT-2 (Conv1D projections) over the byte tokenizer, as a pre-trained base directory."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(build_byte_tokenizer()), n_positions=128, n_embd=32, n_layer=2, n_head=4,
                        n_inner=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


def _train(overrides: list[str], records: list[dict] | None = None) -> MetaTrainer:
    cfg = load_config("tiny", [*OVERRIDES, *overrides, f"train.max_steps={STEPS}"])
    trainer = MetaTrainer(cfg, records or _records(), [])
    for _ in range(STEPS):
        trainer.run_step()
    return trainer


def _meta(trainer: MetaTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.meta.state_dict().items()}


def _record_collectives(calls: list[tuple[str, str]]) -> None:
    """Wrap torch.distributed's collectives: record (device of each tensor handed over, file of the direct caller)."""
    for name in COLLECTIVES:
        original = getattr(dist, name)

        def recording(*args, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            for arg in [*args, *kwargs.values()]:
                for t in arg if isinstance(arg, (list, tuple)) else [arg]:
                    if isinstance(t, torch.Tensor):
                        calls.append((str(t.device), caller))
            return _original(*args, **kwargs)

        setattr(dist, name, recording)


def _worker(rank: int, port: int, out: str, gpt2_dir: str) -> None:
    """Both ranks run every strategy in turn (one process start-up for all of them)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    calls: list[tuple[str, str]] = []
    _record_collectives(calls)
    results = {}
    for strategy, overrides in STRATEGIES.items():
        trainer = _train(overrides)
        results[strategy] = {"meta": _meta(trainer),
                             "frozen_at_rest": trainer.frozen_bytes_at_rest, "frozen_full": trainer.frozen_bytes_full,
                             "frozen_in_step": trainer.frozen_bytes_in_step(),
                             "gathers": trainer.strategy.gathers.gathers if trainer.strategy.gathers else 0}
    results["cp-one-chunk"] = {"meta": _meta(_train(ONE_CHUNK, _one_chunk_records()))}
    gpt2 = _train([*GPT2, f"model.pretrained_dir={gpt2_dir}"])
    results["gpt2-full-shard"] = {"meta": _meta(gpt2), "frozen_at_rest": gpt2.frozen_bytes_at_rest,
                                  "frozen_full": gpt2.frozen_bytes_full}
    results["lockstep_error"] = _unequal_contexts_error()
    results["collectives"] = calls
    results["model_device"] = str(gpt2.base.device)
    if rank == 0:
        torch.save(results, out)
    dist.barrier()
    dist.destroy_process_group()


def _unequal_contexts_error() -> str:
    """Full sharding with one short and one long context in a batch of 2: the ranks would run different numbers
    of micro-batches (and of weight gathers), so both must refuse the step instead of hanging."""
    records = [{"id": "short", "context": ["A short one."], "question": "Q?", "answer": ["a"], "support": []},
               {"id": "long", "context": ["A much longer context. " * 8], "question": "Q?", "answer": ["b"],
                "support": []}]
    cfg = load_config("tiny", [*OVERRIDES, *STRATEGIES["fsdp-full"], "inner.micro_batch_chunks=1",
                               "outer.batch_size=2"])
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
def gpt2_dir(tmp_path_factory) -> Path:
    return _tiny_gpt2(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, gpt2_dir) -> dict:
    path = tmp_path_factory.mktemp("two") / "results.pt"
    mp.spawn(_worker, args=(_free_port(), str(path), str(gpt2_dir)), nprocs=2, join=True)
    return torch.load(path)


def _one_rank(overrides: list[str], records: list[dict] | None = None) -> dict[str, torch.Tensor]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: Qwen2's float32 norm/softmax round differently with other thread counts
    try:
        return _train(overrides, records).meta.state_dict()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_rank() -> dict[str, torch.Tensor]:
    return _one_rank(STRATEGIES["ddp"])


def _assert_equal(two: dict[str, torch.Tensor], one: dict[str, torch.Tensor], what: str) -> None:
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-9, atol=1e-12, msg=f"{what}: {key}")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_two_ranks_match_one_rank(one_rank, two_ranks, strategy):
    init = MetaTrainer(load_config("tiny", OVERRIDES), _records(), []).meta.state_dict()
    assert max(float((one_rank[k] - init[k]).abs().max()) for k in init) > 1e-4  # the steps really moved them
    _assert_equal(two_ranks[strategy]["meta"], one_rank, strategy)


def test_context_parallelism_with_a_rank_without_chunks_matches_one_rank(two_ranks):
    """Contexts of one chunk over 2 cp ranks: rank 1 has no chunks, contributes zero inner gradients and still joins
    every all-reduce (forward and backward)."""
    _assert_equal(two_ranks["cp-one-chunk"]["meta"], _one_rank(ONE_CHUNK, _one_chunk_records()), "cp-one-chunk")


def test_full_sharding_shards_gpt2_conv1d_and_matches_one_rank(two_ranks, gpt2_dir):
    one = _one_rank(["train.strategy=ddp", *GPT2[1:], f"model.pretrained_dir={gpt2_dir}"])
    full = two_ranks["gpt2-full-shard"]
    _assert_equal(full["meta"], one, "gpt2-full-shard")
    assert full["frozen_at_rest"] < 0.55 * full["frozen_full"]  # the Conv1D weights too (embeddings alone: 0.79)


def test_every_collective_runs_on_the_model_device_through_one_helper(two_ranks):
    """NCCL refuses CPU tensors: no host tensor may reach a collective, and perk-ray issues its collectives from
    ``perk_ray/train/collectives.py`` only (torch's own, FSDP2's and the differentiable all-reduce's, are torch's)."""
    calls = two_ranks["collectives"]
    assert calls and {device for device, _ in calls} == {two_ranks["model_device"]}
    package = str(Path(__file__).parents[2] / "perk_ray")
    direct = {caller for _, caller in calls if caller.startswith(package)}
    assert direct == {os.path.join(package, "train", "collectives.py")}


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
