"""Where a Serve replica's engine runs: CUDA when Ray gave the replica GPUs, the CPU otherwise, a clear error when
GPUs were given but torch has no CUDA. No Ray cluster is needed."""

from __future__ import annotations

import pytest
import torch

from perk_ray.checkpoint import save_meta_checkpoint
from perk_ray.config import load_config
from perk_ray.engine import PerkEngine
from perk_ray.errors import ConfigError
from serving.settings import engine_device, load_engine


def devices(engine: PerkEngine) -> set[str]:
    tensors = [*engine.base.model.parameters(), *engine.meta.parameters()]
    return {t.device.type for t in tensors}


def test_a_replica_without_gpus_runs_on_the_cpu():
    assert engine_device([], cuda_available=True) == "cpu"
    assert devices(load_engine(load_config("tiny"), engine_device([], cuda_available=False))) == {"cpu"}


def test_a_replica_with_gpus_runs_on_cuda():
    assert engine_device(["0"], cuda_available=True) == "cuda"


def test_gpus_without_cuda_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"given GPU\(s\) \[0\].*torch sees no CUDA device"):
        engine_device([0], cuda_available=False)


@pytest.mark.filterwarnings("ignore:.*meta parameter")  # loading a checkpoint into meta tensors is a no-op
def test_load_engine_puts_every_tensor_on_the_device(tmp_path):
    """The device is honoured with and without a checkpoint ("meta": any device but the CPU shows it)."""
    cfg = load_config("tiny")
    assert devices(load_engine(cfg, "meta")) == {"meta"}
    engine = PerkEngine.from_config(cfg)
    path = save_meta_checkpoint(tmp_path / "ckpt", engine.base, engine.meta, cfg)
    assert devices(load_engine(load_config("tiny", [f"serve.checkpoint={path}"]), "meta")) == {"meta"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_replica_answers_from_a_memory_handed_over_on_the_cpu():
    engine = load_engine(load_config("tiny"), engine_device([0], torch.cuda.is_available()))
    assert devices(engine) == {"cuda"}
    memory = engine.encode("The code of lemon is seven.").to("cpu")  # as the encoder hands it to the store
    assert len(engine.answer(memory, ["What is the code of lemon?"], max_new_tokens=4)) == 1
