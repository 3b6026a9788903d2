"""ElectraPretrainingModel: generator size, shared embeddings, replaced-token labels, loss, saving as two checkpoints."""

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_config
from transformers import AutoModelForMaskedLM, AutoModelForPreTraining, AutoModelForQuestionAnswering

from reformer_ko import ReformerKoConfig, ReformerKoForMaskedLM, ReformerKoForPreTraining
from reformer_ko.electra import ElectraPretrainingModel, generator_config

MASK_ID = 4


def electra(seed=0, **options):
    torch.manual_seed(seed)
    return ElectraPretrainingModel(tiny_config(hidden_size=48, num_attention_heads=3), **options)


def masked_batch(seed=0, batch=2, length=40):
    """Token ids with positions 3-12 masked: `input_ids` carry [MASK] there, `labels` the original ids."""
    original = torch.randint(5, 120, (batch, length), generator=torch.Generator().manual_seed(seed))
    labels = torch.full_like(original, -100)
    labels[:, 3:13] = original[:, 3:13]
    input_ids = original.clone()
    input_ids[:, 3:13] = MASK_ID
    attention_mask = torch.ones_like(original)
    attention_mask[1, 30:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def test_generator_is_a_third_as_wide_with_the_same_depth_and_head_size():
    discriminator = ReformerKoConfig.from_preset(
        "mlm-small", hidden_size=768, num_attention_heads=12, num_hidden_layers=12
    )
    generator = generator_config(discriminator)
    assert (generator.hidden_size, generator.num_attention_heads, generator.num_hidden_layers) == (256, 4, 12)
    assert generator.embedding_size == discriminator.embedding_size == 768
    assert generator_config(discriminator, size_ratio=0.5).hidden_size == 384


def test_the_generator_scores_and_samples_only_the_masked_positions():
    model = electra().eval()
    assert model.generator.config.sparse_prediction
    batch = masked_batch()
    torch.manual_seed(1)
    output = model(**batch)
    assert output.generator_logits.shape == (20, 120)  # 2 sequences x 10 masked positions
    # A generator computing every position (as saved before sparse prediction) gives the same ELECTRA step.
    dense_config = ReformerKoConfig(**{**model.generator.config.to_dict(), "sparse_prediction": False})
    dense_generator = ReformerKoForMaskedLM(dense_config).eval()
    dense_generator.load_state_dict(model.generator.state_dict())
    dense = ElectraPretrainingModel(model.config, discriminator=model.discriminator, generator=dense_generator).eval()
    torch.manual_seed(1)
    dense_output = dense(**batch)
    torch.testing.assert_close(dense_output.generator_logits[batch["labels"] != -100], output.generator_logits)
    assert torch.equal(dense_output.discriminator_labels, output.discriminator_labels)
    torch.testing.assert_close(dense_output.loss, output.loss)


def test_token_position_and_segment_embeddings_are_shared():
    config = tiny_config(hidden_size=48, num_attention_heads=3, position_embedding_type="absolute")
    model = ElectraPretrainingModel(config)
    assert model.generator.reformer.embeddings is model.discriminator.reformer.embeddings
    assert model.generator.lm_head.decoder.weight is model.discriminator.reformer.embeddings.word_embeddings.weight
    assert model.generator.config.hidden_size == 16 and model.generator.reformer.embeddings_project is not None


def test_replaced_tokens_are_labelled_and_padding_is_ignored():
    batch = masked_batch()
    output = electra()(**batch)
    labels = output.discriminator_labels
    assert (labels[:, :3] == 0).all() and (labels[0, 13:] == 0).all()
    assert (labels[1, 30:] == -100).all()
    # An untrained generator over 120 tokens rarely reproduces the original token.
    assert labels[:, 3:13].float().mean() > 0.8


def test_a_token_the_generator_reproduces_counts_as_original():
    model = electra()
    batch = masked_batch()
    batch["labels"][:, 3:13] = 77
    with torch.no_grad():
        model.generator.lm_head.decoder.bias[77] = 1e4  # the generator now always samples token 77
    labels = model(**batch).discriminator_labels
    assert (labels[:, 3:13] == 0).all()


def test_loss_is_generator_loss_plus_weighted_discriminator_loss():
    batch = masked_batch()
    for weight in (50.0, 7.0):
        output = electra(discriminator_loss_weight=weight)(**batch)
        torch.testing.assert_close(output.loss, output.generator_loss + weight * output.discriminator_loss)


def test_no_gradient_flows_through_the_sampling():
    model = electra()
    output = model(**masked_batch())
    scored = output.discriminator_labels != -100
    discriminator_loss = F.binary_cross_entropy_with_logits(
        output.discriminator_logits[scored], output.discriminator_labels[scored].float()
    )
    discriminator_loss.backward()
    # The discriminator's loss reaches the shared embeddings, and no weight that only the generator uses.
    assert model.discriminator.reformer.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    generator_only = [
        parameter
        for name, parameter in model.generator.named_parameters()
        if not name.startswith("reformer.embeddings.") and name != "lm_head.decoder.weight"
    ]
    assert generator_only and all(parameter.grad is None for parameter in generator_only)


def test_labels_are_required():
    with pytest.raises(ValueError, match="needs masked-LM `labels`"):
        electra()(masked_batch()["input_ids"])


def test_saves_the_discriminator_and_the_generator_as_standalone_checkpoints(tmp_path):
    model = electra().eval()
    model.save_pretrained(tmp_path)
    discriminator = AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    generator = AutoModelForMaskedLM.from_pretrained(tmp_path / "generator").eval()
    assert type(discriminator) is ReformerKoForPreTraining and type(generator) is ReformerKoForMaskedLM
    tokens = masked_batch()["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(discriminator(tokens).logits, model.discriminator(tokens).logits, rtol=0, atol=0)
        torch.testing.assert_close(generator(tokens).logits, model.generator(tokens).logits, rtol=0, atol=0)


def test_the_question_answering_head_gets_the_whole_discriminator_backbone(tmp_path):
    model = electra()
    model.save_pretrained(tmp_path)
    qa, info = AutoModelForQuestionAnswering.from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["missing_keys"]) == {"qa_outputs.weight", "qa_outputs.bias"}
    assert not info["unexpected_keys"]
    backbone = model.discriminator.reformer.state_dict()
    assert all(torch.equal(tensor, backbone[name]) for name, tensor in qa.reformer.state_dict().items())


def test_a_saved_model_loads_back_to_continue_training(tmp_path):
    model = electra(discriminator_loss_weight=20.0)
    model.save_pretrained(tmp_path, state_dict=model.state_dict())
    loaded = ElectraPretrainingModel.from_pretrained(tmp_path, discriminator_loss_weight=20.0)
    assert loaded.generator.reformer.embeddings is loaded.discriminator.reformer.embeddings
    fresh = electra(seed=1)
    fresh.load_saved_weights(tmp_path)
    for reloaded in (loaded, fresh):
        for (name, tensor), (_, expected) in zip(reloaded.state_dict().items(), model.state_dict().items()):
            assert torch.equal(tensor, expected), name


def test_loading_weights_of_another_shape_is_an_error(tmp_path):
    electra().save_pretrained(tmp_path)
    other = ElectraPretrainingModel(tiny_config(hidden_size=48, num_attention_heads=3, num_hidden_layers=3))
    with pytest.raises(ValueError, match="does not hold the weights"):
        other.load_saved_weights(tmp_path)
