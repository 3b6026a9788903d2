"""examples/run_electra.py end to end on a tiny model: the discriminator checkpoint and the generator beside it."""

import json

import pytest
import torch
from pretraining_fixtures import (
    EXAMPLES,
    TINY_ELECTRA,
    common_arguments,
    logged_losses,
    remote_code_outputs,
    run_python,
    small_tokenizer,
)
from transformers import AutoModelForMaskedLM, AutoModelForPreTraining, AutoModelForQuestionAnswering, AutoTokenizer

from reformer_ko import ReformerKoForMaskedLM, ReformerKoForPreTraining

SENTENCE_IDS = [[2, 100, 200, 300, 400, 3]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Overfit two blocks of the demo corpus: 100 steps at a constant learning rate."""
    root = tmp_path_factory.mktemp("run_electra")
    output_dir = root / "output"
    run_python(
        [
            EXAMPLES / "run_electra.py",
            *common_arguments(small_tokenizer(root / "tokenizer"), output_dir, root / "cache"),
            "--config_preset", "electra-small-discriminator",
            "--config_overrides", TINY_ELECTRA,
            "--validation_split_percentage", "10",
            "--max_train_samples", "2",
            "--do_train", "--do_eval",
            "--max_steps", "100",
            "--per_device_train_batch_size", "4",
            "--learning_rate", "3e-3",
            "--lr_scheduler_type", "constant",
            "--logging_steps", "20",
            "--logging_first_step",
            "--save_steps", "100",
        ],
        root,
    )  # fmt: skip
    return output_dir


def test_training_loss_drops_well_below_its_start(trained):
    losses = logged_losses(trained)
    first, last = losses[1], losses[max(losses)]
    assert first > 30  # generator ≈ ln(800) + 50 × discriminator ≈ 50 ln 2
    # Masked anew every epoch (dynamic masking): 41.1 -> 22.4 in 100 steps.
    assert last < 0.6 * first, losses


def test_both_parts_of_the_loss_are_logged_and_drop(trained):
    generator, discriminator = logged_losses(trained, "generator_loss"), logged_losses(trained, "discriminator_loss")
    assert sorted(generator) == sorted(discriminator) == [1, 20, 40, 60, 80, 100]
    assert generator[100] < 0.65 * generator[1], generator  # 6.64 -> 3.68
    # Knowing only that about 15% of the tokens are replaced gives H(0.15) = 0.42; the discriminator must beat it.
    assert discriminator[1] == pytest.approx(0.69, abs=0.02) and discriminator[100] < 0.4, discriminator


def test_eval_metrics_are_written(trained):
    metrics = json.loads((trained / "eval_results.json").read_text())
    for name in (
        "generator_accuracy",
        "discriminator_accuracy",
        "replaced_token_f1",
        "replaced_token_precision",
        "replaced_token_recall",
    ):
        assert 0 <= metrics[f"eval_{name}"] <= 1, name
    # about 15% of the tokens are masked, and nearly all of them replaced by an untrained generator
    assert 0.05 < metrics["eval_replaced_token_fraction"] < 0.2
    assert metrics["eval_loss"] == pytest.approx(
        metrics["eval_generator_loss"] + 50 * metrics["eval_discriminator_loss"], rel=0.05
    )


def test_output_directory_is_the_discriminator_with_the_generator_beside_it(trained):
    files = {path.name for path in trained.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "modeling_reformer_ko.py",
        "tokenizer.json",
        "README.md",
        "generator",
    } <= files
    generator_files = {path.name for path in (trained / "generator").iterdir()}
    assert {"config.json", "model.safetensors", "modeling_reformer_ko.py", "tokenizer.json"} <= generator_files
    discriminator_config = json.loads((trained / "config.json").read_text())
    generator_config = json.loads((trained / "generator" / "config.json").read_text())
    assert discriminator_config["architectures"] == ["ReformerKoForPreTraining"]
    assert generator_config["architectures"] == ["ReformerKoForMaskedLM"]
    assert (
        generator_config["hidden_size"] == discriminator_config["hidden_size"] // 2
    )  # a third of 2 heads, rounded to 1 head
    card = (trained / "README.md").read_text(encoding="utf-8")
    assert "| eval_replaced_token_f1 |" in card and "embeddings shared with the discriminator" in card


def test_checkpoints_hold_both_models_too(trained):
    checkpoint = trained / "checkpoint-100"
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "generator" / "model.safetensors").is_file()


def test_output_directory_reloads_with_auto_classes(trained):
    discriminator = AutoModelForPreTraining.from_pretrained(trained)
    generator = AutoModelForMaskedLM.from_pretrained(trained, subfolder="generator")
    assert type(discriminator) is ReformerKoForPreTraining and type(generator) is ReformerKoForMaskedLM
    assert torch.equal(
        generator.reformer.embeddings.word_embeddings.weight, discriminator.reformer.embeddings.word_embeddings.weight
    )
    assert len(AutoTokenizer.from_pretrained(trained / "generator")) == discriminator.config.vocab_size


def test_question_answering_fine_tuning_starts_from_the_whole_discriminator(trained):
    _, info = AutoModelForQuestionAnswering.from_pretrained(trained, output_loading_info=True)
    assert set(info["missing_keys"]) == {"qa_outputs.weight", "qa_outputs.bias"}
    assert not info["unexpected_keys"]


def test_output_directory_loads_as_remote_code_without_the_package(trained, tmp_path):
    remote = remote_code_outputs("AutoModelForPreTraining", trained, SENTENCE_IDS, tmp_path)
    with torch.no_grad():
        local = AutoModelForPreTraining.from_pretrained(trained).eval()(torch.tensor(SENTENCE_IDS)).logits
    torch.testing.assert_close(torch.tensor(remote), local, rtol=1e-5, atol=1e-5)
