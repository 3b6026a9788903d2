"""Padding-safe and deterministic LSH attention, through whole models."""

import pytest
import torch

from reformer_ko import (
    ReformerKoForCausalLM,
    ReformerKoForMaskedLM,
    ReformerKoForSequenceClassification,
    ReformerKoModel,
)
from reformer_ko.lsh_attention import PaddingSafeLSHAttention
from reformer_ko.modeling_reformer_ko import HEADS

from tiny_models import tiny_config


def first_output(output):
    return output[0]


def alone_and_padded_in_a_batch(model, length=50, padded_length=200, seed=0):
    """Outputs for one sequence run alone, and for the same sequence in a batch padded to `padded_length`."""
    generator = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    tokens = torch.randint(5, vocab, (1, length), generator=generator)
    types = torch.zeros_like(tokens)
    types[:, length // 2 :] = 1
    batch = torch.randint(5, vocab, (3, padded_length), generator=generator)
    batch[0] = 0
    batch[0, :length] = tokens[0]
    batch_types = torch.zeros_like(batch)
    batch_types[0, :length] = types[0]
    mask = torch.ones_like(batch)
    mask[0, length:] = 0
    with torch.no_grad():
        alone = first_output(model(tokens, token_type_ids=types))
        padded = first_output(model(batch, attention_mask=mask, token_type_ids=batch_types))
    return alone[0], padded[0]


@pytest.mark.parametrize("head", list(HEADS.values()), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("position_embedding_type", ["rotary", "axial", "absolute"])
def test_padding_does_not_change_outputs(head, position_embedding_type):
    is_decoder = head is ReformerKoForCausalLM
    config = tiny_config(is_decoder=is_decoder, position_embedding_type=position_embedding_type)
    torch.manual_seed(0)
    model = head(config).eval()
    alone, padded = alone_and_padded_in_a_batch(model)
    if head is not ReformerKoForSequenceClassification:  # per-token outputs: compare the real tokens
        padded = padded[:50]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=0)


@pytest.mark.parametrize("is_decoder", [False, True])
def test_padding_does_not_change_outputs_with_many_chunks(is_decoder):
    # 4 hash rounds, a 1,024-token context and a sequence that fills several chunks.
    config = tiny_config(is_decoder=is_decoder, num_hashes=4, max_position_embeddings=1024)
    torch.manual_seed(0)
    model = ReformerKoModel(config).eval()
    alone, padded = alone_and_padded_in_a_batch(model, length=130, padded_length=1024)
    torch.testing.assert_close(alone, padded[:130], atol=1e-5, rtol=0)


def test_any_length_up_to_the_context_works(config):
    model = ReformerKoForMaskedLM(config).eval()
    for length in (1, 17, 31, 32, 33, 255, 256):
        logits = model(torch.randint(5, config.vocab_size, (2, length))).logits
        assert logits.shape == (2, length, config.vocab_size)


@pytest.mark.parametrize("is_decoder", [False, True])
def test_eval_outputs_are_identical_across_calls(is_decoder):
    model = ReformerKoForMaskedLM(tiny_config(is_decoder=is_decoder)).eval()
    tokens = torch.randint(5, 120, (2, 100))
    with torch.no_grad():
        first, second = model(tokens).logits, model(tokens).logits
    assert torch.equal(first, second)


def test_eval_outputs_do_not_depend_on_the_global_seed(config):
    model = ReformerKoForMaskedLM(config).eval()
    tokens = torch.randint(5, 120, (2, 100))
    with torch.no_grad():
        torch.manual_seed(1)
        first = model(tokens).logits
        torch.manual_seed(2)
        second = model(tokens).logits
    assert torch.equal(first, second)


def test_hash_seed_changes_eval_hashing():
    tokens = torch.randint(5, 120, (2, 100))
    torch.manual_seed(0)
    model = ReformerKoForMaskedLM(tiny_config()).eval()
    other = ReformerKoForMaskedLM(tiny_config(hash_seed=1)).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(model(tokens).logits, other(tokens).logits)


def test_training_draws_fresh_rotations(config):
    model = ReformerKoForMaskedLM(config).train()
    tokens = torch.randint(5, 120, (2, 100))
    with torch.no_grad():
        first, second = model(tokens).logits, model(tokens).logits
    assert not torch.allclose(first, second)


def test_causal_attention_never_reads_later_values():
    # Changing the values (not the hashed queries/keys) of later positions must not change earlier outputs.
    # (Whole-model outputs can: later tokens' hashes move chunk boundaries, as in any LSH attention.)
    attention = PaddingSafeLSHAttention(num_buckets=8, hash_seed=0, bucket_size=16, n_hashes=2, causal=True).eval()
    qk, v = torch.randn(2, 128, 16), torch.randn(2, 128, 16)
    changed = v.clone()
    changed[:, 60:] = 100.0
    earlier, _, _ = attention(qk, v)
    after_change, _, _ = attention(qk, changed)
    torch.testing.assert_close(earlier[:, :60], after_change[:, :60], atol=1e-5, rtol=0)
    assert not torch.allclose(earlier[:, 60:], after_change[:, 60:])
