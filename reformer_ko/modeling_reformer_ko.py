"""reformer-ko models: reformer-pytorch's Reformer (LSH attention, reversible layers, chunked feed-forward) as
Hugging Face `PreTrainedModel`s with masked-LM, causal-LM, ELECTRA, question-answering and classification heads.

This file is self-contained apart from its configuration, so that it travels to the Hub as remote code.

Three changes to reformer-pytorch, each in a subclass of the one module that needs it:
- `PaddingSafeLSHAttention`: results do not depend on how much padding a batch has, and eval mode is
  deterministic (seeded rotations); `FlexLSHAttention` computes the same function with FlexAttention
  (`attn_implementation="flex_attention"`);
- `ReformerKoReversibleSequence`: the reversible backward pass re-enters the forward's autocast state, so under
  bf16/fp16 it recomputes the blocks in the forward's precision rather than in fp32;
- `ReformerKoEncoder`: builds reformer-pytorch's `Reformer` from a `ReformerKoConfig` and swaps in the two above.
The parameters and their names are reformer-pytorch's own.
"""

import contextlib
import functools
import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from axial_positional_embedding import AxialPositionalEmbedding
from reformer_pytorch.reformer_pytorch import (
    TOKEN_SELF_ATTN_VALUE,
    FixedPositionalEmbedding,
    LSHAttention,
    LSHSelfAttention,
    Reformer,
    apply_rotary_pos_emb,
    batched_index_select,
    max_neg_value,
)
from reformer_pytorch.reversible import ReversibleSequence
from safetensors import SafetensorError
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from transformers import GenerationMixin, PreTrainedModel, StoppingCriteria, StoppingCriteriaList
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutput,
    CausalLMOutput,
    MaskedLMOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils import ModelOutput, logging

from .configuration_reformer_ko import ReformerKoConfig

try:
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
except ImportError:  # a torch without FlexAttention: the "flex_attention" backend runs the eager attention
    BlockMask = flex_attention = None
try:
    from torch.nn.attention.flex_attention import AuxRequest
except ImportError:  # older FlexAttention returns the log-sum-exp through `return_lse` instead
    AuxRequest = None

logger = logging.get_logger(__name__)


# LSH attention ---------------------------------------------------------------------------------------------------


def look_one_back(x):
    """Concatenate each chunk (dim 1) with the chunk before it along dim 2, as reformer-pytorch does."""
    return torch.cat([x, torch.cat([x[:, -1:], x[:, :-1]], dim=1)], dim=2)


class PaddingSafeLSHAttention(LSHAttention):
    """reformer-pytorch's `LSHAttention` (same parameters, hashing and chunking) made independent of padding.

    In reformer-pytorch, padding changes the outputs of real tokens: the number of buckets follows the padded
    length, padding is hashed and sorted among real tokens, and the first chunk of a hash round looks back into
    the previous round. Here the number of buckets is fixed by the config, padding goes to an extra bucket that
    sorts after every real token of its round, no chunk looks back across a round boundary, and the self-attention
    score only applies where nothing else masks the pair. In eval mode the random rotations come from a generator
    seeded with `hash_seed` (drawn on the CPU), so outputs are deterministic and alike on CPU and GPU.
    """

    def __init__(self, *, num_buckets, hash_seed, **kwargs):
        super().__init__(**kwargs)
        self.num_buckets = num_buckets
        self.hash_seed = hash_seed
        self._eval_rotations = {}

    def random_rotations(self, dim, device, dtype):
        shape = (dim, self.n_hashes, self.num_buckets // 2)
        if self.training:
            return torch.randn(shape, device=device, dtype=dtype)
        key = (dim, device, dtype)
        if key not in self._eval_rotations:
            generator = torch.Generator().manual_seed(self.hash_seed)
            self._eval_rotations[key] = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
        return self._eval_rotations[key]

    def hash_vectors(self, vecs, input_mask):
        """Bucket ids of shape (batch, n_hashes * seqlen), offset per round; padding gets the round's last bucket."""
        batch_size, _, dim = vecs.shape
        rotations = self.random_rotations(dim, vecs.device, vecs.dtype)
        rotated = torch.einsum("btf,fhi->bhti", self.dropout_for_hash(vecs), rotations)
        buckets = torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)
        if input_mask is not None:
            buckets = buckets.masked_fill(~input_mask[:, None, :], self.num_buckets)
        offsets = torch.arange(self.n_hashes, device=vecs.device) * (self.num_buckets + 1)
        return (buckets + offsets[None, :, None]).reshape(batch_size, -1)

    def forward(self, qk, v, query_len=None, input_mask=None, input_attn_mask=None, pos_emb=None, **kwargs):
        batch_size, seqlen, dim = qk.shape
        device = qk.device
        is_reverse = kwargs.pop("_reverse", False)
        depth = kwargs.pop("_depth", None)
        bucket_cache = kwargs.pop("_bucket_cache", None)
        if seqlen % self.bucket_size:
            raise ValueError(f"Sequence length {seqlen} must be a multiple of bucket_size {self.bucket_size}.")

        # The reversible backward pass reuses the forward's buckets: recomputed activations carry rounding error
        # that could move a token to another bucket. The cache is a FIFO per layer because attention may run in
        # several chunks (attn_chunks), each hashed separately.
        if is_reverse and bucket_cache is not None:
            buckets = bucket_cache[depth].pop(0)
        else:
            buckets = self.hash_vectors(qk, input_mask)
            if bucket_cache is not None:
                bucket_cache.setdefault(depth, []).append(buckets)

        # reformer-pytorch's sort by (bucket, position), in fewer kernels: the keys are all distinct (bucket ids are
        # offset per round), so argsort gives its permutation, and a scatter inverts it without a second sort.
        n_hashes = self.n_hashes
        ticker = torch.arange(n_hashes * seqlen, device=device).expand_as(buckets)
        sticker = (seqlen * buckets + ticker % seqlen).argsort(dim=-1)
        undo_sort = torch.empty_like(sticker).scatter_(-1, sticker, ticker)

        if pos_emb is not None:
            qk = apply_rotary_pos_emb(qk, pos_emb)

        st = sticker % seqlen
        bo, lse = self.attend_sorted(batched_index_select(qk, st), batched_index_select(v, st), st, input_mask)

        # Unsort, then combine the hash rounds weighted by each round's normaliser. A softmax, not reformer-pytorch's
        # exp(lse - logsumexp(lse)): for a token that sees only itself every round's lse is the -5e4 self-score,
        # where an fp32 logsumexp is rounded by up to 2e-3, and the weights summed to 1.0017 instead of 1.
        o = batched_index_select(bo, undo_sort)
        logits = lse.gather(1, undo_sort)
        o = o.reshape(batch_size, n_hashes, seqlen, dim)
        logits = logits.reshape(batch_size, n_hashes, seqlen, 1)
        probs = torch.softmax(logits, dim=1)
        # In the values' dtype: FlexAttention's log-sum-exp is always fp32, and a bf16 model needs bf16 outputs.
        out = torch.sum(o * probs, dim=1).to(o.dtype)
        return out, torch.empty(0, device=device), buckets

    def attend_sorted(self, bq, bv, st, input_mask):
        """Attention within each chunk and the one before it, over the bucket-sorted rounds.

        `bq`, `bv`: (batch, n_hashes * seqlen, dim) queries/keys and values in sorted order; `st`: their original
        positions; `input_mask`: (batch, seqlen) or None. Returns the outputs in sorted order and each query's
        log-sum-exp of its scores, (batch, n_hashes * seqlen).
        """
        batch_size, total, dim = bq.shape
        seqlen = total // self.n_hashes
        n_chunks = total // self.bucket_size
        bq_t = st.reshape(batch_size, n_chunks, -1)
        bq = bq.reshape(batch_size, n_chunks, -1, dim)
        bv = bv.reshape(batch_size, n_chunks, -1, dim)
        bk = F.normalize(bq, p=2, dim=-1).type_as(bq)
        bk, bv, bkv_t = look_one_back(bk), look_one_back(bv), look_one_back(bq_t)

        dots = torch.einsum("bhie,bhje->bhij", bq, bk) * (dim**-0.5)

        # The self-score first, so that every later fill overrides it where the pair may not attend: never across a
        # hash-round boundary, never to or from padding, and for a decoder never to a later position. (One
        # full-size fill fewer than masking "self and allowed": the bidirectional step costs 2% less.)
        masked = max_neg_value(dots)
        dots.masked_fill_(bq_t[:, :, :, None] == bkv_t[:, :, None, :], TOKEN_SELF_ATTN_VALUE)
        chunks_per_round = seqlen // self.bucket_size
        by_round = dots.view(batch_size, self.n_hashes, chunks_per_round, self.bucket_size, 2 * self.bucket_size)
        by_round[:, :, 0, :, self.bucket_size :] = masked
        if input_mask is not None:
            mq = input_mask.gather(1, st).reshape(batch_size, n_chunks, -1)
            dots.masked_fill_(~(mq[:, :, :, None] & look_one_back(mq)[:, :, None, :]), masked)
        if self.causal:
            dots.masked_fill_(bq_t[:, :, :, None] < bkv_t[:, :, None, :], masked)

        dots_logsumexp = torch.logsumexp(dots, dim=-1, keepdim=True)
        dots = torch.exp(dots - dots_logsumexp).type_as(dots)
        bo = torch.einsum("buij,buje->buie", self.dropout(dots), bv)
        return bo.reshape(batch_size, -1, dim), dots_logsumexp.reshape(batch_size, -1)


# FlexAttention's block-sparse kernels skip whole tiles of this many queries x keys; every kernel configuration
# divides 128, whatever the bucket size (a tile may then hold parts of several chunks: `mask_mod` is exact).
FLEX_BLOCK_SIZE = 128


@functools.lru_cache(maxsize=64)
def flex_block_structure(seqlen, bucket_size, device):
    """FlexAttention's block mask layout (`kv_num_blocks`, `kv_indices`) for "each chunk and the one before it"
    within one hash round, broadcast over batch and rounds. Cached: a copy to the GPU in every layer would stall it."""
    n_blocks = -(-seqlen // FLEX_BLOCK_SIZE)
    first_query = torch.arange(n_blocks) * FLEX_BLOCK_SIZE
    last_query = (first_query + FLEX_BLOCK_SIZE).clamp(max=seqlen) - 1
    first_key = ((first_query // bucket_size - 1) * bucket_size).clamp(min=0)
    last_key = (last_query // bucket_size + 1) * bucket_size - 1
    first_block, last_block = first_key // FLEX_BLOCK_SIZE, last_key // FLEX_BLOCK_SIZE
    count = last_block - first_block + 1
    # One row of indices per query tile, as wide as the number of key tiles (BlockMask's layout); past `count`
    # the entries are unused.
    indices = torch.minimum(first_block[:, None] + torch.arange(n_blocks)[None, :], last_block[:, None])
    return count.to(device, torch.int32)[None, None], indices.to(device, torch.int32)[None, None].contiguous()


def flex_lsh_attention(query, key, value, positions, n_real, kv_num_blocks, kv_indices, bucket_size, causal):
    """`PaddingSafeLSHAttention.attend_sorted` with FlexAttention: inputs (batch, n_hashes, seqlen, dim), one hash
    round per head, so that no chunk looks back into another round. `positions` are the tokens' original positions,
    `n_real` the number of real tokens per row (they sort before the padding of each round). Returns the output and
    each query's natural-log log-sum-exp; a query with nothing to attend to (padding) gets 0 and -inf."""
    seqlen = query.shape[-2]

    def mask_mod(b, h, q_idx, kv_idx):
        q_chunk, kv_chunk = q_idx // bucket_size, kv_idx // bucket_size
        allowed = ((kv_chunk == q_chunk) | (kv_chunk == q_chunk - 1)) & (q_idx < n_real[b]) & (kv_idx < n_real[b])
        if causal:
            allowed = allowed & (positions[b, h, q_idx] >= positions[b, h, kv_idx])
        return allowed

    # Applied before the mask, so a token's own score is -5e4 only where the pair is otherwise allowed.
    def score_mod(score, b, h, q_idx, kv_idx):
        return torch.where(q_idx == kv_idx, TOKEN_SELF_ATTN_VALUE, score)

    block_mask = BlockMask.from_kv_blocks(
        kv_num_blocks, kv_indices, BLOCK_SIZE=FLEX_BLOCK_SIZE, mask_mod=mask_mod, seq_lengths=(seqlen, seqlen)
    )
    scale = query.shape[-1] ** -0.5
    if AuxRequest is None:
        return flex_attention(query, key, value, score_mod, block_mask, scale, return_lse=True)
    out, aux = flex_attention(query, key, value, score_mod, block_mask, scale, return_aux=AuxRequest(lse=True))
    return out, aux.lse


# Why FlexAttention cannot run on a device type, the compiled kernels where it can, and which fallbacks were logged.
_flex_unavailable = {}
_compiled_flex_lsh_attention = {}
_flex_backward_checked = set()
_flex_fallbacks_logged = set()


def log_eager_fallback(situation, reason):
    """Say once per situation why the flex_attention backend runs the eager LSH attention."""
    if situation not in _flex_fallbacks_logged:
        _flex_fallbacks_logged.add(situation)
        logger.warning(
            f"attn_implementation='flex_attention' {situation}: {reason}. Running the eager LSH attention instead "
            "(the same function, slower)."
        )


def disable_flex_attention(device_type, reason):
    """Run the eager LSH attention on `device_type` from now on."""
    _flex_unavailable.setdefault(device_type, reason)
    log_eager_fallback(f"cannot run on {device_type}", reason)


def compiled_flex_lsh_attention(device_type):
    """The compiled `flex_lsh_attention` for `device_type`, or None where FlexAttention cannot run."""
    if device_type not in _flex_unavailable:
        if flex_attention is None:
            disable_flex_attention(device_type, f"this torch ({torch.__version__}) has no FlexAttention")
        elif device_type != "cuda":
            reason = "compiled FlexAttention there returns no log-sum-exp and has no backward"
            disable_flex_attention(device_type, reason)
        elif device_type not in _compiled_flex_lsh_attention:
            _compiled_flex_lsh_attention[device_type] = torch.compile(flex_lsh_attention, fullgraph=True)
    if device_type in _flex_unavailable:
        return None
    return _compiled_flex_lsh_attention[device_type]


class FlexLSHAttention(PaddingSafeLSHAttention):
    """`PaddingSafeLSHAttention` with the attention over the sorted rounds computed by compiled FlexAttention
    (`attn_implementation="flex_attention"`): the same function, hashing, sorting and round combination; only the
    chunked softmax is fused. Each chunk's keys are read in place rather than copied with the chunk before it,
    and the scores are never materialised.

    Where FlexAttention cannot run (a torch without it, a device other than CUDA, a kernel that fails to
    compile), and for attention dropout in training (FlexAttention has none), it runs the eager attention instead.
    Outputs at padding positions, which no real token reads, are 0 here rather than the eager average of values.
    """

    def attend_sorted(self, bq, bv, st, input_mask):
        if self.training and self.dropout.p > 0:
            log_eager_fallback("with lsh_dropout > 0 in training", "FlexAttention has no attention dropout")
            return super().attend_sorted(bq, bv, st, input_mask)
        kernel = compiled_flex_lsh_attention(bq.device.type)
        if kernel is None:
            return super().attend_sorted(bq, bv, st, input_mask)

        batch_size, total, dim = bq.shape
        seqlen = total // self.n_hashes
        # Under autocast the values come out of a linear layer in the autocast dtype; rotary positions may have
        # promoted the queries to fp32. The eager einsums cast both to the autocast dtype; so does this.
        query = bq.reshape(batch_size, self.n_hashes, seqlen, dim)
        key = F.normalize(query, p=2, dim=-1).to(bv.dtype)
        query = query.to(bv.dtype)
        value = bv.reshape(batch_size, self.n_hashes, seqlen, dim)
        positions = st.reshape(batch_size, self.n_hashes, seqlen)
        if input_mask is None:
            n_real = torch.full((batch_size,), seqlen, device=bq.device)
        else:
            n_real = input_mask.sum(dim=-1)
        args = (query, key, value, positions, n_real, *flex_block_structure(seqlen, self.bucket_size, bq.device))
        try:
            self.check_backward(kernel, args)
            out, lse = kernel(*args, self.bucket_size, self.causal)
        except torch.OutOfMemoryError:
            raise
        except Exception as error:  # e.g. a kernel that does not compile on this GPU: the same function, eagerly
            disable_flex_attention(bq.device.type, f"FlexAttention failed ({type(error).__name__}: {error})")
            return super().attend_sorted(bq, bv, st, input_mask)
        # Padding queries attend to nothing: output 0, lse -inf. Any finite lse keeps their round weights finite.
        lse = lse.masked_fill(lse == float("-inf"), 0.0)
        return out.reshape(batch_size, total, dim), lse.reshape(batch_size, total)

    def check_backward(self, kernel, args):
        """Before the first use that needs gradients (per device, dtype and causality), run the kernel's backward on a
        copy of the inputs: the backward kernel compiles lazily, and a failure inside `loss.backward()` could no
        longer fall back to the eager attention."""
        query, key, value = args[:3]
        check = (query.device.type, query.dtype, self.causal)
        if check in _flex_backward_checked or not torch.is_grad_enabled():
            return
        if not (query.requires_grad or key.requires_grad or value.requires_grad):
            return
        inputs = [tensor.detach().requires_grad_() for tensor in (query, key, value)]
        out, lse = kernel(*inputs, *args[3:], self.bucket_size, self.causal)
        torch.autograd.grad(out.float().sum() + lse.masked_fill(lse == float("-inf"), 0.0).sum(), inputs)
        _flex_backward_checked.add(check)


# Reversible layers -----------------------------------------------------------------------------------------------


def autocast_states(device_type):
    """The autocast settings in force for the CPU and `device_type`, to re-enter them later."""
    device_types = ["cpu"] if device_type == "cpu" else ["cpu", device_type]
    return [
        dict(device_type=kind, enabled=torch.is_autocast_enabled(kind), dtype=torch.get_autocast_dtype(kind))
        for kind in device_types
    ]


class _AutocastReversibleFunction(torch.autograd.Function):
    """reformer-pytorch's `_ReversibleFunction`, with the backward pass run under the forward's autocast state
    (as `torch.utils.checkpoint` does): the recomputed activations then match the forward's."""

    @staticmethod
    def forward(ctx, x, blocks, kwargs):
        ctx.autocast_states = autocast_states(x.device.type)
        for block in blocks:
            x = block(x, **kwargs)
        ctx.y = x.detach()
        ctx.blocks = blocks
        ctx.kwargs = kwargs
        return x

    @staticmethod
    def backward(ctx, dy):
        y = ctx.y
        with contextlib.ExitStack() as stack:
            for state in ctx.autocast_states:
                stack.enter_context(torch.autocast(**state))
            for block in ctx.blocks[::-1]:
                # An eval-mode forward records no RNG state for the recomputation to replay (reformer-pytorch then
                # fails on None); nothing is random in eval mode, so any state will do.
                for function in (block.f, block.g):
                    if function.cpu_state is None:
                        function.record_rng(y)
                y, dy = block.backward_pass(y, dy.to(y.dtype), **ctx.kwargs)
        return dy, None, None


class ReformerKoReversibleSequence(ReversibleSequence):
    """reformer-pytorch's `ReversibleSequence` with an autocast-aware backward, per-layer hidden states, and layer
    dropout that picks from the irreversible blocks on the irreversible path."""

    def forward(self, x, output_hidden_states=False, **kwargs):
        indices = list(range(len(self.blocks)))
        if self.training and self.layer_dropout > 0:
            keep = torch.empty(len(indices)).uniform_(0, 1) >= self.layer_dropout
            indices = [index for index in indices if keep[index]] or indices[:1]
        block_kwargs = {"f_args": kwargs, "g_args": {}}

        # Hidden states are asked for rarely (analysis, feature extraction): take the irreversible path, which
        # computes the same function and lets gradients reach every returned state.
        if x.shape[1] > self.reverse_thres and not output_hidden_states:
            if torch.is_grad_enabled():
                kwargs["_bucket_cache"] = {}
            blocks = [self.blocks[index] for index in indices]
            return _AutocastReversibleFunction.apply(x, blocks, block_kwargs), ()

        layer_states = []
        for index in indices:
            x = self.irrev_blocks[index](x, **block_kwargs)
            layer_states.append(x)
        return x, tuple(layer_states)


# The backends of `config._attn_implementation`, as transformers names them: the same function, interchangeable
# checkpoints.
LSH_ATTENTION_CLASSES = {"eager": PaddingSafeLSHAttention, "flex_attention": FlexLSHAttention}


class ReformerKoEncoder(Reformer):
    """reformer-pytorch's `Reformer` built from a `ReformerKoConfig`, with padding-safe LSH attention and the
    autocast-aware reversible sequence. Parameter names are reformer-pytorch's."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__(
            dim=config.hidden_size,
            depth=config.num_hidden_layers,
            heads=config.num_attention_heads,
            bucket_size=config.bucket_size,
            n_hashes=config.num_hashes,
            ff_chunks=config.ff_chunks,
            attn_chunks=config.attn_chunks,
            causal=config.is_decoder,
            weight_tie=config.weight_tie,
            lsh_dropout=config.lsh_dropout,
            ff_dropout=config.ff_dropout,
            ff_mult=config.ff_mult,
            layer_dropout=config.layer_dropout,
            reverse_thres=config.reverse_thres,
        )
        pairs = [nn.ModuleList([block.f, block.g]) for block in self.layers.irrev_blocks]
        self.layers = ReformerKoReversibleSequence(
            nn.ModuleList(pairs),
            layer_dropout=config.layer_dropout,
            reverse_thres=config.reverse_thres,
            send_signal=True,
        )
        self.lsh_attention_kwargs = dict(
            num_buckets=config.num_buckets,
            hash_seed=config.hash_seed,
            bucket_size=config.bucket_size,
            n_hashes=config.num_hashes,
            causal=config.is_decoder,
            dropout=config.lsh_dropout,
        )
        self.set_attn_implementation(config._attn_implementation)

    def set_attn_implementation(self, attn_implementation):
        """Use the LSH attention backend `attn_implementation` (None means "eager") in every layer. The attention
        has no parameters, so a checkpoint does not depend on it."""
        name = attn_implementation or "eager"
        if name not in LSH_ATTENTION_CLASSES:
            choices = sorted(LSH_ATTENTION_CLASSES)
            raise ValueError(f"reformer-ko's LSH attention has no implementation {name!r}: use one of {choices}.")
        for module in [module for module in self.modules() if isinstance(module, LSHSelfAttention)]:
            training = module.lsh_attn.training
            module.lsh_attn = LSH_ATTENTION_CLASSES[name](**self.lsh_attention_kwargs).train(training)

    def forward(self, x, input_mask=None, pos_emb=None, output_hidden_states=False):
        """Returns the output and, when asked, the output of every layer (both halves of the reversible stream
        averaged, as reformer-pytorch does for the output)."""
        x, layer_states = self.layers(
            torch.cat([x, x], dim=-1),
            output_hidden_states=output_hidden_states,
            input_mask=input_mask,
            pos_emb=pos_emb,
        )
        return merge_reversible_halves(x), tuple(merge_reversible_halves(state) for state in layer_states)


def merge_reversible_halves(x):
    return torch.stack(x.chunk(2, dim=-1)).mean(dim=0)


# Embeddings and heads' building blocks ---------------------------------------------------------------------------


class ReformerKoEmbeddings(nn.Module):
    """Token + segment (`token_type_ids`) + absolute or axial position embeddings (rotary positions are applied
    inside the attention instead)."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = (
            nn.Embedding(config.type_vocab_size, config.embedding_size) if config.type_vocab_size > 0 else None
        )
        if config.position_embedding_type == "absolute":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.embedding_size)
        elif config.position_embedding_type == "axial":
            self.position_embeddings = AxialPositionalEmbedding(config.embedding_size, config.axial_position_shape)
        else:
            self.position_embeddings = None
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        embeddings = self.word_embeddings(input_ids)
        if self.token_type_embeddings is not None:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if isinstance(self.position_embeddings, nn.Embedding):
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            embeddings = embeddings + self.position_embeddings(positions)[None]
        elif self.position_embeddings is not None:
            embeddings = embeddings + self.position_embeddings(embeddings)
        return self.dropout(embeddings)


class ReformerKoLMHead(nn.Module):
    """Transform (dense, GELU, LayerNorm) then the vocabulary projection, tied to the input embeddings."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.activation = nn.GELU()
        self.layer_norm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)

    def forward(self, hidden_states):
        return self.decoder(self.layer_norm(self.activation(self.dense(hidden_states))))


class ReformerKoDiscriminatorHead(nn.Module):
    """ELECTRA's replaced-token detector: one logit per token."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.GELU()
        self.dense_prediction = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden_states):
        return self.dense_prediction(self.activation(self.dense(hidden_states))).squeeze(-1)


class ReformerKoClassificationHead(nn.Module):
    """Sequence classification from the `[CLS]` (first) token, as ELECTRA does."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__()
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden_states):
        x = self.dropout(hidden_states[:, 0])
        x = self.dropout(self.activation(self.dense(x)))
        return self.out_proj(x)


# Models ----------------------------------------------------------------------------------------------------------

# Head parameters that a checkpoint of one head carries and another head does not use: ignored on load, so that
# loading e.g. a masked-LM checkpoint into the QA head reports exactly the newly initialised keys.
HEAD_PREFIXES = r"^(lm_head|discriminator_predictions|qa_outputs|classifier)\."

# Written into every saved config, so that a checkpoint of any head loads into any other head with
# `trust_remote_code=True` (e.g. a masked-LM checkpoint from the Hub into AutoModelForQuestionAnswering).
AUTO_MAP = {
    "AutoConfig": "configuration_reformer_ko.ReformerKoConfig",
    "AutoModel": "modeling_reformer_ko.ReformerKoModel",
    "AutoModelForMaskedLM": "modeling_reformer_ko.ReformerKoForMaskedLM",
    "AutoModelForCausalLM": "modeling_reformer_ko.ReformerKoForCausalLM",
    "AutoModelForPreTraining": "modeling_reformer_ko.ReformerKoForPreTraining",
    "AutoModelForQuestionAnswering": "modeling_reformer_ko.ReformerKoForQuestionAnswering",
    "AutoModelForSequenceClassification": "modeling_reformer_ko.ReformerKoForSequenceClassification",
    "AutoModelForTokenClassification": "modeling_reformer_ko.ReformerKoForTokenClassification",
}


class ReformerKoPreTrainedModel(PreTrainedModel):
    """Weight initialisation, save/load and the Auto-class plumbing shared by every reformer-ko model.

    Initialisation is BERT's, on purpose, for reformer-pytorch's layers too: every linear and embedding weight
    ~ N(0, `initializer_range`), biases 0, LayerNorms 1/0, axial position weights ~ N(0, `initializer_range`).
    (reformer-pytorch itself leaves PyTorch's defaults and N(0, 1) embeddings.)
    """

    config_class = ReformerKoConfig
    base_model_prefix = "reformer"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _supports_flex_attn = True
    # forward takes no **kwargs; say so explicitly so the Trainer never scales the loss by `num_items_in_batch`.
    accepts_loss_kwargs = False
    _keys_to_ignore_on_load_unexpected = [HEAD_PREFIXES]

    def finish(self, output: ModelOutput, return_dict):
        """The output as a `ModelOutput`, or as a tuple when `return_dict` (or the config's) is False."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, AxialPositionalEmbedding):
            for weight in module.weights:
                init.normal_(weight, mean=0.0, std=std)
        elif isinstance(module, FixedPositionalEmbedding):
            dim = 2 * module.inv_freq.shape[0]
            init.copy_(module.inv_freq, 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

    def post_init(self):
        # reformer-pytorch registers every layer twice (reversible `blocks` and `irrev_blocks`) and, with
        # `weight_tie`, one module under every layer: store each tensor once, under its first name. The modules
        # are shared objects, so loading the first name restores every alias.
        first_name, aliases = {}, []
        for name, parameter in self.named_parameters(remove_duplicate=False):
            if id(parameter) in first_name:
                aliases.append(name)
            else:
                first_name[id(parameter)] = name
        self._keys_to_ignore_on_save = set(aliases)
        self._keys_to_ignore_on_load_missing = [f"^{re.escape(name)}$" for name in aliases]
        super().post_init()

    def _flex_attn_can_dispatch(self, is_init_check=False):
        # Whether FlexAttention runs depends on the device the model will run on: the attention checks each time
        # and falls back to the eager one with a log line, so "flex_attention" is always a valid choice.
        return True

    @classmethod
    def _can_set_attn_implementation(cls):
        return True

    def set_attn_implementation(self, attn_implementation, *args, **kwargs):
        """As in transformers (`"eager"` or `"flex_attention"`), and puts that LSH attention in every layer."""
        super().set_attn_implementation(attn_implementation, *args, **kwargs)
        for module in self.modules():
            if isinstance(module, ReformerKoEncoder):
                module.set_attn_implementation(self.config._attn_implementation)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except SafetensorError as error:
            raise ValueError(
                f"The weights in {pretrained_model_name_or_path} could not be read ({error}): the file is truncated "
                "or corrupt. Download or save the checkpoint again."
            ) from error

    def save_pretrained(self, save_directory, *args, **kwargs):
        self.config.auto_map = {**AUTO_MAP, **(getattr(self.config, "auto_map", None) or {})}
        return super().save_pretrained(save_directory, *args, **kwargs)


class ReformerKoModel(ReformerKoPreTrainedModel):
    """Embeddings → reformer-pytorch `Reformer` → final LayerNorm. Any length from 1 to
    `max_position_embeddings`: inputs are padded internally to a multiple of `2 * bucket_size` and the outputs cut
    back; padding (internal or the caller's, via `attention_mask`) does not change the outputs of real tokens."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__(config)
        self.embeddings = ReformerKoEmbeddings(config)
        self.embeddings_project = (
            nn.Linear(config.embedding_size, config.hidden_size)
            if config.embedding_size != config.hidden_size
            else None
        )
        head_size = config.hidden_size // config.num_attention_heads
        self.rotary = FixedPositionalEmbedding(head_size) if config.position_embedding_type == "rotary" else None
        self.encoder = ReformerKoEncoder(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def check_inputs(self, input_ids, attention_mask, token_type_ids):
        """Raise a `ValueError` naming the problem for inputs that would otherwise fail deep inside (or silently)."""
        if input_ids is None:
            raise ValueError("input_ids is required: pass the token ids from the tokenizer.")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, sequence), got {tuple(input_ids.shape)}.")
        length, limit = input_ids.shape[1], self.config.max_position_embeddings
        if length == 0:
            raise ValueError("input_ids is empty: pass at least one token.")
        if length > limit:
            raise ValueError(
                f"Input of {length} tokens is longer than this model's max_position_embeddings ({limit}): truncate "
                f"it, e.g. tokenizer(..., truncation=True, max_length={limit})."
            )
        for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if tensor is not None and tensor.shape != input_ids.shape:
                raise ValueError(
                    f"{name} has shape {tuple(tensor.shape)} but input_ids has shape {tuple(input_ids.shape)}; "
                    "they must match."
                )
        low, high = torch.stack(torch.aminmax(input_ids)).tolist()
        if low < 0 or high >= self.config.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(
                f"Token id {bad} is outside the vocabulary [0, {self.config.vocab_size}) of this model: the tokenizer "
                "does not match the model's config (vocab_size)."
            )
        if token_type_ids is not None:
            low, high = torch.stack(torch.aminmax(token_type_ids)).tolist()
            if low < 0 or high >= max(self.config.type_vocab_size, 1):
                raise ValueError(
                    f"token_type_ids must be in [0, {self.config.type_vocab_size}) (type_vocab_size), got "
                    f"{low if low < 0 else high}."
                )

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        self.check_inputs(input_ids, attention_mask, token_type_ids)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )

        length = input_ids.shape[1]
        multiple = 2 * self.config.bucket_size
        padding = math.ceil(length / multiple) * multiple - length
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        # No mask at all when every position is a real token: LSH attention then skips the masking work.
        input_mask = None
        if attention_mask is not None or padding:
            input_mask = attention_mask.bool() if attention_mask is not None else torch.ones_like(input_ids, dtype=torch.bool)
        if padding:
            input_ids = F.pad(input_ids, (0, padding), value=self.config.pad_token_id)
            token_type_ids = F.pad(token_type_ids, (0, padding), value=0)
            input_mask = F.pad(input_mask, (0, padding), value=False)

        embeddings = self.embeddings(input_ids, token_type_ids)
        if self.embeddings_project is not None:
            embeddings = self.embeddings_project(embeddings)
        pos_emb = self.rotary(embeddings) if self.rotary is not None else None
        sequence_output, layer_states = self.encoder(
            embeddings, input_mask=input_mask, pos_emb=pos_emb, output_hidden_states=output_hidden_states
        )
        sequence_output = self.layer_norm(sequence_output)[:, :length]

        hidden_states = None
        if output_hidden_states:
            hidden_states = tuple(state[:, :length] for state in (embeddings, *layer_states[:-1])) + (sequence_output,)
        output = BaseModelOutput(last_hidden_state=sequence_output, hidden_states=hidden_states)
        return self.finish(output, return_dict)


class ReformerKoForMaskedLM(ReformerKoPreTrainedModel):
    """BERT-style masked language model (no next-sentence prediction); labels -100 are ignored. With
    `config.sparse_prediction`, the LM head runs only at the labelled positions when labels are given."""

    _tied_weights_keys = {"lm_head.decoder.weight": "reformer.embeddings.word_embeddings.weight"}

    def __init__(self, config: ReformerKoConfig):
        super().__init__(config)
        if config.is_decoder:
            logger.warning("ReformerKoForMaskedLM expects a bidirectional model; set is_decoder=False in the config.")
        self.reformer = ReformerKoModel(config)
        self.lm_head = ReformerKoLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        outputs = self.reformer(
            input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states, return_dict=True
        )
        hidden_states = outputs.last_hidden_state
        if labels is not None and self.config.sparse_prediction:
            labelled = labels != -100
            hidden_states, labels = hidden_states[labelled], labels[labelled]
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.config.vocab_size), labels.view(-1))
        return self.finish(MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states), return_dict)


class ContextLimitCriteria(StoppingCriteria):
    """Stop generating once the sequence fills the model's `max_position_embeddings`."""

    def __init__(self, max_length):
        self.max_length = max_length

    def __call__(self, input_ids, scores, **kwargs):
        done = input_ids.shape[-1] >= self.max_length
        return torch.full((input_ids.shape[0],), done, device=input_ids.device, dtype=torch.bool)


class ReformerKoForCausalLM(ReformerKoPreTrainedModel, GenerationMixin):
    """GPT-style left-to-right language model (`is_decoder=True`). Labels are the input ids: the loss is shifted
    inside. `generate()` recomputes the whole prefix at every step (no cache) and never runs past
    `max_position_embeddings`."""

    _tied_weights_keys = {"lm_head.decoder.weight": "reformer.embeddings.word_embeddings.weight"}

    def __init__(self, config: ReformerKoConfig):
        super().__init__(config)
        if not config.is_decoder:
            raise ValueError(
                "ReformerKoForCausalLM needs a causal model: set is_decoder=True in the config "
                "(e.g. ReformerKoConfig.from_preset('clm-gpt3-small') or ReformerKoConfig(..., is_decoder=True))."
            )
        self.reformer = ReformerKoModel(config)
        self.lm_head = ReformerKoLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        outputs = self.reformer(
            input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states, return_dict=True
        )
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            shifted_logits = logits[:, :-1].reshape(-1, self.config.vocab_size)
            loss = CrossEntropyLoss()(shifted_logits, labels[:, 1:].reshape(-1))
        return self.finish(CausalLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states), return_dict)

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def generate(self, *args, stopping_criteria=None, **kwargs):
        criteria = StoppingCriteriaList(stopping_criteria or [])
        criteria.append(ContextLimitCriteria(self.config.max_position_embeddings))
        return super().generate(*args, stopping_criteria=criteria, **kwargs)


@dataclass
class ReformerKoForPreTrainingOutput(ModelOutput):
    """Output of `ReformerKoForPreTraining`: `logits` (batch, sequence) score each token as replaced (> 0) or
    original; `loss` is the binary cross-entropy over non-padding tokens when `labels` are given."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class ReformerKoForPreTraining(ReformerKoPreTrainedModel):
    """ELECTRA discriminator (replaced-token detection), like `ElectraForPreTraining`: labels 1 = replaced,
    0 = original, -100 ignored; padding (attention_mask 0) is left out of the loss."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__(config)
        self.reformer = ReformerKoModel(config)
        self.discriminator_predictions = ReformerKoDiscriminatorHead(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        outputs = self.reformer(
            input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states, return_dict=True
        )
        logits = self.discriminator_predictions(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            active = labels != -100
            if attention_mask is not None:
                active = active & attention_mask.bool()
            loss = BCEWithLogitsLoss()(logits[active], labels[active].to(logits.dtype))
        output = ReformerKoForPreTrainingOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return self.finish(output, return_dict)


class ReformerKoForQuestionAnswering(ReformerKoPreTrainedModel):
    """Extractive QA (KorQuAD/SQuAD): start and end logits per token; positions outside the input are ignored
    in the loss, which is the mean of the start and end cross-entropies."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__(config)
        self.reformer = ReformerKoModel(config)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        start_positions=None,
        end_positions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        outputs = self.reformer(
            input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states, return_dict=True
        )
        start_logits, end_logits = self.qa_outputs(outputs.last_hidden_state).unbind(dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored_index = start_logits.shape[1]
            start_positions = start_positions.view(-1).clamp(0, ignored_index)
            end_positions = end_positions.view(-1).clamp(0, ignored_index)
            loss_fct = CrossEntropyLoss(ignore_index=ignored_index)
            loss = (loss_fct(start_logits, start_positions) + loss_fct(end_logits, end_positions)) / 2
        output = QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, hidden_states=outputs.hidden_states
        )
        return self.finish(output, return_dict)


class ReformerKoForSequenceClassification(ReformerKoPreTrainedModel):
    """Sequence classification or regression from the `[CLS]` token; the loss follows `config.problem_type`
    (inferred from `num_labels` and the labels' dtype when unset), as in transformers."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.reformer = ReformerKoModel(config)
        self.classifier = ReformerKoClassificationHead(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        outputs = self.reformer(
            input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states, return_dict=True
        )
        logits = self.classifier(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression":
                loss = MSELoss()(logits.squeeze(-1), labels.squeeze(-1).to(logits.dtype))
            elif self.config.problem_type == "single_label_classification":
                loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
            else:
                loss = BCEWithLogitsLoss()(logits, labels.to(logits.dtype))
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return self.finish(output, return_dict)


class ReformerKoForTokenClassification(ReformerKoPreTrainedModel):
    """Per-token classification (e.g. named entities); labels -100 are ignored."""

    def __init__(self, config: ReformerKoConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.reformer = ReformerKoModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        outputs = self.reformer(
            input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states, return_dict=True
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
        output = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return self.finish(output, return_dict)


__all__ = [
    "ReformerKoPreTrainedModel",
    "ReformerKoModel",
    "ReformerKoForMaskedLM",
    "ReformerKoForCausalLM",
    "ReformerKoForPreTraining",
    "ReformerKoForPreTrainingOutput",
    "ReformerKoForQuestionAnswering",
    "ReformerKoForSequenceClassification",
    "ReformerKoForTokenClassification",
]
