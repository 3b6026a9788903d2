"""Bad input gets a ValueError that names the problem."""

import pytest
import torch

from reformer_ko import ReformerKoForMaskedLM


@pytest.fixture
def model(config):
    return ReformerKoForMaskedLM(config).eval()


def test_input_longer_than_the_context_names_both_lengths(model):
    with pytest.raises(ValueError, match=r"257 tokens .* max_position_embeddings \(256\)"):
        model(torch.ones(1, 257, dtype=torch.long))


@pytest.mark.parametrize("bad_id", [120, 5000, -1])
def test_token_id_outside_the_vocabulary(model, bad_id):
    inputs = torch.full((1, 10), 5)
    inputs[0, 3] = bad_id
    with pytest.raises(ValueError, match=rf"Token id {bad_id} is outside the vocabulary \[0, 120\)"):
        model(inputs)


@pytest.mark.parametrize("name", ["attention_mask", "token_type_ids"])
def test_mask_or_segment_shape_mismatch(model, name):
    inputs = torch.full((2, 10), 5)
    with pytest.raises(ValueError, match=rf"{name} has shape \(2, 9\) but input_ids has shape \(2, 10\)"):
        model(inputs, **{name: torch.zeros(2, 9, dtype=torch.long)})


def test_segment_id_outside_type_vocab_size(model):
    inputs = torch.full((1, 10), 5)
    with pytest.raises(ValueError, match="token_type_ids must be in \\[0, 2\\)"):
        model(inputs, token_type_ids=torch.full((1, 10), 2))


def test_missing_or_empty_input_ids(model):
    with pytest.raises(ValueError, match="input_ids is required"):
        model(None)
    with pytest.raises(ValueError, match="empty"):
        model(torch.ones(1, 0, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bool])
def test_token_ids_that_are_not_integers(model, dtype):
    with pytest.raises(ValueError, match=rf"input_ids must be integer token ids, got dtype {dtype}"):
        model(torch.ones(1, 10, dtype=dtype))


def test_a_batch_of_no_rows(model):
    with pytest.raises(ValueError, match="no rows"):
        model(torch.ones(0, 10, dtype=torch.long))


def test_attention_weights_are_refused_with_the_reason(model, config):
    with pytest.raises(ValueError, match="no attention weights .* LSH attention"):
        model(torch.ones(1, 10, dtype=torch.long), output_attentions=True)
    with pytest.raises(ValueError, match="no attention weights"):
        config.output_attentions = True
