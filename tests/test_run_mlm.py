"""examples/run_mlm.py end to end on a tiny model, and the Trainer behaviour every pretraining script shares."""

import importlib.util
import json
import math

import pytest
import torch
from pretraining_fixtures import (
    CORPUS,
    EXAMPLES,
    TINY_MLM,
    common_arguments,
    logged_losses,
    remote_code_outputs,
    run_python,
    small_tokenizer,
)
from tiny_models import tiny_config
from transformers import AutoModelForMaskedLM, AutoTokenizer, EvalPrediction, TrainerCallback, TrainingArguments, pipeline

from reformer_ko import ReformerKoForMaskedLM
from reformer_ko.data import load_corpus, mlm_collator, pack_mlm_blocks
from reformer_ko.training.checkpoints import RUN_RECORD
from reformer_ko.training import (
    MASKED_LM,
    CorpusArguments,
    ModelArguments,
    NonFiniteLossError,
    PretrainingTrainer,
    argmax_logits,
    load_documents,
    masked_lm_metrics,
    new_model_config,
    parse_arguments,
    parse_config_overrides,
    training_model,
)
from reformer_ko.commands.pretrain import MaskedDataArguments
from reformer_ko.errors import ArgumentError

HAS_TENSORBOARD = any(importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX"))
SENTENCE_IDS = [[2, 100, 200, 300, 400, 3]]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return small_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def trained(tokenizer_dir, tmp_path_factory):
    """Overfit two blocks of the demo corpus: 60 steps at a constant learning rate, checkpoints every 30."""
    root = tmp_path_factory.mktemp("run_mlm")
    output_dir = root / "output"
    run_python(
        [
            EXAMPLES / "run_mlm.py",
            *common_arguments(tokenizer_dir, output_dir, root / "cache"),
            "--config_preset", "mlm-small",
            "--config_overrides", TINY_MLM,
            "--validation_split_percentage", "10",
            "--max_train_samples", "2",
            "--do_train", "--do_eval",
            "--max_steps", "60",
            "--per_device_train_batch_size", "4",
            "--learning_rate", "3e-3",
            "--lr_scheduler_type", "constant",
            "--logging_steps", "10",
            "--logging_first_step",
            "--save_steps", "30",
            "--report_to", "tensorboard" if HAS_TENSORBOARD else "none",
        ],
        root,
    )  # fmt: skip
    return output_dir


def test_eval_metrics_are_the_same_with_sparse_prediction():
    labels = torch.full((2, 6), -100)
    labels[0, 1], labels[0, 4], labels[1, 2] = 7, 8, 9
    dense_logits = torch.randn(2, 6, 12)
    dense_logits[0, 1, 7] = dense_logits[1, 2, 9] = 10.0  # two of the three labelled positions right
    dense_logits[0, 4, 8] = -10.0  # and the third wrong
    sparse_logits = dense_logits[labels != -100]
    dense_ids, sparse_ids = argmax_logits(dense_logits, labels), argmax_logits(sparse_logits, labels)
    assert sparse_ids.shape == labels.shape and torch.equal(sparse_ids[labels != -100], dense_ids[labels != -100])
    metrics = [masked_lm_metrics(EvalPrediction(ids.numpy(), labels.numpy())) for ids in (dense_ids, sparse_ids)]
    assert metrics[0] == metrics[1] == {"masked_token_accuracy": pytest.approx(2 / 3)}
    assert torch.equal(argmax_logits(dense_logits, None), dense_logits.argmax(dim=-1))  # predict() without labels
    with pytest.raises(ValueError, match="predictions for 2 positions but 3 labelled"):
        argmax_logits(sparse_logits[:2], labels)


def test_training_loss_drops_well_below_its_start(trained):
    losses = logged_losses(trained)
    first, last = losses[1], losses[max(losses)]
    assert first > 6  # about ln(800): uniform over the vocabulary
    # The two blocks are masked anew every epoch (dynamic masking), so the model learns the blocks rather than
    # memorising fixed masks: 6.70 -> 4.71 in 60 steps.
    assert last < 0.75 * first, losses


def test_eval_metrics_are_written(trained):
    metrics = json.loads((trained / "eval_results.json").read_text())
    assert 0 <= metrics["eval_masked_token_accuracy"] <= 1
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))


def test_output_directory_is_a_hub_ready_checkpoint(trained):
    files = {path.name for path in trained.iterdir()}
    assert {"config.json", "model.safetensors", "modeling_reformer_ko.py", "configuration_reformer_ko.py"} <= files
    assert {"tokenizer.json", "tokenizer_config.json", "README.md"} <= files
    assert "AutoModelForMaskedLM" in json.loads((trained / "config.json").read_text())["auto_map"]
    assert not any(name.startswith("_") for name in files - {RUN_RECORD})  # nothing left staged


def test_model_card_gives_the_data_the_config_and_the_final_metrics(trained):
    card = (trained / "README.md").read_text(encoding="utf-8")
    metrics = json.loads((trained / "all_results.json").read_text())
    assert card.startswith("---\nlanguage: ko\n")
    assert "pipeline_tag: fill-mask" in card
    assert CORPUS.name in card and "| train | 43 | 2 |" in card
    assert "| hidden size / layers / heads | 64 / 2 / 2 |" in card
    assert f"| eval_masked_token_accuracy | {metrics['eval_masked_token_accuracy']:.4g} |" in card
    assert f"| train_loss | {metrics['train_loss']:.4g} |" in card


def test_checkpoints_are_complete_and_nothing_is_left_half_written(trained):
    assert sorted(path.name for path in trained.glob("checkpoint-*")) == ["checkpoint-30", "checkpoint-60"]
    for checkpoint in trained.glob("checkpoint-*"):
        assert {"model.safetensors", "optimizer.pt", "rng_state.pth", "trainer_state.json"} <= {
            path.name for path in checkpoint.iterdir()
        }
    assert not (trained / "_incomplete").exists()


def test_output_directory_reloads_with_auto_classes(trained):
    model = AutoModelForMaskedLM.from_pretrained(trained)
    assert type(model) is ReformerKoForMaskedLM
    fill_mask = pipeline("fill-mask", model=model, tokenizer=AutoTokenizer.from_pretrained(trained))
    predictions = fill_mask("김치는 한국의 대표적인 [MASK]이다.")
    assert len(predictions) == 5 and all(0 <= prediction["score"] <= 1 for prediction in predictions)


def test_output_directory_loads_as_remote_code_without_the_package(trained, tmp_path):
    remote = remote_code_outputs("AutoModelForMaskedLM", trained, SENTENCE_IDS, tmp_path)
    with torch.no_grad():
        local = AutoModelForMaskedLM.from_pretrained(trained).eval()(torch.tensor(SENTENCE_IDS)).logits
    torch.testing.assert_close(torch.tensor(remote), local, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard is not installed")
def test_report_to_tensorboard_writes_event_files(trained):
    assert list((trained / "runs").rglob("events.out.tfevents.*"))


def test_streaming_whole_word_masking_run(tokenizer_dir, tmp_path):
    output_dir = tmp_path / "output"
    run_python(
        [
            EXAMPLES / "run_mlm.py",
            *common_arguments(tokenizer_dir, output_dir, tmp_path / "cache"),
            "--config_preset", "mlm-small",
            "--config_overrides", TINY_MLM,
            "--streaming", "--whole_word_mask",
            "--max_eval_samples", "4",
            "--do_train", "--do_eval",
            "--max_steps", "4",
            "--per_device_train_batch_size", "2",
            "--save_strategy", "no",
        ],
        tmp_path,
    )  # fmt: skip
    assert "eval_masked_token_accuracy" in json.loads((output_dir / "eval_results.json").read_text())
    assert "| train | streamed | streamed |" in (output_dir / "README.md").read_text(encoding="utf-8")


def test_a_single_json_file_of_arguments_is_accepted(tmp_path, tokenizer_dir):
    arguments = {
        "config_preset": "mlm-small",
        "tokenizer_name": str(tokenizer_dir),
        "train_file": [str(CORPUS)],
        "max_seq_length": 128,
        "whole_word_mask": True,
        "output_dir": str(tmp_path / "output"),
        "do_train": True,
        "learning_rate": 1e-4,
    }
    path = tmp_path / "arguments.json"
    path.write_text(json.dumps(arguments))
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, MaskedDataArguments, TrainingArguments), [str(path)]
    )
    assert model_args.config_preset == "mlm-small" and data_args.train_file == [str(CORPUS)]
    assert data_args.max_seq_length == 128 and data_args.whole_word_mask
    assert training_args.do_train and training_args.learning_rate == 1e-4


def test_a_preset_takes_the_tokenizers_vocabulary_size(tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model_args = ModelArguments(
        config_preset="mlm-small", tokenizer_name=str(tokenizer_dir), config_overrides="hidden_size=64"
    )
    config = new_model_config(model_args, tokenizer)
    assert config.vocab_size == len(tokenizer) and config.hidden_size == 64 and config.num_hidden_layers == 6


def test_a_vocab_size_that_differs_from_the_tokenizer_is_an_error(tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model_args = ModelArguments(
        config_preset="mlm-small", tokenizer_name=str(tokenizer_dir), config_overrides="vocab_size=22000"
    )
    with pytest.raises(ValueError, match=r"has 800 tokens but .* has vocab_size=22000"):
        training_model(ReformerKoForMaskedLM, model_args, tokenizer)


def test_config_overrides_are_json_values_and_unknown_fields_are_refused():
    assert parse_config_overrides(
        "hidden_size=64,axial_position_shape=[16, 16],is_decoder=true,position_embedding_type=axial"
    ) == {
        "hidden_size": 64,
        "axial_position_shape": [16, 16],
        "is_decoder": True,
        "position_embedding_type": "axial",
    }
    with pytest.raises(ValueError, match="'hiden_size' is not a field of ReformerKoConfig; did you mean 'hidden_size'"):
        parse_config_overrides("hiden_size=64")


@pytest.mark.parametrize(
    "text, expected",
    [("weight_tie=False", {"weight_tie": False}), ("weight_tie=TRUE", {"weight_tie": True}), ("num_buckets=None", {"num_buckets": None})],
)
def test_config_overrides_read_python_literals(text, expected):
    assert parse_config_overrides(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [("weight_tie=no", "weight_tie must be true or false"), ("hidden_size=64.5", "hidden_size must be an integer"),
     ("layer_dropout=high", "layer_dropout must be a number")],
)
def test_a_config_override_of_the_wrong_kind_is_an_argument_error(text, message):
    with pytest.raises(ArgumentError, match=message):
        parse_config_overrides(text)


def test_a_new_model_needs_a_tokenizer():
    with pytest.raises(ValueError, match="needs --tokenizer_name"):
        ModelArguments(config_preset="mlm-small")


def test_streamed_and_prepared_corpora_hold_out_the_same_documents(tmp_path):
    arguments = {"train_file": [str(CORPUS)], "validation_split_percentage": 10}
    prepared = load_documents(CorpusArguments(**arguments), seed=0, cache_dir=tmp_path)
    streamed = load_documents(CorpusArguments(**arguments, streaming=True), seed=0, cache_dir=tmp_path)
    assert len(prepared["validation"]) == 4 and len(prepared["train"]) == 43
    assert list(streamed["validation"]) == list(prepared["validation"])
    assert sorted(map(str, streamed["train"])) == sorted(map(str, prepared["train"]))


# The Trainer, in process ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blocks(tokenizer_dir, tmp_path_factory):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    documents = load_corpus(CORPUS, cache_dir=tmp_path_factory.mktemp("cache"))
    return tokenizer, list(pack_mlm_blocks(documents, tokenizer, 64))[:16]


def tiny_trainer(blocks, output_dir, collator=None, callbacks=(), **arguments):
    tokenizer, train_blocks = blocks
    torch.manual_seed(0)
    model = ReformerKoForMaskedLM(tiny_config(vocab_size=len(tokenizer)))
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        **arguments,
    )
    return PretrainingTrainer(
        model=model,
        args=args,
        train_dataset=train_blocks,
        data_collator=collator or mlm_collator(tokenizer, pad_to_multiple_of=32),
        callbacks=list(callbacks),
        task=MASKED_LM,
    )


def test_bf16_training_runs_under_autocast_without_nan(blocks, tmp_path):
    trainer = tiny_trainer(blocks, tmp_path, max_steps=8, bf16=True)
    dtypes = []
    trainer.model.lm_head.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    trainer.train()
    assert set(dtypes) == {torch.bfloat16}
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 8 and all(math.isfinite(loss) for loss in losses)


class NanLogitsAfterStep(TrainerCallback):
    """After training step `step`, the masked LM's logits are NaN, and so is its loss; its weights are untouched."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            model.lm_head.register_forward_hook(lambda module, inputs, output: output * float("nan"))


def test_a_nan_loss_stops_training_before_the_update_with_a_message(blocks, tmp_path):
    class RememberWeights(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            self.weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}

    remember = RememberWeights()
    trainer = tiny_trainer(blocks, tmp_path, callbacks=[remember, NanLogitsAfterStep(3)], max_steps=10)
    with pytest.raises(
        NonFiniteLossError,
        match=r"NaN or infinite training loss at step 4 \(this process: nan\).* weights are those after step 3",
    ):
        trainer.train()
    assert trainer.state.global_step == 3
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, remember.weights[name]), name
