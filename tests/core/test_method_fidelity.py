"""The method as the paper and its official code define it, each item against an independent reference.

The references below recompute from scratch (one unpadded sequence at a time, explicit loops over positions) and
never call ``chunk_loss_sum``, so they check what the library computes, not that it agrees with itself.
"""

from __future__ import annotations

import pytest
import torch

from perk_ray.chunking import build_chunks, chunk_context, chunk_positions, cut_chunks, number_chunks
from perk_ray.config import load_config
from perk_ray.engine import PerkEngine
from perk_ray.errors import InputError
from perk_ray.inner_loop import InnerOptimizer, adapt
from perk_ray.meta import MetaParams, build_outer_optimizer, build_qa_batch, prepare_task
from perk_ray.model import base_forward, load_tokenizer, lora_forward
from perk_ray.prompts import question_prompt
from perk_ray.weighting import ACTIVATIONS
from tests.conftest import tiny_base, tiny_config

# 61 + 9 + 17 characters: with 24-token chunks the segments end in tails of 13, 9 and 17 tokens (unequal chunks)
SEGMENTS = ["The code of lemon is seven. The code of fig is two. Kiwi is six.", "Pear: one.",
            "Plum is four now."]


def _float64_setup(*overrides: str):
    cfg = tiny_config(
        "model.dtype=float64", "model.tiny.hidden_size=16", "model.tiny.num_layers=1", "model.tiny.num_heads=2",
        "model.tiny.num_kv_heads=1", "model.tiny.intermediate_size=32", "lora.rank=2", "inner.chunk_tokens=24",
        "inner.weighting_hidden=8", "inner.doc_ids=in_order", "inner.steps=1", "inner.truncation=0", *overrides,
    )
    base = tiny_base(cfg)
    meta = MetaParams.from_base(base, cfg)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # B != 0 and a non-constant weighting model, so that alignment and weights matter
        for p in meta.parameters():
            if p.ndim == 2 or (p.ndim == 1 and p.shape[0] != cfg.inner.steps):
                p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return cfg, base, meta


def _reference_inner_loss(cfg, base, meta, segments):
    """Mean over every context token (and each chunk's EOS) of weight(hidden at that token) * CE(that token)."""
    tok = base.tokenizer
    params = meta.init_params()
    total, count = 0.0, 0
    doc_id = 0
    for segment in segments:
        ids = tok.encode(" " + segment.strip(), add_special_tokens=False)
        for start in range(0, len(ids), cfg.inner.chunk_tokens):
            prefix = tok.encode(f"doc_{doc_id}:", add_special_tokens=False)
            row = torch.tensor([prefix + ids[start:start + cfg.inner.chunk_tokens] + [tok.eos_token_id]])
            logits = lora_forward(base, params, row).logits[0]
            hidden = base_forward(base, row, output_hidden_states=True).hidden_states[-1][0]
            for j in range(len(prefix), row.shape[1]):  # every target token after the prefix
                ce = -torch.log_softmax(logits[j - 1], dim=-1)[row[0, j]]
                weight = ACTIVATIONS[cfg.inner.weighting_activation](meta.weighting.net(hidden[j])).squeeze()
                total = total + weight * ce
                count += 1
            doc_id += 1
    return float(total.detach() / count)


def test_inner_loss_is_a_token_mean_weighted_at_the_predicted_token(float64_qwen):
    cfg, base, meta = _float64_setup("inner.micro_batch_chunks=2")
    chunks = build_chunks(base.tokenizer, SEGMENTS, cfg.inner.chunk_tokens, cfg.inner.max_context_tokens)
    lengths = chunks.loss_mask.sum(dim=1)
    assert lengths.max() > 2 * lengths.min()  # unequal chunks: a mean of chunk means would differ
    result = adapt(base, meta.init_params(), meta.lrs(), meta.weighting, chunks, cfg.inner, create_graph=False)
    assert result.losses[0] == pytest.approx(_reference_inner_loss(cfg, base, meta, SEGMENTS), rel=1e-10)


def test_unweighted_inner_loss_is_the_plain_token_mean(float64_qwen):
    cfg, base, meta = _float64_setup("inner.weighting=none")
    chunks = build_chunks(base.tokenizer, SEGMENTS, cfg.inner.chunk_tokens, cfg.inner.max_context_tokens)
    result = adapt(base, meta.init_params(), meta.lrs(), None, chunks, cfg.inner, create_graph=False)
    logits = lora_forward(base, meta.init_params(), chunks.input_ids, chunks.attention_mask).logits
    ces = []
    for r in range(chunks.num_chunks):
        n = int(chunks.attention_mask[r].sum())
        prefix = len(base.tokenizer.encode(f"doc_{r}:", add_special_tokens=False))
        ces += [-torch.log_softmax(logits[r, j - 1], -1)[chunks.input_ids[r, j]] for j in range(prefix, n)]
    assert result.losses[0] == pytest.approx(float(torch.stack(ces).mean()), rel=1e-10)


def test_segments_are_doc_prefix_natural_tokens_and_eos():
    tok = load_tokenizer("smollm2-135m")
    text = "Mary went back to the kitchen."
    chunks = build_chunks(tok, [text], chunk_tokens=128, max_context_tokens=1024)
    ids = chunks.input_ids[0, : int(chunks.attention_mask[0].sum())].tolist()
    prefix = tok.encode("doc_0:", add_special_tokens=False)
    assert ids == prefix + tok.encode(" " + text, add_special_tokens=False) + [tok.eos_token_id]
    assert ids[len(prefix)] == tok.encode(" Mary", add_special_tokens=False)[0]  # the word's own token, no lone space
    assert tok.decode(ids) == f"doc_0: {text}{tok.eos_token}"


def test_loss_mask_covers_exactly_the_segment_tokens_and_eos():
    tok = load_tokenizer("tiny")
    chunks = build_chunks(tok, ["abcdefghij", "xyz"], chunk_tokens=4, max_context_tokens=100)
    for r in range(chunks.num_chunks):
        n = int(chunks.attention_mask[r].sum())
        prefix = len(tok.encode(f"doc_{r}:"))
        expected = torch.zeros(chunks.input_ids.shape[1])
        expected[prefix - 1 : n - 1] = 1.0  # position t predicts token t+1: the segment tokens and the EOS
        torch.testing.assert_close(chunks.loss_mask[r], expected)
        assert chunks.input_ids[r, n - 1] == tok.eos_token_id
    # " abcdefghij" is 11 bytes -> 4 + 4 + 3; " xyz" -> 4; each chunk adds its EOS
    assert chunks.num_loss_tokens == 11 + 4 + 4
    assert chunks.num_context_tokens == 15


def test_packed_segments_are_joined_in_order_then_cut():
    tok = load_tokenizer("tiny")
    segments = ["abcdefghij", "xyz", "klmnop"]
    alone = build_chunks(tok, segments, chunk_tokens=8, max_context_tokens=100)
    packed = build_chunks(tok, segments, chunk_tokens=8, max_context_tokens=100, packed=True)

    def bodies(chunks):
        return [tok.decode(row[: int(m.sum())]).split(":", 1)[1].removesuffix(tok.eos_token)
                for row, m in zip(chunks.input_ids, chunks.attention_mask)]

    # one token per byte, each segment after one space: 11 + 4 + 7 = 22 tokens
    assert bodies(alone) == [" abcdefg", "hij", " xyz", " klmnop"]
    assert bodies(packed) == [" abcdefg", "hij xyz ", "klmnop"]
    assert packed.num_context_tokens == alone.num_context_tokens == 22
    assert packed.num_loss_tokens == 22 + 3  # every context token and one EOS per chunk


def test_chunk_positions_agree_with_the_cut():
    lengths = [5, 1, 9, 3]
    for packed in (False, True):
        segments = [list(range(100 * s, 100 * s + n)) for s, n in enumerate(lengths)]
        pieces = cut_chunks(segments, 4, packed)
        for ids, spans in zip(segments, chunk_positions(lengths, 4, packed)):
            assert [pieces[row][index] for row, index in spans] == ids
    assert [len(p) for p in cut_chunks([[0] * n for n in lengths], 4, packed=True)] == [4, 4, 4, 4, 2]


def test_pack_segments_reaches_meta_training_and_encoding():
    segments = ["Mary went to the hall.", "John is in the den."]  # 23 + 20 tokens with the leading spaces
    for packed, chunks in (("false", 4), ("true", 3)):  # 16+7, 16+4 alone; 16+16+11 packed
        cfg = tiny_config("inner.chunk_tokens=16", f"inner.pack_segments={packed}")
        task = prepare_task(load_tokenizer("tiny"), cfg, segments, ["Where is Mary?"], ["kitchen"])
        base = tiny_base(cfg)
        engine = PerkEngine(cfg, base, MetaParams.from_base(base, cfg))
        assert task.chunks.num_chunks == engine.encode(segments).num_chunks == chunks


def test_chunk_context_takes_layout_and_limit_from_the_inner_config():
    segments = ["Mary went to the hall.", "John is in the den."]  # 43 tokens
    cfg = tiny_config("inner.chunk_tokens=16", "inner.pack_segments=true", "inner.max_context_tokens=40")
    tok = load_tokenizer("tiny")
    with pytest.raises(InputError, match=r"43 tokens, over the limit inner.max_context_tokens=40"):
        chunk_context(tok, segments, cfg.inner)
    chunks = chunk_context(tok, segments, cfg.inner, max_context_tokens=1000)
    reference = build_chunks(tok, segments, 16, 1000, packed=True)
    assert chunks.num_chunks == 3 and torch.equal(chunks.input_ids, reference.input_ids)


def _doc_ids(tok, chunks) -> list[int]:
    texts = [tok.decode(row[: int(m.sum())]) for row, m in zip(chunks.input_ids, chunks.attention_mask)]
    return [int(t.split(":", 1)[0].removeprefix("doc_")) for t in texts]


def test_doc_ids_shuffle_is_a_seeded_permutation_that_keeps_chunk_contents():
    tok = load_tokenizer("tiny")
    text = "".join(chr(ord("a") + i % 26) for i in range(200))
    plain = build_chunks(tok, text, 8, 1000)
    orders = [_doc_ids(tok, build_chunks(tok, text, 8, 1000, "shuffled", torch.Generator().manual_seed(s)))
              for s in (0, 1)]
    assert _doc_ids(tok, plain) == list(range(plain.num_chunks))
    for order in orders:
        assert sorted(order) == list(range(plain.num_chunks)) and order != sorted(order)
    assert orders[0] != orders[1]
    shuffled = build_chunks(tok, text, 8, 1000, "shuffled", torch.Generator().manual_seed(0))

    def body(chunks, row):
        return tok.decode(chunks.input_ids[row][: int(chunks.attention_mask[row].sum())]).split(":", 1)[1]

    for r in range(plain.num_chunks):  # same chunk contents, in the same row order, only the ids change
        assert body(plain, r) == body(shuffled, r)


def test_increasing_doc_ids_keep_chunk_order_with_random_gaps():
    tok = load_tokenizer("tiny")
    text = "".join(chr(ord("a") + i % 26) for i in range(200))
    plain = build_chunks(tok, text, 8, 1000)
    draws = [_doc_ids(tok, build_chunks(tok, text, 8, 1000, "increasing", torch.Generator().manual_seed(s), 64))
             for s in (0, 1)]
    for ids in draws:
        assert len(ids) == plain.num_chunks
        assert all(a < b for a, b in zip(ids, ids[1:])) and 0 <= ids[0] and ids[-1] < 64
        assert ids != list(range(plain.num_chunks))
    assert draws[0] != draws[1]
    # more chunks than the range: the ids widen to 0 .. chunks - 1, still increasing
    assert number_chunks(5, "increasing", 3, torch.Generator().manual_seed(0)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="doc_ids='sorted'"):
        number_chunks(3, "sorted")


def test_configs_written_with_shuffle_chunks_still_load():
    assert load_config("tiny", ["inner.shuffle_chunks=false"]).inner.doc_ids == "in_order"
    assert load_config("tiny", ["inner.shuffle_chunks=true"]).inner.doc_ids == "shuffled"
    assert load_config("tiny").inner.doc_ids == "shuffled"  # the official default


def test_qa_labels_cover_the_response_and_eos_only():
    tok = load_tokenizer("tiny")
    qa = build_qa_batch(tok, 3, ["Where is Mary?", "Where?"], ["kitchen", "hall"], [["Mary went to the kitchen."],
                                                                                      ["x."]], use_support=True)
    for row, question in enumerate(["Where is Mary?", "Where?"]):
        prompt_len = len(tok.encode(question_prompt(3, question)))
        labels = qa.labels[row]
        assert (labels[:prompt_len] == -100).all()
        kept = labels[labels != -100]
        n = int(qa.attention_mask[row].sum())
        assert kept.tolist() == qa.input_ids[row, prompt_len:n].tolist()
        assert kept[-1] == tok.eos_token_id and (labels[n:] == -100).all()
    assert tok.decode(qa.labels[0][qa.labels[0] != -100][:-1]) == (
        " <support>Mary went to the kitchen.</support>\n<output>kitchen</output>")


def test_inner_adamw_update_is_m_hat_over_sqrt_v_hat_plus_eps():
    cfg = tiny_config("inner.eps=0.1", "inner.weight_decay=0.01")
    p = torch.tensor([0.5, -1.0, 2.0])
    g = torch.tensor([0.05, -0.3, 0.0])
    lr = torch.tensor([0.1])
    new = InnerOptimizer(cfg.inner, {"w": p}).step({"w": p}, [g], {"w": lr}, 0)["w"]
    # first step from zero moments: m_hat = g, v_hat = g^2
    expected = p - 0.1 * (g / (g.abs() + 0.1) + 0.01 * p)
    torch.testing.assert_close(new, expected)


@pytest.mark.parametrize("preset", ["gpt2", "qwen2.5-0.5b", "qwen2.5-7b"])
def test_official_presets_use_the_official_inner_settings(preset):
    inner = load_config(preset).inner
    assert (inner.optimizer, inner.betas, inner.weight_decay, inner.grad_clip, inner.weighting_normalize) == (
        "adamw", (0.9, 0.95), 0.01, None, False)
    assert (inner.steps, inner.truncation, inner.lr, inner.weighting_activation) == (4, 2, 5e-5, "softplus")


def test_official_defaults_and_outer_groups():
    cfg = load_config("qwen2.5-0.5b")
    base = tiny_base(tiny_config())
    meta = MetaParams.from_base(base, cfg)
    optimizer, _ = build_outer_optimizer(meta, cfg, 100)
    by_id = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    for name, param in meta.named_parameters():
        group = by_id[id(param)]
        if name.startswith("log_inner_lrs"):
            # a step of the log-rate moves a rate by the fraction a raw rate moves at the outer lr
            assert group["initial_lr"] == pytest.approx(cfg.outer.lr / cfg.inner.lr) and group["weight_decay"] == 0.0
        elif name.startswith("weighting.") and name.endswith(".bias"):
            assert group["weight_decay"] == 0.0
        else:
            assert group["weight_decay"] == cfg.outer.weight_decay and group["initial_lr"] == cfg.outer.lr
