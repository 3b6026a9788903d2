"""reformer-ko's LSH attention: reformer-pytorch's `LSHAttention` made independent of padding and deterministic
in eval mode (`PaddingSafeLSHAttention`, the "eager" backend), the same function computed with FlexAttention
(`FlexLSHAttention`, the "flex_attention" backend) with the state of that backend in the process (`flex_backend`),
and the self-attention layer around them (`ReformerKoSelfAttention`: projections, rotary positions per sequence,
the generation cache of lsh_cache.py).

A sibling of the modeling file that travels with it to the Hub as remote code: it imports installed packages only.
"""

import functools

import torch
import torch.nn.functional as F
from reformer_pytorch.reformer_pytorch import (
    TOKEN_SELF_ATTN_VALUE,
    LSHAttention,
    LSHSelfAttention,
    batched_index_select,
    max_neg_value,
    rotate_every_two,
)
from transformers.utils import logging

try:
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
except ImportError:  # a torch without FlexAttention: the "flex_attention" backend runs the eager attention
    BlockMask = flex_attention = None
try:
    from torch.nn.attention.flex_attention import AuxRequest
except ImportError:  # older FlexAttention returns the log-sum-exp through `return_lse` instead
    AuxRequest = None

logger = logging.get_logger(__name__)


def look_one_back(x):
    """Concatenate each chunk (dim 1) with the chunk before it along dim 2, as reformer-pytorch does."""
    return torch.cat([x, torch.cat([x[:, -1:], x[:, :-1]], dim=1)], dim=2)


def rotate_by_position(qk, sinusoids):
    """reformer-pytorch's rotary positions (`apply_rotary_pos_emb`, the same arithmetic), with `sinusoids` (the sines
    then the cosines of each position's angles) of shape (1, length, dim) for every row of `qk` or (rows, length,
    dim) for one sequence of positions per row."""
    sin, cos = sinusoids.to(qk.dtype).chunk(2, dim=-1)
    sin, cos = sin.repeat_interleave(2, dim=-1), cos.repeat_interleave(2, dim=-1)
    return (qk * cos) + (rotate_every_two(qk) * sin)


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
            qk = rotate_by_position(qk, pos_emb)

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

    # The generation cache (lsh_cache.py). Rows are (sequence, head) pairs, `heads` per sequence, as in `forward`.

    def fill_cache(self, cache_layer, qk, v, buckets, input_mask, pos_emb, heads):
        """Append every token of `qk`, `v` (rows, length, dim) to `cache_layer`: its key, value, the `buckets` that
        `forward` returned and whether it is a real token."""
        rows, length, dim = qk.shape
        keys = self.keys_for_cache(qk, pos_emb)
        buckets = buckets.view(rows, self.n_hashes, length) - self.round_offsets(buckets.device)[:, None]
        real = torch.ones(rows // heads, length, dtype=torch.bool, device=qk.device)
        if input_mask is not None:
            real = input_mask[::heads]
        cache_layer.update(
            keys.view(-1, heads, length, dim),
            v.view(-1, heads, length, v.shape[-1]),
            buckets.view(-1, heads, self.n_hashes, length),
            real,
        )

    def keys_for_cache(self, qk, pos_emb):
        """The keys the attention computes from `qk`: rotated by position, then normalised (in `attend_sorted`)."""
        if pos_emb is not None:
            qk = rotate_by_position(qk, pos_emb)
        return F.normalize(qk, p=2, dim=-1).type_as(qk)

    def round_offsets(self, device):
        """What `hash_vectors` adds to the buckets of each round, so that rounds sort apart."""
        return torch.arange(self.n_hashes, device=device) * (self.num_buckets + 1)

    def attend_to_cache(self, qk, v, input_mask, pos_emb, cache_layer, heads):
        """One new token per row (`qk`, `v` of shape (rows, 1, dim)) appended to `cache_layer` and attending to the
        tokens so far, as the full forward over them would attend from its last position (docs/models.md,
        "Generation and the cache"): in each hash round, to the tokens the sort puts in its chunk and the chunk
        before it, itself at the self-score; the rounds combined as in `forward`."""
        rows, _, dim = qk.shape
        buckets = self.hash_vectors(qk, input_mask)
        self.fill_cache(cache_layer, qk, v, buckets, input_mask, pos_emb, heads)
        query = qk[:, 0] if pos_emb is None else rotate_by_position(qk, pos_emb)[:, 0]

        window = cache_layer.attention_window(self.bucket_size).reshape(rows, -1)
        slots = window.clamp(min=0)
        # The window's keys and values as rows of the flattened storage (one index_select each: far faster on CPU
        # than a gather along the tokens with an expanded index).
        capacity = cache_layer.capacity
        rows_slots = (slots + torch.arange(rows, device=slots.device)[:, None] * capacity).view(-1)
        keys = cache_layer.keys.view(rows * capacity, dim).index_select(0, rows_slots)
        keys = keys.view(rows, self.n_hashes, -1, dim)
        values = cache_layer.values.view(rows * capacity, -1).index_select(0, rows_slots)
        values = values.view(rows, self.n_hashes, -1, values.shape[-1])

        dots = torch.einsum("be,bhje->bhj", query, keys) * (dim**-0.5)
        window = window.view(rows, self.n_hashes, -1)
        dots.masked_fill_(window == cache_layer.length - 1, TOKEN_SELF_ATTN_VALUE)
        real = cache_layer.real.gather(1, slots.view(rows // heads, -1)).view_as(window)
        dots.masked_fill_((window < 0) | ~real, max_neg_value(dots))

        dots_logsumexp = torch.logsumexp(dots, dim=-1, keepdim=True)
        probs = torch.exp(dots - dots_logsumexp).type_as(dots)
        out = torch.einsum("bhj,bhje->bhe", self.dropout(probs), values)
        weights = torch.softmax(dots_logsumexp, dim=1)
        return torch.sum(out * weights, dim=1).to(out.dtype)[:, None]


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


class FlexBackend:
    """What this process knows about running FlexAttention: the device types where it cannot run (and why), the
    compiled kernel of each device type where it can, the backward checks done, and the fallbacks already logged.

    `FlexLSHAttention` uses the one instance `flex_backend`; a new instance in its place is the state of a new
    process.
    """

    def __init__(self):
        self.unavailable = {}
        self.compiled_kernels = {}
        self.backward_checked = set()
        self.fallbacks_logged = set()

    def log_fallback(self, situation, reason):
        """Say once per situation why the flex_attention backend runs the eager LSH attention."""
        if situation not in self.fallbacks_logged:
            self.fallbacks_logged.add(situation)
            logger.warning(
                f"attn_implementation='flex_attention' {situation}: {reason}. Running the eager LSH attention "
                "instead (the same function, slower)."
            )

    def disable(self, device_type, reason):
        """Run the eager LSH attention on `device_type` from now on."""
        self.unavailable.setdefault(device_type, reason)
        self.log_fallback(f"cannot run on {device_type}", reason)

    def kernel(self, device_type):
        """The compiled `flex_lsh_attention` for `device_type`, or None where FlexAttention cannot run."""
        if device_type not in self.unavailable:
            if flex_attention is None:
                self.disable(device_type, f"this torch ({torch.__version__}) has no FlexAttention")
            elif device_type != "cuda":
                self.disable(device_type, "compiled FlexAttention there returns no log-sum-exp and has no backward")
            elif device_type not in self.compiled_kernels:
                self.compiled_kernels[device_type] = torch.compile(flex_lsh_attention, fullgraph=True)
        if device_type in self.unavailable:
            return None
        return self.compiled_kernels[device_type]

    def check_backward(self, kernel, args, bucket_size, causal):
        """Before the first use that needs gradients (per device type, dtype and causality), run the kernel's
        backward on a copy of the inputs: the backward kernel compiles lazily, and a failure inside
        `loss.backward()` could no longer fall back to the eager attention."""
        query, key, value = args[:3]
        check = (query.device.type, query.dtype, causal)
        if check in self.backward_checked or not torch.is_grad_enabled():
            return
        if not (query.requires_grad or key.requires_grad or value.requires_grad):
            return
        inputs = [tensor.detach().requires_grad_() for tensor in (query, key, value)]
        out, lse = kernel(*inputs, *args[3:], bucket_size, causal)
        torch.autograd.grad(out.float().sum() + lse.masked_fill(lse == float("-inf"), 0.0).sum(), inputs)
        self.backward_checked.add(check)


flex_backend = FlexBackend()


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
            flex_backend.log_fallback("with lsh_dropout > 0 in training", "FlexAttention has no attention dropout")
            return super().attend_sorted(bq, bv, st, input_mask)
        kernel = flex_backend.kernel(bq.device.type)
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
            flex_backend.check_backward(kernel, args, self.bucket_size, self.causal)
            out, lse = kernel(*args, self.bucket_size, self.causal)
        except torch.OutOfMemoryError:
            raise
        except Exception as error:  # e.g. a kernel that does not compile on this GPU: the same function, eagerly
            flex_backend.disable(bq.device.type, f"FlexAttention failed ({type(error).__name__}: {error})")
            return super().attend_sorted(bq, bv, st, input_mask)
        # Padding queries attend to nothing: output 0, lse -inf. Any finite lse keeps their round weights finite.
        lse = lse.masked_fill(lse == float("-inf"), 0.0)
        return out.reshape(batch_size, total, dim), lse.reshape(batch_size, total)


# The backends of `config._attn_implementation`, as transformers names them: the same function, interchangeable
# checkpoints.
LSH_ATTENTION_CLASSES = {"eager": PaddingSafeLSHAttention, "flex_attention": FlexLSHAttention}


class ReformerKoSelfAttention(LSHSelfAttention):
    """reformer-pytorch's `LSHSelfAttention` (the same projections, parameter names and LSH attention module) as
    reformer-ko builds it: every head hashed, no memory key/values, local heads or full-attention threshold. Two
    additions: rotary positions may differ per sequence (`pos_emb` of shape (batch, length, head size), from
    `position_ids`), and the generation cache: with an `LSHLayerCache` (`cache_layer`), the attention stores each
    token's key, value and buckets in it, and once it holds tokens, a new token attends through it alone
    (`PaddingSafeLSHAttention.attend_to_cache`)."""

    def forward(self, x, input_mask=None, pos_emb=None, cache_layer=None, **kwargs):
        batch, length, _ = x.shape

        def per_head(tensor):  # (batch, length, heads * d) -> (batch * heads, length, d), rows by sequence then head
            return tensor.view(batch, length, self.heads, -1).transpose(1, 2).reshape(batch * self.heads, length, -1)

        qk, v = per_head(self.toqk(x)), per_head(self.tov(x))
        if input_mask is not None:
            input_mask = input_mask.repeat_interleave(self.heads, dim=0)
        if pos_emb is not None and pos_emb.shape[0] > 1:
            pos_emb = pos_emb.repeat_interleave(self.heads, dim=0)

        if cache_layer is not None and cache_layer.get_seq_length() > 0:
            out = self.lsh_attn.attend_to_cache(qk, v, input_mask, pos_emb, cache_layer, self.heads)
        else:
            out, buckets = self.attend_in_chunks(qk, v, input_mask, pos_emb, kwargs)
            if cache_layer is not None:
                self.lsh_attn.fill_cache(cache_layer, qk, v, buckets, input_mask, pos_emb, self.heads)
        out = out.view(batch, self.heads, length, -1).transpose(1, 2).reshape(batch, length, -1)
        return self.post_attn_dropout(self.to_out(out))

    def attend_in_chunks(self, qk, v, input_mask, pos_emb, kwargs):
        """The LSH attention over `attn_chunks` groups of rows in turn (memory), as reformer-pytorch runs it; the
        outputs and the buckets of every row."""
        rows = qk.shape[0]

        def split(tensor):  # per-row tensors in the rows' chunks; None or one row shared by all rows as it is
            if tensor is None or (tensor.shape[0] == 1 and rows > 1):
                return [tensor] * len(qk.chunk(self.attn_chunks))
            return tensor.chunk(self.attn_chunks)

        outputs, buckets = [], []
        for chunk in zip(qk.chunk(self.attn_chunks), v.chunk(self.attn_chunks), split(input_mask), split(pos_emb)):
            qk_chunk, v_chunk, mask_chunk, pos_chunk = chunk
            out, _, chunk_buckets = self.lsh_attn(qk_chunk, v_chunk, input_mask=mask_chunk, pos_emb=pos_chunk, **kwargs)
            outputs.append(out)
            buckets.append(chunk_buckets)
        return torch.cat(outputs), torch.cat(buckets)
