"""The task heads: HF output types and labels conventions, generation, and the Trainer."""

import pytest
import torch
from tiny_models import tiny_config
from transformers import Trainer, TrainingArguments

from reformer_ko import (
    ReformerKoForCausalLM,
    ReformerKoForMaskedLM,
    ReformerKoForPreTraining,
    ReformerKoForQuestionAnswering,
    ReformerKoForSequenceClassification,
    ReformerKoForTokenClassification,
)


def tokens(batch=2, length=40, seed=0):
    return torch.randint(5, 120, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_masked_lm_ignores_labels_of_minus_100(config):
    model = ReformerKoForMaskedLM(config).eval()
    inputs = tokens()
    labels = torch.full_like(inputs, -100)
    labels[:, 3] = inputs[:, 3]
    outputs = model(inputs, labels=labels)
    expected = torch.nn.functional.cross_entropy(outputs.logits[:, 3], inputs[:, 3])
    torch.testing.assert_close(outputs.loss, expected)


def sparse_labels(inputs):
    labels = torch.full_like(inputs, -100)
    labels[0, [3, 17]] = inputs[0, [3, 17]]
    labels[1, 30] = inputs[1, 30]
    return labels


def test_sparse_prediction_gives_the_dense_loss_and_gradients_from_labelled_positions_only():
    dense = ReformerKoForMaskedLM(tiny_config()).eval()
    sparse = ReformerKoForMaskedLM(tiny_config()).eval()
    sparse.load_state_dict(dense.state_dict())
    inputs = tokens()
    labels = sparse_labels(inputs)
    dense_out, sparse_out = dense(inputs, labels=labels), sparse(inputs, labels=labels, sparse_prediction=True)
    assert sparse_out.logits.shape == (3, 120)
    torch.testing.assert_close(sparse_out.logits, dense_out.logits[labels != -100])
    torch.testing.assert_close(sparse_out.loss, dense_out.loss)
    dense_out.loss.backward()
    sparse_out.loss.backward()
    for (name, a), b in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, msg=name)
    # Without labels (fill-mask, the pipeline) the logits cover every position.
    assert sparse(inputs, sparse_prediction=True).logits.shape == (2, 40, 120)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_config_with_sparse_prediction_does_not_change_what_forward_returns(mode):
    model = ReformerKoForMaskedLM(tiny_config(sparse_prediction=True)).train(mode == "train")
    inputs = tokens()
    assert model(inputs, labels=sparse_labels(inputs)).logits.shape == (2, 40, 120)


def test_masked_lm_loss_divides_by_the_given_number_of_labelled_tokens(config):
    model = ReformerKoForMaskedLM(config).eval()
    inputs = tokens()
    labels = sparse_labels(inputs)
    mean, over_9 = model(inputs, labels=labels).loss, model(inputs, labels=labels, num_items_in_batch=9).loss
    torch.testing.assert_close(over_9, mean * 3 / 9)


@pytest.mark.parametrize("head", ["masked", "causal", "token-classification", "discriminator", "question-answering"])
def test_a_batch_without_labelled_tokens_has_loss_zero_with_a_gradient(head):
    config = tiny_config(is_decoder=head == "causal", num_labels=3)
    model_class = {
        "masked": ReformerKoForMaskedLM,
        "causal": ReformerKoForCausalLM,
        "token-classification": ReformerKoForTokenClassification,
        "discriminator": ReformerKoForPreTraining,
        "question-answering": ReformerKoForQuestionAnswering,
    }[head]
    model = model_class(config)
    inputs = tokens()
    if head == "question-answering":
        labels = {"start_positions": torch.tensor([40, 99]), "end_positions": torch.tensor([40, 99])}
    else:
        labels = {"labels": torch.full_like(inputs, -100)}
    loss = model(inputs, **labels).loss
    assert loss.item() == 0.0
    loss.backward()
    assert all(parameter.grad is not None for parameter in model.parameters() if parameter.requires_grad)


def test_masked_lm_output_layer_is_tied_to_the_input_embeddings(config):
    model = ReformerKoForMaskedLM(config)
    assert model.lm_head.decoder.weight is model.reformer.embeddings.word_embeddings.weight


def test_causal_lm_loss_predicts_the_next_token():
    model = ReformerKoForCausalLM(tiny_config(is_decoder=True)).eval()
    inputs = tokens()
    outputs = model(inputs, labels=inputs)
    expected = torch.nn.functional.cross_entropy(outputs.logits[:, :-1].reshape(-1, 120), inputs[:, 1:].reshape(-1))
    torch.testing.assert_close(outputs.loss, expected)


def test_causal_lm_takes_shifted_labels_instead_of_shifting_labels():
    model = ReformerKoForCausalLM(tiny_config(is_decoder=True)).eval()
    inputs = tokens()
    shift_labels = torch.nn.functional.pad(inputs[:, 1:], (0, 1), value=-100)
    torch.testing.assert_close(model(inputs, shift_labels=shift_labels).loss, model(inputs, labels=inputs).loss)


def test_causal_lm_needs_a_decoder_config(config):
    with pytest.raises(ValueError, match="is_decoder=True"):
        ReformerKoForCausalLM(config)


@pytest.mark.parametrize("strategy", [{"do_sample": False}, {"do_sample": True}, {"num_beams": 3}])
def test_generate_continues_a_prompt(strategy):
    model = ReformerKoForCausalLM(tiny_config(is_decoder=True)).eval()
    prompt = tokens(batch=1, length=10)
    generated = model.generate(prompt, max_new_tokens=6, pad_token_id=0, **strategy)
    assert generated.shape == (1, 16)
    assert torch.equal(generated[:, :10], prompt)


def test_generate_greedy_matches_argmax_of_the_forward_pass():
    model = ReformerKoForCausalLM(tiny_config(is_decoder=True)).eval()
    prompt = tokens(batch=1, length=10)
    generated = model.generate(prompt, max_new_tokens=1, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        assert generated[0, -1] == model(prompt).logits[0, -1].argmax()


def test_generate_never_runs_past_the_context():
    model = ReformerKoForCausalLM(tiny_config(is_decoder=True, max_position_embeddings=64)).eval()
    generated = model.generate(tokens(batch=1, length=60), max_new_tokens=20, do_sample=False, pad_token_id=0)
    assert generated.shape[1] == 64


def test_discriminator_loss_leaves_out_padding(config):
    model = ReformerKoForPreTraining(config).eval()
    inputs = tokens()
    labels = torch.randint(0, 2, inputs.shape)
    mask = torch.ones_like(inputs)
    mask[1, 30:] = 0
    outputs = model(inputs, attention_mask=mask, labels=labels)
    assert outputs.logits.shape == inputs.shape
    active = mask.bool()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits[active], labels[active].float())
    torch.testing.assert_close(outputs.loss, expected)


def test_question_answering_loss_ignores_positions_outside_the_input(config):
    model = ReformerKoForQuestionAnswering(config).eval()
    inputs = tokens()
    outputs = model(inputs, start_positions=torch.tensor([3, 500]), end_positions=torch.tensor([5, 500]))
    start = torch.nn.functional.cross_entropy(outputs.start_logits[:1], torch.tensor([3]))
    end = torch.nn.functional.cross_entropy(outputs.end_logits[:1], torch.tensor([5]))
    torch.testing.assert_close(outputs.loss, (start + end) / 2)
    assert outputs.start_logits.shape == outputs.end_logits.shape == inputs.shape


@pytest.mark.parametrize(
    "num_labels, labels, problem_type",
    [
        (3, torch.tensor([0, 2]), "single_label_classification"),
        (1, torch.tensor([0.5, -1.0]), "regression"),
        (3, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), "multi_label_classification"),
    ],
)
def test_sequence_classification_infers_the_problem_type(num_labels, labels, problem_type):
    model = ReformerKoForSequenceClassification(tiny_config(num_labels=num_labels)).eval()
    outputs = model(tokens(), labels=labels)
    assert outputs.logits.shape == (2, num_labels)
    assert model.config.problem_type == problem_type
    assert torch.isfinite(outputs.loss)


def test_token_classification_ignores_labels_of_minus_100():
    model = ReformerKoForTokenClassification(tiny_config(num_labels=5)).eval()
    inputs = tokens()
    labels = torch.full_like(inputs, -100)
    labels[0, 1] = 4
    outputs = model(inputs, labels=labels)
    torch.testing.assert_close(outputs.loss, torch.nn.functional.cross_entropy(outputs.logits[0, 1:2], labels[0, 1:2]))


def test_return_dict_false_gives_a_tuple(config):
    model = ReformerKoForMaskedLM(config).eval()
    inputs = tokens()
    loss, logits = model(inputs, labels=inputs, return_dict=False)
    assert logits.shape == (2, 40, 120) and loss.dim() == 0


def test_initialisation_is_bert_style_for_reformer_pytorch_layers_too(config):
    model = ReformerKoForMaskedLM(tiny_config(vocab_size=2000, hidden_size=64))
    assert abs(model.reformer.embeddings.word_embeddings.weight.std().item() - 0.02) < 0.002
    attention = model.reformer.encoder.layers.blocks[0].f.net.fn
    assert abs(attention.toqk.weight.std().item() - 0.02) < 0.004
    assert torch.all(attention.to_out.bias == 0)


class LossRecordingTrainer(Trainer):
    losses = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self.losses.append(loss.item())
        return loss


def test_trainer_loss_is_the_mean_over_labelled_tokens(config, tmp_path):
    model = ReformerKoForMaskedLM(config).eval()
    inputs = tokens(batch=4, length=32)
    labels = inputs.clone()
    labels[:, ::2] = -100
    dataset = [{"input_ids": ids, "labels": label} for ids, label in zip(inputs, labels)]
    args = TrainingArguments(
        tmp_path, per_device_train_batch_size=4, max_steps=1, learning_rate=0.0, report_to=[], use_cpu=True,
        gradient_accumulation_steps=1, logging_strategy="no", save_strategy="no",
    )
    trainer = LossRecordingTrainer(model=model, args=args, train_dataset=dataset)
    trainer.train()
    model.eval()
    with torch.no_grad():
        expected = model(inputs, labels=labels).loss.item()
    # training mode draws random rotations: the same loss up to hashing noise, not scaled by anything
    assert abs(trainer.losses[0] - expected) < 0.2 * expected


@pytest.mark.parametrize("head", [ReformerKoForMaskedLM, ReformerKoForCausalLM, ReformerKoForTokenClassification])
def test_the_trainer_label_names_are_labels_alone(head):
    from transformers.utils import find_labels

    assert find_labels(head) == ["labels"]


def test_an_unknown_keyword_is_a_type_error():
    model = ReformerKoForCausalLM(tiny_config(is_decoder=True)).eval()
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['shift_label'\\]"):
        model(tokens(), shift_label=tokens())
