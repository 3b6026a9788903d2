"""The generation cache of reformer-ko's causal LM (`past_key_values`): for every layer, the keys, values and hash
buckets of the tokens so far, so that each new token runs through the layers alone against them. The attention a
new token computes from it is defined in docs/models.md ("Generation and the cache").

A sibling of the modeling file that travels with it to the Hub as remote code: it imports installed packages only.
"""

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


class LSHLayerCache(CacheLayerMixin):
    """One layer's cache. For every token so far, in the order of the input (padding included):

    - `keys`, `values` (batch, heads, tokens, head size): the token's key (its query/key vector after rotary
      positions, normalised, as the LSH attention's keys are) and its value;
    - `buckets` (batch, heads, hash rounds, tokens): its bucket in each round, `num_buckets` for padding;
    - `places` (the same shape): how many earlier tokens share that bucket in that round;
    - `real` (batch, tokens): whether it may be attended to (False for padding);

    and `bucket_sizes` (batch, heads, hash rounds, num_buckets + 1), the number of tokens in each bucket. Where the
    full forward's sort of a round (by bucket, then position) puts a token is the number of tokens in lower buckets
    plus its place in its own bucket: the sizes change as tokens arrive, a token's place never does (every later
    token sorts after it in its bucket), so the sort itself is never stored or redone.

    The tensors have room to spare and double when full (never beyond `max_length` tokens unless more arrive), so
    adding a token writes one slot in place: a sequence of n tokens costs O(n) memory and O(n) copying in all.
    """

    is_croppable = True
    # `Cache.early_initialization` would call `lazy_initialization` with keys and values alone; the storage also
    # needs the buckets' number of hash rounds, so it waits for the first tokens (as linear-attention layers do).
    supports_early_init = False

    def __init__(self, num_buckets, max_length):
        super().__init__()
        self.num_buckets = num_buckets
        self.max_length = max_length
        self.length = 0
        self.buckets = self.places = self.real = self.bucket_sizes = None

    def __repr__(self):
        return f"{self.__class__.__name__}(tokens={self.length}, capacity={self.capacity})"

    @property
    def capacity(self):
        return 0 if self.keys is None else self.keys.shape[2]

    def lazy_initialization(self, key_states, value_states, buckets):
        """Empty storage of the dtypes and device of the first tokens (and their `buckets`' number of rounds)."""
        batch, heads, _, head_size = key_states.shape
        self.device = key_states.device
        self.keys = key_states.new_empty(batch, heads, 0, head_size)
        self.values = value_states.new_empty(batch, heads, 0, value_states.shape[-1])
        self.buckets = buckets.new_empty(batch, heads, buckets.shape[2], 0)
        self.places = torch.empty_like(self.buckets)
        self.real = torch.empty(batch, 0, dtype=torch.bool, device=self.device)
        self.bucket_sizes = buckets.new_zeros(batch, heads, buckets.shape[2], self.num_buckets + 1)
        self.is_initialized = True

    def update(self, key_states, value_states, buckets, real):
        """Append tokens: `key_states`, `value_states` (batch, heads, new tokens, head size), their `buckets`
        (batch, heads, hash rounds, new tokens) and `real` (batch, new tokens). Returns the keys and values of every
        token so far."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states, buckets)
        count = key_states.shape[2]
        start, end = self.length, self.length + count
        self.reserve(end)
        places = self.places_in_buckets(buckets)
        self.bucket_sizes.scatter_add_(-1, buckets, torch.ones_like(buckets))
        self.keys[:, :, start:end] = key_states
        self.values[:, :, start:end] = value_states
        self.buckets[..., start:end] = buckets
        self.places[..., start:end] = places
        self.real[:, start:end] = real
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def places_in_buckets(self, buckets):
        """For new tokens with `buckets`, the number of tokens before each that share its bucket (earlier new tokens
        included)."""
        before = self.bucket_sizes.gather(-1, buckets)
        count = buckets.shape[-1]
        if count == 1:
            return before
        # Among the new tokens: their order sorted by (bucket, position) minus where their bucket starts in it.
        positions = torch.arange(count, device=buckets.device).expand_as(buckets)
        order = (buckets * count + positions).argsort(dim=-1)
        rank = torch.empty_like(order).scatter_(-1, order, positions)
        sizes = torch.zeros_like(self.bucket_sizes).scatter_add_(-1, buckets, torch.ones_like(buckets))
        first = (sizes.cumsum(dim=-1) - sizes).gather(-1, buckets)
        return before + rank - first

    def reserve(self, length):
        """Room for `length` tokens: when full, the storage doubles (up to `max_length`, or `length` if more)."""
        if length <= self.capacity:
            return
        capacity = max(length, min(2 * self.capacity, self.max_length))

        def grown(tensor, dim):
            shape = list(tensor.shape)
            shape[dim] = capacity
            new = tensor.new_empty(shape)
            new.narrow(dim, 0, self.length).copy_(tensor.narrow(dim, 0, self.length))
            return new

        self.keys, self.values = grown(self.keys, 2), grown(self.values, 2)
        self.buckets, self.places, self.real = grown(self.buckets, -1), grown(self.places, -1), grown(self.real, -1)

    def attention_window(self, bucket_size):
        """Storage slots of the tokens that the last token attends to in each hash round, (batch, heads, hash rounds,
        2 * bucket_size), -1 where the window has fewer tokens: those that the full forward over the tokens so far
        puts in the last token's chunk of `bucket_size` tokens and the chunk before it (none before the first chunk
        of a round), the last token included."""
        end, width = self.length, 2 * bucket_size
        buckets, places = self.buckets[..., :end], self.places[..., :end]
        in_lower_buckets = self.bucket_sizes.cumsum(dim=-1) - self.bucket_sizes
        last_place = in_lower_buckets.gather(-1, buckets[..., -1:]) + places[..., -1:]
        chunk = last_place // bucket_size
        start = (chunk - 1).clamp(min=0) * bucket_size
        # Every token's place in the sort, as a slot of a window with one extra slot at each end: 0 for the tokens
        # before the window, width + 1 for those after it (both dropped after the scatter). Four passes over the
        # tokens, whose cost is small beside the projections' (docs/benchmarks.md).
        slots = (in_lower_buckets - start + 1).gather(-1, buckets).add_(places).clamp_(0, width + 1)
        window = torch.full((*buckets.shape[:-1], width + 2), -1, dtype=torch.long, device=buckets.device)
        window.scatter_(-1, slots, torch.arange(end, device=buckets.device).expand_as(slots))
        window = window[..., 1 : width + 1]
        # In a round's first chunk the window is that chunk alone.
        return window.masked_fill_(torch.arange(width, device=window.device) >= (chunk + 1) * bucket_size - start, -1)

    def get_seq_length(self):
        return self.length

    def get_max_length(self):
        return -1

    def get_mask_sizes(self, query_length):
        return self.length + query_length, 0

    def reset(self):
        self.length = 0
        if self.is_initialized:
            self.bucket_sizes.zero_()

    def crop(self, tokens_to_remove):
        """Forget the last `-tokens_to_remove` tokens (a positive value is the length to keep, as transformers' older
        caches take it). Exact: the tokens kept come before every token removed, so their places stand."""
        keep = self.length + tokens_to_remove if tokens_to_remove <= 0 else min(tokens_to_remove, self.length)
        if keep >= self.length:
            return
        removed = self.buckets[..., keep : self.length]
        self.bucket_sizes.scatter_add_(-1, removed, -torch.ones_like(removed))
        self.length = keep

    def select_rows(self, select):
        """Apply `select` (a function of a tensor whose first dimension is the batch) to every stored tensor."""
        if not self.is_initialized:
            return
        for name in ("keys", "values", "buckets", "places", "real", "bucket_sizes"):
            setattr(self, name, select(getattr(self, name)))

    def reorder_cache(self, beam_idx):
        self.select_rows(lambda tensor: tensor.index_select(0, beam_idx.to(tensor.device)))

    def batch_repeat_interleave(self, repeats):
        self.select_rows(lambda tensor: tensor.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices):
        self.select_rows(lambda tensor: tensor[indices])

    def memory_bytes(self):
        """Bytes the layer's tensors hold (their allocated capacity, not only the tokens so far)."""
        if not self.is_initialized:
            return 0
        tensors = (self.keys, self.values, self.buckets, self.places, self.real, self.bucket_sizes)
        return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


class ReformerKoCache(Cache):
    """The `past_key_values` of `ReformerKoForCausalLM`, one `LSHLayerCache` per layer (the layers of a
    `weight_tie` model share weights, not caches). `generate()` and the text-generation pipeline use it by default;
    a forward with `use_cache=True` and no cache creates one."""

    def __init__(self, config):
        super().__init__(
            layers=[
                LSHLayerCache(config.num_buckets, config.max_position_embeddings)
                for _ in range(config.num_hidden_layers)
            ]
        )

    @property
    def is_initialized(self):
        # transformers' counts only the layers that support early initialisation, which these do not.
        return all(layer.is_initialized for layer in self.layers)

    def memory_bytes(self):
        """Bytes the cache's tensors hold, every layer's allocated capacity."""
        return sum(layer.memory_bytes() for layer in self.layers)
