"""The implementations the benchmarks compare and their inputs: the tasks (width, depth, heads, vocabulary,
buckets), a builder per implementation (`IMPLEMENTATIONS`: reformer-ko and its variants, raw reformer-pytorch,
transformers' Reformer, BERT / GPT-2 with SDPA), each returning the model and its loss function, and the random
batch of a case.
"""

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Task:
    """A model's kind and size, shared by every implementation of it."""

    name: str
    dim: int
    depth: int
    heads: int
    causal: bool
    vocab: int = 22000
    bucket: int = 64
    hashes: int = 4


TASKS = {
    task.name: task
    for task in (
        Task("mlm", dim=512, depth=6, heads=8, causal=False),
        Task("clm", dim=768, depth=12, heads=12, causal=True),
        # CPU stand-in for the causal LM: GPT-3 Small's width and heads, a quarter of its depth.
        Task("clm-3l", dim=768, depth=3, heads=12, causal=True),
        Task("tiny-mlm", dim=32, depth=2, heads=2, causal=False, vocab=500, bucket=16, hashes=2),
        Task("tiny-clm", dim=32, depth=2, heads=2, causal=True, vocab=500, bucket=16, hashes=2),
    )
}

# reformer-ko's variants, each as ReformerKoConfig overrides: adding one is a line here. The attention backends
# (eager, flex_attention), the masked LM's sparse prediction (the LM head only at the masked positions), and
# irreversible layers (no recomputation in the backward, activations kept: the speed and memory of reversibility).
REFORMER_KO_VARIANTS = {
    "reformer-ko": {},
    "reformer-ko-irreversible": {"reverse_thres": 2**30},
    "reformer-ko-sparse": {"sparse_prediction": True},
    "reformer-ko-flex": {"attn_implementation": "flex_attention"},
    "reformer-ko-flex-sparse": {"attn_implementation": "flex_attention", "sparse_prediction": True},
}
# Variants that run natively only on a GPU (elsewhere they run the eager attention: the CPU plan leaves them out),
# and those that differ from "reformer-ko" only for a masked LM.
GPU_ONLY = {"reformer-ko-flex", "reformer-ko-flex-sparse"}
MLM_ONLY = {"reformer-ko-sparse", "reformer-ko-flex-sparse"}


def padded_length(task, seq_len):
    """The Reformers' `max_position_embeddings`: the length rounded up to whole pairs of buckets."""
    multiple = 2 * task.bucket
    return math.ceil(seq_len / multiple) * multiple


def mlm_or_clm_loss(logits, labels, causal):
    """Cross-entropy at the labelled positions; a causal LM's logits predict the next token."""
    if causal:
        logits, labels = logits[:, :-1], labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))


def builtin_loss(model, input_ids, labels):
    """The loss a transformers model computes itself from `labels`."""
    return model(input_ids=input_ids, labels=labels).loss


def sparse_prediction_loss(model, input_ids, labels):
    """A reformer-ko masked LM's loss with the LM head only at the labelled positions, as reformer-ko's trainer asks
    for it (`sparse_prediction=True`) when the config has `sparse_prediction`."""
    return model(input_ids=input_ids, labels=labels, sparse_prediction=True).loss


def reformer_ko_config(task, seq_len, **overrides):
    from reformer_ko import ReformerKoConfig

    return ReformerKoConfig(
        vocab_size=task.vocab,
        hidden_size=task.dim,
        num_hidden_layers=task.depth,
        num_attention_heads=task.heads,
        max_position_embeddings=padded_length(task, seq_len),
        bucket_size=task.bucket,
        num_hashes=task.hashes,
        is_decoder=task.causal,
        **overrides,
    )


def build_reformer_ko(task, seq_len, overrides):
    """reformer-ko as a user builds it (tied LM head with its transform, segment embeddings, dropout 0.1)."""
    from reformer_ko import ReformerKoForCausalLM, ReformerKoForMaskedLM

    head = ReformerKoForCausalLM if task.causal else ReformerKoForMaskedLM
    model = head(reformer_ko_config(task, seq_len, **overrides))
    return model, sparse_prediction_loss if model.config.sparse_prediction and not task.causal else builtin_loss


def build_reformer_ko_matched(task, seq_len):
    """reformer-ko with raw ReformerLM's structure where it can have it: no segment embeddings, no embedding dropout,
    an untied decoder straight after the final LayerNorm (the LM-head transform is replaced here, not in the model).
    What stays different is the padding-safe attention itself."""
    model, loss = build_reformer_ko(
        task, seq_len, dict(type_vocab_size=0, tie_word_embeddings=False, hidden_dropout_prob=0.0)
    )
    model.lm_head.dense = model.lm_head.activation = model.lm_head.layer_norm = nn.Identity()
    return model, loss


def build_reformer_ko_matched_rp_attention(task, seq_len):
    """`reformer-ko-matched` with reformer-pytorch's own `LSHAttention` swapped back in: what is left of the
    overhead is the wrapper (model code and reversible sequence), not the padding-safe attention."""
    from reformer_pytorch.reformer_pytorch import LSHAttention, LSHSelfAttention

    model, loss = build_reformer_ko_matched(task, seq_len)
    for module in model.modules():
        if isinstance(module, LSHSelfAttention):
            module.lsh_attn = LSHAttention(bucket_size=task.bucket, n_hashes=task.hashes, causal=task.causal)
    return model, loss


def build_reformer_pytorch(task, seq_len):
    """Raw `reformer_pytorch.ReformerLM`: rotary positions, no dropout, untied output layer (its defaults), with
    reformer-ko's chunking (ff_chunks 1, attn_chunks 1)."""
    from reformer_pytorch import ReformerLM

    model = ReformerLM(
        num_tokens=task.vocab,
        dim=task.dim,
        depth=task.depth,
        max_seq_len=padded_length(task, seq_len),
        heads=task.heads,
        dim_head=task.dim // task.heads,
        bucket_size=task.bucket,
        n_hashes=task.hashes,
        ff_chunks=1,
        attn_chunks=1,
        causal=task.causal,
    )

    def loss(model, input_ids, labels):
        return mlm_or_clm_loss(model(input_ids), labels, task.causal)

    return model, loss


def build_hf_reformer(task, seq_len):
    """transformers' `ReformerForMaskedLM` / `ReformerModelWithLMHead`: every layer LSH, same chunk (= bucket),
    hashes and buckets as reformer-pytorch, GELU feed-forward 4x, axial positions whose shape multiplies to the
    sequence length (transformers requires that in training), no dropout."""
    from transformers import ReformerConfig, ReformerForMaskedLM, ReformerModelWithLMHead

    length = padded_length(task, seq_len)
    config = ReformerConfig(
        vocab_size=task.vocab,
        hidden_size=task.dim,
        num_attention_heads=task.heads,
        attention_head_size=task.dim // task.heads,
        attn_layers=["lsh"] * task.depth,
        feed_forward_size=4 * task.dim,
        hidden_act="gelu",
        lsh_attn_chunk_length=task.bucket,
        num_hashes=task.hashes,
        num_buckets=length // task.bucket,
        axial_pos_embds=True,
        axial_pos_shape=(length // task.bucket, task.bucket),
        axial_pos_embds_dim=(task.dim // 4, task.dim - task.dim // 4),
        max_position_embeddings=length,
        hidden_dropout_prob=0.0,
        lsh_attention_probs_dropout_prob=0.0,
        local_attention_probs_dropout_prob=0.0,
        is_decoder=task.causal,
        pad_token_id=0,
        eos_token_id=None,
    )
    head = ReformerModelWithLMHead if task.causal else ReformerForMaskedLM
    return head(config), builtin_loss


def build_sdpa(task, seq_len):
    """`BertForMaskedLM` / `GPT2LMHeadModel`, `attn_implementation="sdpa"` (flash attention on a GPU), no dropout."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, BertConfig, GPT2Config

    if task.causal:
        config = GPT2Config(
            vocab_size=task.vocab,
            n_embd=task.dim,
            n_layer=task.depth,
            n_head=task.heads,
            n_positions=seq_len,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=task.vocab - 1,
            eos_token_id=task.vocab - 1,
        )
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    else:
        config = BertConfig(
            vocab_size=task.vocab,
            hidden_size=task.dim,
            num_hidden_layers=task.depth,
            num_attention_heads=task.heads,
            intermediate_size=4 * task.dim,
            max_position_embeddings=seq_len,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        model = AutoModelForMaskedLM.from_config(config, attn_implementation="sdpa")
    if model.config._attn_implementation != "sdpa":
        raise RuntimeError(f"asked for sdpa attention, got {model.config._attn_implementation!r}")
    return model, builtin_loss


IMPLEMENTATIONS = {
    **{name: partial(build_reformer_ko, overrides=overrides) for name, overrides in REFORMER_KO_VARIANTS.items()},
    "reformer-ko-matched": build_reformer_ko_matched,
    "reformer-pytorch": build_reformer_pytorch,
    "hf-reformer": build_hf_reformer,
    "sdpa": build_sdpa,
}


def copy_into_reformer_pytorch(matched, raw):
    """Load a `reformer-ko-matched` model's weights into a raw `ReformerLM` of the same configuration."""
    renames = [
        ("reformer.embeddings.word_embeddings.", "token_emb."),
        ("reformer.rotary.", "layer_pos_emb."),
        ("reformer.encoder.", "reformer."),
        ("reformer.layer_norm.", "norm."),
        ("lm_head.decoder.", "out.1."),
    ]
    state = {}
    for name, tensor in matched.state_dict().items():
        for old, new in renames:
            if name.startswith(old):
                state[new + name[len(old) :]] = tensor
                break
    # Raw reformer-pytorch registers every layer a second time under `irrev_blocks` (the same modules, which
    # loading `blocks` fills); reformer-ko registers each layer once.
    missing, unexpected = raw.load_state_dict(state, strict=False)
    not_loaded = [key for key in missing if ".irrev_blocks." not in key]
    if not_loaded or unexpected:
        raise RuntimeError(f"ReformerLM weights not loaded: {not_loaded}; not ReformerLM's: {unexpected}")


def make_batch(task, seq_len, batch, device, seed=0):
    """Random ids (never 0, the padding id) and labels: every next token for a causal LM, 15% of positions for MLM."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, task.vocab, (batch, seq_len), generator=generator)
    labels = input_ids.clone()
    if not task.causal:
        labels[torch.rand(batch, seq_len, generator=generator) >= 0.15] = -100
    return input_ids.to(device), labels.to(device)


def import_libraries():
    """Import every implementation's library up front, so that a case's memory is its model and step."""
    import reformer_ko  # noqa: F401
    import reformer_pytorch  # noqa: F401
    from transformers import BertForMaskedLM, GPT2LMHeadModel, ReformerForMaskedLM, ReformerModelWithLMHead  # noqa: F401
