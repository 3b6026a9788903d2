"""reformer-ko models: reformer-pytorch's Reformer (LSH attention, reversible layers, chunked feed-forward) as
Hugging Face `PreTrainedModel`s with masked-LM, causal-LM, ELECTRA, question-answering and classification heads.

Four changes to reformer-pytorch, each in a subclass of the one module that needs it; the parameters and their
names are reformer-pytorch's own:
- `PaddingSafeLSHAttention` (lsh_attention.py): results do not depend on how much padding a batch has, and eval
  mode is deterministic (seeded rotations); `FlexLSHAttention` computes the same function with FlexAttention
  (`attn_implementation="flex_attention"`);
- `ReformerKoSelfAttention` (lsh_attention.py): rotary positions per sequence (`position_ids`) and the generation
  cache (`ReformerKoCache`, lsh_cache.py), through which `generate()` runs each new token alone;
- `ReformerKoReversibleSequence` (reversible.py): the reversible backward pass re-enters the forward's autocast
  state, so under bf16/fp16 it recomputes the blocks in the forward's precision rather than in fp32;
- `ReformerKoEncoder` (here): builds reformer-pytorch's `Reformer` from a `ReformerKoConfig` and swaps in the
  three above.

This file, its configuration and the three siblings it imports relatively travel to the Hub as remote code
(`save_pretrained` copies them beside the weights), so none of them imports reformer_ko itself.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from axial_positional_embedding import AxialPositionalEmbedding
from reformer_pytorch.reformer_pytorch import FixedPositionalEmbedding, LSHSelfAttention, Reformer
from safetensors import SafetensorError
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from transformers import GenerationMixin, PreTrainedModel, StoppingCriteria, StoppingCriteriaList
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    MaskedLMOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils import ModelOutput, logging

from .configuration_reformer_ko import NO_ATTENTION_WEIGHTS, ReformerKoConfig
from .lsh_attention import LSH_ATTENTION_CLASSES, ReformerKoSelfAttention
from .lsh_cache import ReformerKoCache
from .reversible import ReformerKoReversibleSequence, with_hidden_state

logger = logging.get_logger(__name__)

# The outputs' field for the cache, and the keyword `generate()` passes it back under: `cache` in newer transformers
# releases, `past_key_values` in earlier ones.
CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


# Embeddings ------------------------------------------------------------------------------------------------------


def axial_position_embeddings(axial, position_ids):
    """What `AxialPositionalEmbedding` adds at the positions `position_ids` (the same sums): position p is row
    p // width and column p % width of its (rows, width) grid, and its embedding that row's plus that column's."""
    rows, columns = (weight.reshape(-1, weight.shape[-1]) for weight in axial.weights)
    width = axial.shape[1]
    return rows[position_ids // width] + columns[position_ids % width]


class ReformerKoEmbeddings(nn.Module):
    """Token + segment (`token_type_ids`) + absolute or axial position embeddings, looked up by `position_ids`
    (rotary positions are applied inside the attention instead)."""

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

    def forward(self, input_ids, token_type_ids, position_ids, inputs_embeds=None):
        """`inputs_embeds` (batch, length, embedding_size), when given, stand in for the embeddings of `input_ids`;
        `position_ids` (batch or 1, length)."""
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if self.token_type_embeddings is not None:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if isinstance(self.position_embeddings, nn.Embedding):
            embeddings = embeddings + self.position_embeddings(position_ids)
        elif self.position_embeddings is not None:
            embeddings = embeddings + axial_position_embeddings(self.position_embeddings, position_ids).to(embeddings)
        return self.dropout(embeddings)


# Encoder ---------------------------------------------------------------------------------------------------------


class ReformerKoEncoder(Reformer):
    """reformer-pytorch's `Reformer` built from a `ReformerKoConfig`, with padding-safe LSH attention in
    `ReformerKoSelfAttention` layers (rotary positions per sequence, the generation cache) and the autocast-aware
    reversible sequence. Parameter names are reformer-pytorch's."""

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
        # One new attention module per module reformer-pytorch built: with `weight_tie` every layer shares one.
        attentions = {}
        for block in self.layers.irrev_blocks:
            if id(block.f.fn) not in attentions:
                attentions[id(block.f.fn)] = ReformerKoSelfAttention(
                    config.hidden_size,
                    config.num_attention_heads,
                    config.bucket_size,
                    config.num_hashes,
                    causal=config.is_decoder,
                    dropout=config.lsh_dropout,
                    attn_chunks=config.attn_chunks,
                    full_attn_thres=0,
                )
            block.f.fn = attentions[id(block.f.fn)]
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

    def forward(
        self, x, input_mask=None, pos_emb=None, output_hidden_states=False, cache=None, hidden_state_length=None
    ):
        """Returns the output and, when asked, the hidden state of every layer over the first `hidden_state_length`
        positions (both halves of the reversible stream averaged, as reformer-pytorch does for the output). With
        `cache` (a `ReformerKoCache`) the layers read and extend it."""
        x, layer_states = self.layers(
            torch.cat([x, x], dim=-1),
            output_hidden_states=output_hidden_states,
            hidden_state_length=hidden_state_length,
            cache=cache,
            input_mask=input_mask,
            pos_emb=pos_emb,
        )
        return merge_reversible_halves(x), layer_states


def merge_reversible_halves(x):
    return torch.stack(x.chunk(2, dim=-1)).mean(dim=0)


# Heads' building blocks ------------------------------------------------------------------------------------------


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


def mean_cross_entropy(logits, targets, ignore_index=-100, num_items_in_batch=None):
    """Cross-entropy averaged over the targets that are not `ignore_index`, or summed and divided by
    `num_items_in_batch` (the Trainer's count of labelled tokens over a whole accumulated, all-process batch). No
    target at all gives 0 with a graph, not a mean over nothing (NaN)."""
    targets = targets.reshape(-1).to(logits.device)
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets, ignore_index=ignore_index, reduction="sum"
    )
    count = (targets != ignore_index).sum() if num_items_in_batch is None else num_items_in_batch
    return total / torch.as_tensor(count, device=total.device).clamp(min=1)


# Models ----------------------------------------------------------------------------------------------------------


def check_no_attention_weights(output_attentions):
    """Refuse `output_attentions=True` with the reason (see `NO_ATTENTION_WEIGHTS`)."""
    if output_attentions:
        raise ValueError(NO_ATTENTION_WEIGHTS)


def parameter_aliases(module):
    """{name: first name} for every parameter that `module` reaches under more than one name."""
    first_name, aliases = {}, {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        if id(parameter) in first_name:
            aliases[name] = first_name[id(parameter)]
        else:
            first_name[id(parameter)] = name
    return aliases


def saved_code_name(cls):
    """`cls` as a saved config's `auto_map` names it: its file beside the weights (without `.py`), then the class."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def class_to_save(model):
    """The class whose code `save_pretrained` saves beside the weights: the model's own, not the subclass that
    FSDP2's `fully_shard` makes at run time (`FSDP<name>`, defined in torch), whose module transformers would
    otherwise copy as the model code and name in `auto_map`."""
    return next(cls for cls in type(model).__mro__ if "FSDPModule" not in {base.__name__ for base in cls.__mro__})


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
    # Device maps place a layer (attention and feed-forward, which share one module across layers with `weight_tie`)
    # whole on one device.
    _no_split_modules = ["ReversibleBlock"]
    # What LSH attention can and cannot do, in the attributes transformers reads: FlexAttention computes it (a
    # backend of its own, lsh_attention.py); SDPA, flash attention and the attention-backend registry compute full
    # (or sliding) attention, which is another function; and no attention weights exist to return
    # (`output_attentions`), as the attention is computed within hash buckets, never as a sequence x sequence matrix.
    _supports_flex_attn = True
    _supports_sdpa = False
    _supports_flash_attn = False
    _supports_attention_backend = False
    # Heads whose loss is a mean over labelled tokens take `num_items_in_batch` and set this True: the Trainer then
    # passes its count over the whole accumulated (and distributed) batch. The others' losses are per-batch means,
    # which the Trainer must scale for gradient accumulation itself.
    accepts_loss_kwargs = False
    # The head's modules beside the backbone (`base_model_prefix`): each head names its own.
    head_modules = ()

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
        # A checkpoint of one head carries that head's parameters, which another head does not use: ignored on load,
        # so that e.g. a masked-LM checkpoint loaded into the QA head reports exactly the newly initialised keys.
        head_modules = sorted({name for head in HEADS.values() for name in head.head_modules})
        self._keys_to_ignore_on_load_unexpected = [rf"^({'|'.join(head_modules)})\."]
        super().post_init()
        # Tied parameters are not saved (the first name holds the tensor), so a checkpoint lacks exactly these keys:
        # the Trainer, which loads checkpoints with `load_state_dict`, then ties them back instead of warning.
        self._keys_to_ignore_on_save = set(self.all_tied_weights_keys)

    def get_expanded_tied_weights_keys(self, all_submodels=False):
        """transformers' tied parameters ({alias: source}): the output embeddings (with `tie_word_embeddings`) and
        reformer-pytorch's aliases, which exist whatever the config says: it registers every layer twice (reversible
        `blocks` and `irrev_blocks`) and, with `weight_tie`, one module under every layer. Each alias is tied to the
        parameter's first name, the one checkpoints store, so saving, loading, `tie_weights()`, device maps and
        offloading all treat them as one tensor."""
        tied = super().get_expanded_tied_weights_keys(all_submodels)
        if all_submodels:
            return tied  # transformers calls this method on every submodel
        return {**parameter_aliases(self), **tied}

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
        # Every head in the saved config, so that a checkpoint of any head loads into any other head with
        # `trust_remote_code=True` (e.g. a masked-LM checkpoint from the Hub into AutoModelForQuestionAnswering).
        auto_map = {"AutoConfig": saved_code_name(ReformerKoConfig)}
        auto_map.update((auto_class, saved_code_name(head)) for auto_class, head in HEADS.items())
        self.config.auto_map = {**auto_map, **(getattr(self.config, "auto_map", None) or {})}
        running_class = type(self)
        self.__class__ = class_to_save(self)
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.__class__ = running_class


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

    def check_inputs(self, input_ids, attention_mask, token_type_ids, inputs_embeds=None, past_length=0):
        """Raise a `ValueError` naming the problem for inputs that would otherwise fail deep inside (or silently).
        `past_length`: tokens already in the cache, which the input follows."""
        if input_ids is None and inputs_embeds is None:
            raise ValueError("input_ids is required: pass the token ids from the tokenizer (or inputs_embeds).")
        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("Pass input_ids or inputs_embeds, not both: inputs_embeds replace the embedding lookup.")
        if inputs_embeds is not None:
            width = self.config.embedding_size
            if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != width or not inputs_embeds.is_floating_point():
                raise ValueError(
                    f"inputs_embeds must be float vectors of shape (batch, sequence, {width}) (embedding_size), got "
                    f"{inputs_embeds.dtype} of shape {tuple(inputs_embeds.shape)}."
                )
            input_name, shape = "inputs_embeds", inputs_embeds.shape[:2]
        else:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must have shape (batch, sequence), got {tuple(input_ids.shape)}.")
            if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
                raise ValueError(
                    f"input_ids must be integer token ids, got dtype {input_ids.dtype}: pass the tokenizer's ids "
                    "(torch.long), e.g. tokenizer(text, return_tensors='pt')."
                )
            input_name, shape = "input_ids", input_ids.shape
        length, limit = shape[1], self.config.max_position_embeddings
        if shape[0] == 0:
            raise ValueError(f"{input_name} has no rows (a batch of 0 sequences): pass at least one sequence.")
        if length == 0:
            raise ValueError(f"{input_name} is empty: pass at least one token.")
        if past_length + length > limit:
            cached = f" after the {past_length} in the cache" if past_length else ""
            raise ValueError(
                f"Input of {length} tokens{cached} is longer than this model's max_position_embeddings ({limit}): "
                f"truncate it, e.g. tokenizer(..., truncation=True, max_length={limit - past_length})."
            )
        for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if tensor is not None and tensor.shape != shape:
                raise ValueError(
                    f"{name} has shape {tuple(tensor.shape)} but {input_name} has shape {tuple(shape)}; "
                    "they must match."
                )
        if input_ids is not None:
            low, high = torch.stack(torch.aminmax(input_ids)).tolist()
            if low < 0 or high >= self.config.vocab_size:
                bad = low if low < 0 else high
                raise ValueError(
                    f"Token id {bad} is outside the vocabulary [0, {self.config.vocab_size}) of this model: the "
                    "tokenizer does not match the model's config (vocab_size)."
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
        position_ids=None,
        inputs_embeds=None,
        past_key_values=None,
        use_cache=None,
        output_hidden_states=None,
        return_dict=None,
        output_attentions=None,
        cache=None,
    ):
        r"""
        position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): each token's
            position, from 0 (default: its index, after the tokens in the cache). With left padding, count each
            row's positions from its first real token (as `generate()` does from the attention mask): the real
            tokens' outputs are then those of the row alone.
        inputs_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, embedding_size)`, *optional*):
            vectors used instead of the embeddings of `input_ids` (segment and position embeddings are added).
        past_key_values (`ReformerKoCache`, *optional*): the tokens so far (causal models, eval mode): the input is
            what follows them, run through the layers one token at a time against the cache, which it extends.
            `attention_mask` may cover the cached tokens too (only its last columns are read). `cache` is the same
            argument under the name newer transformers releases pass.
        use_cache (`bool`, *optional*, defaults to `False`): return the cache, a new one when none is given.
        """
        check_no_attention_weights(output_attentions)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        cache = cache if cache is not None else past_key_values
        if use_cache and cache is None:
            cache = ReformerKoCache(self.config)
        past_length = 0
        if cache is not None:
            self.check_cache_use(cache)
            past_length = cache.get_seq_length()
        inputs = input_ids if input_ids is not None else inputs_embeds
        if past_length and attention_mask is not None and inputs is not None:
            attention_mask = attention_mask[:, -inputs.shape[1] :]
        self.check_inputs(input_ids, attention_mask, token_type_ids, inputs_embeds, past_length)
        batch, length = inputs.shape[:2]
        if position_ids is None:
            position_ids = torch.arange(past_length, past_length + length, device=inputs.device)[None]
        else:
            self.check_position_ids(position_ids, (batch, length))
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, length, dtype=torch.long, device=inputs.device)

        run = self.run_cached_steps if past_length else self.run_layers
        sequence_output, hidden_states = run(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states, cache
        )
        output = BaseModelOutputWithPast(
            last_hidden_state=sequence_output, hidden_states=hidden_states, **{CACHE_FIELD: cache}
        )
        return self.finish(output, return_dict)

    def check_cache_use(self, cache):
        if not self.config.is_decoder:
            raise ValueError(
                "The generation cache is for causal models: this one is bidirectional (is_decoder=False), so every "
                "token depends on the later ones. Leave out use_cache and past_key_values."
            )
        if self.training:
            raise ValueError(
                "The generation cache needs eval mode: in training the LSH attention draws new hash rotations at "
                "every call, so cached buckets would not match. Call model.eval() first."
            )
        if not isinstance(cache, ReformerKoCache):
            raise ValueError(
                "past_key_values must be a ReformerKoCache (the one a forward with use_cache=True returns, or "
                f"ReformerKoCache(model.config)), got {type(cache).__name__}: the LSH attention caches hash buckets "
                "that other caches do not hold."
            )

    def check_position_ids(self, position_ids, shape):
        if position_ids.dim() != 2 or position_ids.shape[0] not in (1, shape[0]) or position_ids.shape[1] != shape[1]:
            raise ValueError(
                f"position_ids has shape {tuple(position_ids.shape)} but the input has shape {shape}: give one "
                "position per token, (batch, sequence) or (1, sequence)."
            )
        low, high = torch.stack(torch.aminmax(position_ids)).tolist()
        limit = self.config.max_position_embeddings
        if low < 0 or high >= limit:
            raise ValueError(
                f"position_ids must be in [0, {limit}) (max_position_embeddings), got {low if low < 0 else high}."
            )

    def run_layers(
        self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states, cache
    ):
        """The whole input at once (padded to whole pairs of buckets): the final output and, when asked, the hidden
        states. A given (empty) cache receives every token."""
        length = token_type_ids.shape[1]
        multiple = 2 * self.config.bucket_size
        padding = math.ceil(length / multiple) * multiple - length
        # No mask at all when every position is a real token: LSH attention then skips the masking work.
        input_mask = None
        if attention_mask is not None:
            input_mask = attention_mask.bool()
        elif padding:
            input_mask = torch.ones_like(token_type_ids, dtype=torch.bool)
        if padding:
            if input_ids is not None:
                input_ids = F.pad(input_ids, (0, padding), value=self.config.pad_token_id)
            else:
                inputs_embeds = F.pad(inputs_embeds, (0, 0, 0, padding))
            token_type_ids = F.pad(token_type_ids, (0, padding), value=0)
            position_ids = F.pad(position_ids, (0, padding), value=0)
            input_mask = F.pad(input_mask, (0, padding), value=False)
        sequence_output, hidden_states = self.encode(
            input_ids, token_type_ids, position_ids, inputs_embeds, input_mask, output_hidden_states, cache, length
        )
        if cache is not None and padding:
            cache.crop(-padding)
        return sequence_output, hidden_states

    def run_cached_steps(
        self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states, cache
    ):
        """Each token of the input in turn through the layers alone, attending through `cache`, which holds the
        tokens before it (docs/models.md, "Generation and the cache"): the outputs and hidden states, joined."""
        steps = []
        for index in range(token_type_ids.shape[1]):
            token = slice(index, index + 1)
            steps.append(
                self.encode(
                    input_ids[:, token] if input_ids is not None else None,
                    token_type_ids[:, token],
                    position_ids[:, token],
                    inputs_embeds[:, token] if inputs_embeds is not None else None,
                    attention_mask[:, token].bool() if attention_mask is not None else None,
                    output_hidden_states,
                    cache,
                )
            )
        sequence_output = torch.cat([output for output, _ in steps], dim=1)
        hidden_states = None
        if output_hidden_states:
            hidden_states = tuple(torch.cat(states, dim=1) for states in zip(*(states for _, states in steps)))
        return sequence_output, hidden_states

    def encode(
        self, input_ids, token_type_ids, position_ids, inputs_embeds, input_mask, output_hidden_states, cache, length=None
    ):
        """Embeddings, layers and the final LayerNorm: the output over the first `length` positions (all by
        default; the rest is internal padding), and the hidden states when asked (embeddings, every layer but the
        last, the output), each on the output's gradient path (reversible.py, `with_hidden_state`)."""
        embeddings = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        if self.embeddings_project is not None:
            embeddings = self.embeddings_project(embeddings)
        length = embeddings.shape[1] if length is None else length
        if output_hidden_states:
            embeddings, embedding_state = with_hidden_state(embeddings, length, halves=1)
        pos_emb = self.rotary_positions(position_ids, embeddings.dtype) if self.rotary is not None else None
        sequence_output, layer_states = self.encoder(
            embeddings,
            input_mask=input_mask,
            pos_emb=pos_emb,
            output_hidden_states=output_hidden_states,
            cache=cache,
            hidden_state_length=length,
        )
        sequence_output = self.layer_norm(sequence_output)[:, :length]
        hidden_states = None
        if output_hidden_states:
            hidden_states = (embedding_state, *layer_states[:-1], sequence_output)
        return sequence_output, hidden_states

    def rotary_positions(self, position_ids, dtype):
        """The sines and cosines of rotary positions `position_ids` (batch or 1, length), as reformer-pytorch's
        `FixedPositionalEmbedding` computes them for the positions 0, 1, ...: (batch or 1, length, head size)."""
        angles = position_ids[..., None].type_as(self.rotary.inv_freq) * self.rotary.inv_freq
        return torch.cat((angles.sin(), angles.cos()), dim=-1).to(dtype)


class ReformerKoForMaskedLM(ReformerKoPreTrainedModel):
    """BERT-style masked language model (no next-sentence prediction); labels -100 are ignored. `logits` are
    (batch, sequence, vocab_size) unless the caller passes `sparse_prediction=True` (reformer-ko's trainer does, for
    a config with `sparse_prediction`)."""

    accepts_loss_kwargs = True
    head_modules = ("lm_head",)
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
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
        output_attentions=None,
        num_items_in_batch=None,
        sparse_prediction=False,
    ):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): the original token ids at
            the positions to predict, -100 elsewhere.
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): divide the summed loss by this count of labelled
            tokens (the Trainer's, over a whole accumulated batch) instead of averaging over this batch's.
        sparse_prediction (`bool`, defaults to `False`): with `labels`, run the LM head only at the labelled
            positions and return `logits` of shape (labelled tokens, vocab_size), in the order of
            `labels[labels != -100]`: the same loss for a fraction of the head's work. reformer-ko's trainer passes
            it for models whose config has `sparse_prediction`; the default keeps `logits` at full shape.
        """
        outputs = self.reformer(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state
        if labels is not None and sparse_prediction:
            labelled = labels != -100
            hidden_states, labels = hidden_states[labelled], labels[labelled]
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = mean_cross_entropy(logits, labels, num_items_in_batch=num_items_in_batch)
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
    inside. `generate()` runs the prompt once and then each new token alone through the LSH cache
    (`ReformerKoCache`; `use_cache=False` recomputes the whole prefix at every step instead) and never runs past
    `max_position_embeddings`."""

    accepts_loss_kwargs = True
    head_modules = ("lm_head",)
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

    @classmethod
    def _supports_default_dynamic_cache(cls):
        # generate() hands the forward a DynamicCache unless this returns False, which transformers' default (5.17
        # to 5.24) does only for class names containing "reformer": a subclass named otherwise would get one. The
        # forward builds its ReformerKoCache itself (use_cache=True, no cache given).
        return False

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        past_key_values=None,
        use_cache=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
        output_attentions=None,
        num_items_in_batch=None,
        logits_to_keep=0,
        cache=None,
        **loss_kwargs,
    ):
        r"""
        position_ids, inputs_embeds, past_key_values, use_cache, cache: as `ReformerKoModel.forward` takes them.
            `generate()` passes them: position ids from the attention mask, and the cache (on unless
            `use_cache=False`).
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): the input ids (-100 to
            leave a position out): position i is scored on predicting `labels[:, i + 1]`.
        shift_labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*, in `loss_kwargs`):
            the targets already shifted, position i scored on `shift_labels[:, i]` (e.g. from padding-free
            collators); used instead of shifting `labels`. A keyword argument as transformers' causal LMs take it:
            a named parameter with "label" in its name would become one of the Trainer's label names, and the
            Trainer then computes no eval loss for batches without it. Any other keyword is a `TypeError`.
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): divide the summed loss by this count of scored
            tokens (the Trainer's, over a whole accumulated batch) instead of averaging over this batch's.
        logits_to_keep (`int` or `torch.Tensor`, defaults to 0): the logits of the last `logits_to_keep` positions
            only (0: every position), or of the positions a 1-D tensor lists; `generate()` asks for the last one.
        """
        shift_labels = loss_kwargs.pop("shift_labels", None)
        if loss_kwargs:
            raise TypeError(f"ReformerKoForCausalLM.forward() got unexpected keyword arguments {sorted(loss_kwargs)}")
        some_logits = not isinstance(logits_to_keep, int) or logits_to_keep > 0
        if some_logits and (labels is not None or shift_labels is not None):
            raise ValueError("The loss needs the logits of every position: leave logits_to_keep at 0 with labels.")
        outputs = self.reformer(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            past_key_values=cache if cache is not None else past_key_values,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        kept = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(outputs.last_hidden_state[:, kept])
        loss = None
        if shift_labels is not None:
            loss = mean_cross_entropy(logits, shift_labels, num_items_in_batch=num_items_in_batch)
        elif labels is not None:
            loss = mean_cross_entropy(logits[:, :-1], labels[:, 1:], num_items_in_batch=num_items_in_batch)
        output = CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)},
        )
        return self.finish(output, return_dict)

    def generate(self, inputs=None, generation_config=None, stopping_criteria=None, **kwargs):
        """`GenerationMixin.generate`, which never runs past `max_position_embeddings` tokens: a request for more
        is told so (a warning) and gets the tokens up to the context."""
        limit = self.config.max_position_embeddings
        # Given inputs_embeds alone, the sequences generate() returns (and its criteria see) leave the prompt out.
        embedded_prompt = 0
        if inputs is None and kwargs.get("input_ids") is None and kwargs.get("inputs_embeds") is not None:
            embedded_prompt = kwargs["inputs_embeds"].shape[1]
        prompt = inputs if inputs is not None else kwargs.get("input_ids")
        prompt_length = embedded_prompt + (prompt.shape[-1] if prompt is not None else 0)
        config = generation_config or self.generation_config
        max_new_tokens = kwargs.get("max_new_tokens", config.max_new_tokens)
        requested = kwargs.get("max_length", config.max_length)
        if max_new_tokens is not None:
            requested = prompt_length + max_new_tokens
        if requested > limit:
            logger.warning(
                f"generate() was asked for {requested} tokens with a {prompt_length}-token prompt, more than this "
                f"model's max_position_embeddings ({limit}): it stops at {limit} tokens. Ask for at most "
                f"max_new_tokens={max(limit - prompt_length, 0)}."
            )
        criteria = StoppingCriteriaList(stopping_criteria or [])
        criteria.append(ContextLimitCriteria(limit - embedded_prompt))
        return super().generate(inputs, generation_config, stopping_criteria=criteria, **kwargs)


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

    head_modules = ("discriminator_predictions",)

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
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
        output_attentions=None,
    ):
        outputs = self.reformer(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = self.discriminator_predictions(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            active = labels != -100
            if attention_mask is not None:
                active = active & attention_mask.bool()
            # A mean over the scored tokens that is 0, not NaN, when there are none.
            total = F.binary_cross_entropy_with_logits(
                logits[active].float(), labels[active].float(), reduction="sum"
            )
            loss = total / active.sum().clamp(min=1)
        output = ReformerKoForPreTrainingOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return self.finish(output, return_dict)


class ReformerKoForQuestionAnswering(ReformerKoPreTrainedModel):
    """Extractive QA (KorQuAD/SQuAD): start and end logits per token; positions outside the input are ignored
    in the loss, which is the mean of the start and end cross-entropies."""

    head_modules = ("qa_outputs",)

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
        position_ids=None,
        inputs_embeds=None,
        start_positions=None,
        end_positions=None,
        output_hidden_states=None,
        return_dict=None,
        output_attentions=None,
    ):
        outputs = self.reformer(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        start_logits, end_logits = self.qa_outputs(outputs.last_hidden_state).unbind(dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored_index = start_logits.shape[1]
            start_positions = start_positions.view(-1).clamp(0, ignored_index)
            end_positions = end_positions.view(-1).clamp(0, ignored_index)
            start_loss = mean_cross_entropy(start_logits, start_positions, ignore_index=ignored_index)
            end_loss = mean_cross_entropy(end_logits, end_positions, ignore_index=ignored_index)
            loss = (start_loss + end_loss) / 2
        output = QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, hidden_states=outputs.hidden_states
        )
        return self.finish(output, return_dict)


class ReformerKoForSequenceClassification(ReformerKoPreTrainedModel):
    """Sequence classification or regression from the `[CLS]` token; the loss follows `config.problem_type`
    (inferred from `num_labels` and the labels' dtype when unset), as in transformers."""

    head_modules = ("classifier",)

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
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
        output_attentions=None,
    ):
        outputs = self.reformer(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
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

    accepts_loss_kwargs = True
    head_modules = ("classifier",)

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
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
        output_attentions=None,
        num_items_in_batch=None,
    ):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): a class per token, -100 to
            leave a token out (e.g. padding and word continuations).
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): divide the summed loss by this count of labelled
            tokens (the Trainer's, over a whole accumulated batch) instead of averaging over this batch's.
        """
        outputs = self.reformer(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = mean_cross_entropy(logits, labels, num_items_in_batch=num_items_in_batch)
        output = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return self.finish(output, return_dict)


# Every model under the transformers Auto class it registers with: `import reformer_ko` registers them,
# `save_pretrained` names them all in the config's `auto_map`, and their `head_modules` are ignored on load.
HEADS = {
    "AutoModel": ReformerKoModel,
    "AutoModelForMaskedLM": ReformerKoForMaskedLM,
    "AutoModelForCausalLM": ReformerKoForCausalLM,
    "AutoModelForPreTraining": ReformerKoForPreTraining,
    "AutoModelForQuestionAnswering": ReformerKoForQuestionAnswering,
    "AutoModelForSequenceClassification": ReformerKoForSequenceClassification,
    "AutoModelForTokenClassification": ReformerKoForTokenClassification,
}

__all__ = [
    "HEADS",
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
