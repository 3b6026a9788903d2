"""The transformers model contract, checked for every head as transformers' common model tests check every model:
save/load, tuple outputs, hidden states and their gradients, a training step, resizing the vocabulary, tied weights,
determinism, padding, generation, dtypes, and what Reformer declares it cannot do."""

import inspect

import pytest
import torch
import transformers
from tiny_models import tiny_config
from transformers import GenerationConfig

from reformer_ko import (
    ReformerKoForCausalLM,
    ReformerKoForMaskedLM,
    ReformerKoForPreTraining,
    ReformerKoForQuestionAnswering,
    ReformerKoForSequenceClassification,
    ReformerKoForTokenClassification,
    ReformerKoModel,
)
from reformer_ko.modeling_reformer_ko import HEADS

BATCH, LENGTH, VOCAB, HIDDEN, LAYERS = 2, 20, 120, 32, 2


def name(head):
    return head.__name__.removeprefix("ReformerKo")


def model_of(head, **overrides):
    torch.manual_seed(0)
    config = tiny_config(is_decoder=head is ReformerKoForCausalLM, num_labels=3, **overrides)
    return head(config).eval()


def token_ids(batch=BATCH, length=LENGTH, seed=0):
    return torch.randint(5, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def labels_for(head, input_ids):
    """The labels each head trains on, for a batch of `input_ids`."""
    batch, length = input_ids.shape
    generator = torch.Generator().manual_seed(1)
    if head is ReformerKoForMaskedLM:
        return {"labels": torch.where(torch.rand(batch, length, generator=generator) < 0.3, input_ids, -100)}
    if head is ReformerKoForCausalLM:
        return {"labels": input_ids}
    if head is ReformerKoForPreTraining:
        return {"labels": torch.randint(0, 2, (batch, length), generator=generator)}
    if head is ReformerKoForQuestionAnswering:
        return {"start_positions": torch.tensor([1, 3])[:batch], "end_positions": torch.tensor([2, 5])[:batch]}
    if head is ReformerKoForSequenceClassification:
        return {"labels": torch.tensor([0, 2])[:batch]}
    if head is ReformerKoForTokenClassification:
        return {"labels": torch.randint(0, 3, (batch, length), generator=generator)}
    return {}


def first_output(model, *args, **kwargs):
    with torch.no_grad():
        return model(*args, **kwargs)[0]


each_head = pytest.mark.parametrize("head", list(HEADS.values()), ids=name)


# Saving and outputs ----------------------------------------------------------------------------------------------


@each_head
def test_save_and_load_give_identical_outputs_and_weights(head, tmp_path):
    model = model_of(head)
    model.save_pretrained(tmp_path)
    loaded = getattr(transformers, next(a for a, h in HEADS.items() if h is head)).from_pretrained(tmp_path).eval()
    assert type(loaded) is head
    for (key, tensor), (loaded_key, loaded_tensor) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert key == loaded_key and torch.equal(tensor, loaded_tensor), key
    assert torch.equal(first_output(model, token_ids()), first_output(loaded, token_ids()))


@each_head
def test_a_tuple_output_holds_the_model_output_fields_in_order(head):
    model = model_of(head)
    inputs = dict(input_ids=token_ids(), output_hidden_states=True, **labels_for(head, token_ids()))
    with torch.no_grad():
        output, as_tuple = model(**inputs), model(**inputs, return_dict=False)
    expected = output.to_tuple()
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(expected)
    for got, want in zip(as_tuple, expected):
        if isinstance(want, tuple):
            assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
        else:
            assert torch.equal(got, want)


@each_head
def test_hidden_states_are_the_embeddings_every_layer_and_the_output(head):
    model = model_of(head)
    with torch.no_grad():
        output = model(token_ids(), output_hidden_states=True)
    assert len(output.hidden_states) == LAYERS + 1
    assert all(state.shape == (BATCH, LENGTH, HIDDEN) for state in output.hidden_states)
    with torch.no_grad():
        last = model.base_model(token_ids()).last_hidden_state
    torch.testing.assert_close(output.hidden_states[-1], last)
    assert torch.equal(first_output(model, token_ids()), output[0])  # asking for hidden states changes nothing


@each_head
def test_gradients_of_the_output_reach_every_returned_hidden_state(head):
    model = model_of(head)
    output = model(token_ids(), output_hidden_states=True)
    gradients = torch.autograd.grad(output[0].sum(), output.hidden_states)
    # the output depends on every state (the last layer's output is the last state itself)
    assert all(gradient.abs().sum() > 0 for gradient in gradients)


@pytest.mark.parametrize("index", range(LAYERS))
def test_a_hidden_state_gradient_is_the_derivative_of_the_output_with_respect_to_that_state(index):
    """Finite differences in float64: moving the embeddings (index 0) or a layer's state (both reversible halves
    alike, which moves their mean and keeps their difference) by a small step changes the output as the gradient
    says."""
    model = model_of(ReformerKoModel).double()
    inputs = token_ids()
    output = model(inputs, output_hidden_states=True)
    gradient = torch.autograd.grad(output.last_hidden_state.square().sum(), output.hidden_states[index])[0]
    step = 1e-6 * torch.randn(BATCH, LENGTH, HIDDEN, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    module = model.embeddings if index == 0 else model.encoder.layers.irrev_blocks[index - 1]

    def move(module, args, result, sign):
        moved = sign * (step if index == 0 else torch.cat([step, step], dim=-1))
        return result + torch.nn.functional.pad(moved, (0, 0, 0, result.shape[1] - LENGTH))

    def moved_loss(sign):
        handle = module.register_forward_hook(lambda module, args, result: move(module, args, result, sign))
        try:
            with torch.no_grad():  # hidden states asked for: the irreversible path, where the hook is
                return model(inputs, output_hidden_states=True).last_hidden_state.square().sum()
        finally:
            handle.remove()

    change = (moved_loss(1) - moved_loss(-1)) / 2  # central difference: no second-order term
    torch.testing.assert_close(change, (gradient * step).sum(), rtol=1e-6, atol=1e-15)


# Training --------------------------------------------------------------------------------------------------------


@each_head
def test_a_training_step_with_labels_reaches_every_parameter_and_changes_the_model(head):
    model = model_of(head).train()
    inputs = token_ids()
    output = model(inputs, **labels_for(head, inputs))
    loss = output.loss if head is not ReformerKoModel else output.last_hidden_state.square().mean()
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    missing = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    assert not missing
    before = first_output(model.eval(), inputs)
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(first_output(model, inputs), before)


@each_head
def test_loss_kwargs_are_declared_by_exactly_the_heads_that_take_them(head):
    takes_count = "num_items_in_batch" in inspect.signature(head.forward).parameters
    assert head.accepts_loss_kwargs is takes_count


@each_head
def test_resize_token_embeddings_resizes_every_vocabulary_layer(head):
    model = model_of(head)
    model.resize_token_embeddings(VOCAB + 8)
    assert model.config.vocab_size == VOCAB + 8
    assert model.get_input_embeddings().weight.shape == (VOCAB + 8, HIDDEN)
    if model.get_output_embeddings() is not None:
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
        assert model.lm_head.decoder.bias.shape == (VOCAB + 8,)
    inputs = token_ids()
    inputs[0, 0] = VOCAB + 7
    output = first_output(model, inputs)
    if model.get_output_embeddings() is not None:
        assert output.shape == (BATCH, LENGTH, VOCAB + 8)


@pytest.mark.parametrize("head", [ReformerKoForMaskedLM, ReformerKoForCausalLM], ids=name)
@pytest.mark.parametrize("overrides", [{}, {"weight_tie": True}], ids=["", "weight_tie"])
def test_tied_weights_are_one_tensor_after_loading(head, overrides, tmp_path):
    model_of(head, **overrides).save_pretrained(tmp_path)
    loaded = head.from_pretrained(tmp_path)
    assert loaded.get_output_embeddings().weight is loaded.get_input_embeddings().weight
    for alias, source in loaded.all_tied_weights_keys.items():
        assert loaded.get_parameter(alias) is loaded.get_parameter(source), alias


# Inference -------------------------------------------------------------------------------------------------------


@each_head
def test_eval_outputs_are_deterministic(head):
    model = model_of(head)
    assert torch.equal(first_output(model, token_ids()), first_output(model, token_ids()))


@each_head
def test_right_padding_leaves_each_row_its_outputs_alone(head):
    model = model_of(head)
    short = token_ids(batch=1, length=12, seed=3)
    batch = torch.cat([torch.nn.functional.pad(short, (0, 8)), token_ids(batch=1, seed=4)])
    mask = torch.ones_like(batch)
    mask[0, 12:] = 0
    alone, padded = first_output(model, short), first_output(model, batch, attention_mask=mask)
    # per-token outputs at the real tokens; a sequence's outputs whole
    padded_row = padded[0, :12] if padded.shape[1] == batch.shape[1] else padded[0]
    torch.testing.assert_close(padded_row, alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("position_embedding_type", ["rotary", "axial", "absolute"])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("head", [ReformerKoModel, ReformerKoForCausalLM], ids=name)
def test_a_padded_batch_gives_each_row_the_outputs_of_the_row_alone(head, side, position_embedding_type):
    model = model_of(head, position_embedding_type=position_embedding_type)
    short, full = token_ids(batch=1, length=12, seed=3), token_ids(batch=1, seed=4)
    padding = (0, 8) if side == "right" else (8, 0)
    batch = torch.cat([torch.nn.functional.pad(short, padding), full])
    mask = torch.cat([torch.nn.functional.pad(torch.ones_like(short), padding), torch.ones_like(full)])
    # each row's positions count from its first real token, as generate() derives them from the mask
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    padded = first_output(model, batch, attention_mask=mask, position_ids=position_ids)
    real = slice(0, 12) if side == "right" else slice(8, 20)
    torch.testing.assert_close(padded[0, real], first_output(model, short)[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded[1], first_output(model, full)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "strategy",
    [{"do_sample": False}, {"do_sample": True, "top_k": 5}, {"num_beams": 2}],
    ids=["greedy", "sample", "beam"],
)
def test_generate_returns_dict_outputs_with_scores_and_hidden_states(strategy):
    model = model_of(ReformerKoForCausalLM)
    prompt = token_ids(batch=2, length=6)
    config = GenerationConfig(max_new_tokens=3, pad_token_id=0, return_dict_in_generate=True, **strategy)
    output = model.generate(
        prompt, attention_mask=torch.ones_like(prompt), generation_config=config, output_scores=True,
        output_hidden_states=True,
    )  # fmt: skip
    assert output.sequences.shape == (2, 9) and torch.equal(output.sequences[:, :6], prompt)
    assert len(output.scores) == 3 and all(score.shape[-1] == VOCAB for score in output.scores)
    hidden_states = output.hidden_states
    assert hidden_states is not None and len(hidden_states) == 3
    assert all(len(step) == LAYERS + 1 and all(state is not None for state in step) for step in hidden_states)


# Precision -------------------------------------------------------------------------------------------------------


@each_head
def test_a_float64_model_computes_the_float32_outputs_more_precisely(head):
    model = model_of(head)
    single = first_output(model, token_ids())
    double = first_output(model.double(), token_ids())
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), single, atol=1e-4, rtol=1e-4)


@each_head
def test_bf16_autocast_gives_finite_outputs_close_to_float32(head):
    model = model_of(head)
    single = first_output(model, token_ids())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reduced = first_output(model, token_ids())
    assert torch.isfinite(reduced).all()
    torch.testing.assert_close(reduced.float(), single, atol=0.1, rtol=0.1)


# What Reformer cannot do -----------------------------------------------------------------------------------------


def test_the_attention_implementations_reformer_cannot_run_are_declared_and_refused():
    assert ReformerKoModel._supports_flex_attn
    assert not ReformerKoModel._supports_sdpa and not ReformerKoModel._supports_flash_attn
    assert not ReformerKoModel._supports_attention_backend
    for implementation in ("sdpa", "flash_attention_2"):
        with pytest.raises((ValueError, ImportError)):
            transformers.AutoModel.from_config(tiny_config(), attn_implementation=implementation)


@each_head
def test_attention_weights_are_refused_with_the_reason(head):
    with pytest.raises(ValueError, match="no attention weights"):
        model_of(head)(token_ids(), output_attentions=True)


def test_gradient_checkpointing_is_declared_unsupported():
    # Reversible layers already recompute activations in the backward pass instead of storing them.
    assert not ReformerKoModel.supports_gradient_checkpointing
    model = model_of(ReformerKoModel)
    # What the Trainer calls for gradient_checkpointing=True: activation_checkpointing_enable where transformers has
    # it (5.24, where gradient_checkpointing_enable is its deprecated alias), gradient_checkpointing_enable before.
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    with pytest.raises(ValueError, match="does not support"):
        enable()
