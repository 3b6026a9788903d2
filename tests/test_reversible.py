"""Reversible layers: the same gradients as the irreversible path, also under bf16 autocast."""

import pytest
import torch
from reformer_pytorch.reversible import _ReversibleFunction
from tiny_models import tiny_config

from reformer_ko import ReformerKoForMaskedLM
from reformer_ko import reversible as reversible_module


def reversible_and_irreversible(**overrides):
    torch.manual_seed(0)
    reversible = ReformerKoForMaskedLM(tiny_config(hidden_size=64, **overrides)).train()
    irreversible = ReformerKoForMaskedLM(tiny_config(hidden_size=64, reverse_thres=10**6, **overrides)).train()
    irreversible.load_state_dict(reversible.state_dict())
    return reversible, irreversible


def gradients(model, tokens, autocast_dtype=None):
    model.zero_grad()
    torch.manual_seed(1)  # the same LSH rotations and dropout for both models
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        loss = model(tokens, labels=tokens).loss
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def max_difference(first, second):
    assert first.keys() == second.keys()
    return max((first[name] - second[name]).abs().max().item() for name in first)


@pytest.mark.parametrize("overrides", [{}, {"attn_chunks": 2}, {"ff_chunks": 2}, {"weight_tie": True}, {"is_decoder": True}])
def test_reversible_gradients_equal_irreversible_ones(overrides):
    reversible, irreversible = reversible_and_irreversible(**overrides)
    tokens = torch.randint(5, 120, (4, 128))
    reference = gradients(irreversible, tokens)
    assert len(reference) == len(list(irreversible.parameters()))
    assert max_difference(gradients(reversible, tokens), reference) < 1e-6


def test_gradients_in_eval_mode_equal_irreversible_ones():
    # reformer-pytorch's reversible backward replays an RNG state that an eval-mode forward never recorded.
    reversible, irreversible = reversible_and_irreversible()
    tokens = torch.randint(5, 120, (4, 128))
    reference = gradients(irreversible.eval(), tokens)
    assert max_difference(gradients(reversible.eval(), tokens), reference) < 1e-6


def test_reversible_backward_recomputes_under_the_forward_autocast():
    reversible, irreversible = reversible_and_irreversible(attn_chunks=2)
    tokens = torch.randint(5, 120, (4, 128))
    reference = gradients(irreversible, tokens, torch.bfloat16)
    ours = gradients(reversible, tokens, torch.bfloat16)
    assert all(torch.isfinite(grad).all() for grad in ours.values())
    # reformer-pytorch's own backward recomputes in fp32 and drifts from the bf16 forward.
    original = reversible_module._AutocastReversibleFunction
    reversible_module._AutocastReversibleFunction = _ReversibleFunction
    try:
        upstream = gradients(reversible, tokens, torch.bfloat16)
    finally:
        reversible_module._AutocastReversibleFunction = original
    scale = max(grad.abs().max().item() for grad in reference.values())
    assert max_difference(ours, reference) < 1e-3 * scale
    assert max_difference(ours, reference) < max_difference(upstream, reference) / 4


def test_hidden_states_have_one_entry_per_layer_and_carry_gradients(config):
    model = ReformerKoForMaskedLM(config).train()
    tokens = torch.randint(5, 120, (2, 40))
    outputs = model(tokens, labels=tokens, output_hidden_states=True)
    assert len(outputs.hidden_states) == config.num_hidden_layers + 1
    assert all(state.shape == (2, 40, config.hidden_size) for state in outputs.hidden_states)
    outputs.hidden_states[1].sum().backward()
    assert model.reformer.embeddings.word_embeddings.weight.grad is not None


def test_hidden_states_do_not_change_the_output(config):
    model = ReformerKoForMaskedLM(config).eval()
    tokens = torch.randint(5, 120, (2, 40))
    with torch.no_grad():
        plain = model(tokens).logits
        with_states = model(tokens, output_hidden_states=True)
    torch.testing.assert_close(plain, with_states.logits, atol=1e-6, rtol=0)
