"""examples/run_korquad.py end to end on a tiny model: fine-tuning, evaluation, prediction, the saved checkpoint."""

import functools
import json
from pathlib import Path

import pytest
import torch
from korquad_fixtures import QUIET, tiny_tokenizer, write_json
from pretraining_fixtures import load_script
from safetensors.torch import load_file
from tiny_models import tiny_config
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, BertConfig, TrainingArguments

from reformer_ko import ReformerKoForMaskedLM, ReformerKoForPreTraining, ReformerKoForQuestionAnswering
from reformer_ko.korquad import evaluate_korquad, load_korquad, prepare_train_features, read_json_file
from reformer_ko.korquad.trainer import KorquadTrainer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "run_korquad.py"
DEMO = ROOT / "reformer_ko" / "demo_data"
TRAIN_FILE, EVAL_FILE = DEMO / "korquad_train.json", DEMO / "korquad_eval.json"
# Small windows so that the demo paragraphs (about 280 characters) need two or three of them.
LENGTHS = ["--max_seq_length", "96", "--doc_stride", "32", "--max_query_length", "24"]
TRAIN_STEPS = 40


run_korquad = load_script(SCRIPT)


def demo_texts() -> list[str]:
    texts = [line for line in (DEMO / "corpus.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    for path in (TRAIN_FILE, EVAL_FILE):
        examples = load_korquad(path)
        texts += list(dict.fromkeys(examples["context"])) + list(examples["question"])
    return texts


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer(demo_texts(), vocab_size=2000)


def save_checkpoint(model_class, directory: Path, tokenizer, **overrides) -> Path:
    """A tiny untrained checkpoint of `model_class` with `tokenizer`, as a pretraining script would leave it."""
    torch.manual_seed(0)
    model_class(tiny_config(**{"vocab_size": len(tokenizer), **overrides})).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def mlm_checkpoint(tmp_path_factory, tokenizer):
    return save_checkpoint(ReformerKoForMaskedLM, tmp_path_factory.mktemp("mlm"), tokenizer)


def evaluation_arguments(model: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(model), "--validation_file", str(EVAL_FILE), "--do_eval",
        "--output_dir", str(output_dir), "--per_device_eval_batch_size", "32", *LENGTHS, *QUIET, *extra,
    ]


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory, mlm_checkpoint):
    """A run from the MLM checkpoint: 40 steps on 48 demo questions, then evaluation and prediction."""
    output_dir = tmp_path_factory.mktemp("fine-tuned")
    metrics = run_korquad.main(
        evaluation_arguments(mlm_checkpoint, output_dir)
        + [
            "--train_file", str(TRAIN_FILE), "--do_train", "--max_train_samples", "48",
            "--test_file", str(EVAL_FILE), "--do_predict", "--max_predict_samples", "10",
            "--max_steps", str(TRAIN_STEPS), "--per_device_train_batch_size", "16", "--learning_rate", "3e-3",
            "--warmup_steps", "4", "--logging_steps", "1",
        ]
    )
    return output_dir, metrics


def training_losses(output_dir: Path) -> list[float]:
    state = json.loads((output_dir / "trainer_state.json").read_text(encoding="utf-8"))
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def test_fine_tuning_lowers_the_loss(fine_tuned):
    losses = training_losses(fine_tuned[0])
    assert len(losses) == TRAIN_STEPS
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, losses


def test_eval_results_hold_the_official_scores_of_the_predictions_file(fine_tuned):
    output_dir, metrics = fine_tuned
    results = json.loads((output_dir / "eval_results.json").read_text(encoding="utf-8"))
    predictions = read_json_file(output_dir / "eval_predictions.json")
    assert set(predictions) == set(load_korquad(EVAL_FILE)["id"])
    assert {"exact_match": results["eval_exact_match"], "f1": results["eval_f1"]} == evaluate_korquad(
        read_json_file(EVAL_FILE), predictions
    )
    assert results["eval_questions"] == 30 and results["eval_features"] > 30
    assert results["eval_questions_per_second"] > 0
    assert metrics["eval_f1"] == results["eval_f1"]


def test_nbest_predictions_start_with_the_prediction(fine_tuned):
    output_dir = fine_tuned[0]
    predictions = read_json_file(output_dir / "eval_predictions.json")
    nbest = read_json_file(output_dir / "eval_nbest_predictions.json")
    assert set(nbest) == set(predictions)
    assert all(nbest[id_][0]["text"] == text and len(nbest[id_]) <= 20 for id_, text in predictions.items())


def test_prediction_writes_its_own_files_and_scores(fine_tuned):
    output_dir = fine_tuned[0]
    predictions = read_json_file(output_dir / "predict_predictions.json")
    assert list(predictions) == load_korquad(EVAL_FILE)["id"][:10]
    assert (output_dir / "predict_nbest_predictions.json").is_file()
    results = json.loads((output_dir / "predict_results.json").read_text(encoding="utf-8"))
    assert results["predict_questions"] == 10 and 0 <= results["predict_f1"] <= 100


def test_the_output_directory_is_a_hub_ready_checkpoint(fine_tuned):
    output_dir = fine_tuned[0]
    config = json.loads((output_dir / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["ReformerKoForQuestionAnswering"]
    assert config["auto_map"]["AutoModelForQuestionAnswering"] == "modeling_reformer_ko.ReformerKoForQuestionAnswering"
    for name in ("model.safetensors", "modeling_reformer_ko.py", "configuration_reformer_ko.py", "tokenizer.json",
                 "tokenizer_config.json", "README.md"):
        assert (output_dir / name).is_file(), name
    assert {"qa_outputs.weight", "qa_outputs.bias"} <= set(load_file(output_dir / "model.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert tokenizer.model_max_length == config["max_position_embeddings"]


def test_the_model_card_reports_the_scores_and_the_data(fine_tuned):
    output_dir = fine_tuned[0]
    card = (output_dir / "README.md").read_text(encoding="utf-8")
    results = json.loads((output_dir / "eval_results.json").read_text(encoding="utf-8"))
    assert card.startswith("---\n") and "language: ko" in card and "- korquad" in card
    assert f"| evaluation | `korquad_eval.json` | 30 | {results['eval_exact_match']:.2f} | {results['eval_f1']:.2f} |" in card
    assert "| prediction | `korquad_eval.json` | 10 |" in card
    assert "Fine-tuned on `korquad_train.json`." in card and "| max_seq_length | 96 |" in card
    assert "tokenizer, max_seq_length=96, doc_stride=32, max_query_length=24, padding=True)" in card
    assert "OptimizerNames" not in card


def test_the_saved_checkpoint_reloads_and_reproduces_its_predictions(fine_tuned, tmp_path):
    output_dir = fine_tuned[0]
    model, loading = AutoModelForQuestionAnswering.from_pretrained(output_dir, output_loading_info=True)
    assert isinstance(model, ReformerKoForQuestionAnswering) and not any(loading.values())
    # A different eval batch size changes the padding of the batches, which must not change any answer.
    run_korquad.main(evaluation_arguments(output_dir, tmp_path, "--per_device_eval_batch_size", "7"))
    assert read_json_file(tmp_path / "eval_predictions.json") == read_json_file(output_dir / "eval_predictions.json")
    before = json.loads((output_dir / "eval_results.json").read_text(encoding="utf-8"))
    after = json.loads((tmp_path / "eval_results.json").read_text(encoding="utf-8"))
    assert (after["eval_exact_match"], after["eval_f1"]) == (before["eval_exact_match"], before["eval_f1"])


@pytest.mark.parametrize("model_class", [ReformerKoForMaskedLM, ReformerKoForPreTraining], ids=["mlm", "electra"])
def test_a_pretrained_checkpoint_loads_with_only_the_qa_head_new(model_class, tokenizer, tmp_path):
    checkpoint = save_checkpoint(model_class, tmp_path / "pretrained", tokenizer, embedding_size=16)
    _, loading = AutoModelForQuestionAnswering.from_pretrained(checkpoint, output_loading_info=True)
    assert sorted(loading["missing_keys"]) == ["qa_outputs.bias", "qa_outputs.weight"]
    metrics = run_korquad.main(evaluation_arguments(checkpoint, tmp_path / "out", "--max_eval_samples", "4"))
    assert metrics["eval_questions"] == 4 and {"eval_exact_match", "eval_f1"} <= set(metrics)


def test_windows_reach_the_model_padded_to_twice_the_bucket_size(mlm_checkpoint, tmp_path, monkeypatch):
    lengths = []
    forward = ReformerKoForQuestionAnswering.forward

    @functools.wraps(forward)  # the Trainer picks the input columns from the signature
    def recording_forward(self, input_ids=None, **kwargs):
        lengths.append(input_ids.shape[1])
        return forward(self, input_ids, **kwargs)

    monkeypatch.setattr(ReformerKoForQuestionAnswering, "forward", recording_forward)
    run_korquad.main(evaluation_arguments(mlm_checkpoint, tmp_path, "--max_eval_samples", "6", "--max_seq_length", "90"))
    bucket_size = tiny_config().bucket_size
    assert lengths and all(length % (2 * bucket_size) == 0 for length in lengths)


def test_a_tokenizer_larger_than_the_model_vocabulary_is_an_error_before_training(tokenizer, tmp_path):
    checkpoint = save_checkpoint(ReformerKoForMaskedLM, tmp_path / "mismatched", tokenizer, vocab_size=500)
    arguments = evaluation_arguments(checkpoint, tmp_path / "out", "--train_file", str(TRAIN_FILE), "--do_train")
    with pytest.raises(ValueError, match=r"has 2000 tokens but .* has vocab_size=500"):
        run_korquad.main(arguments)
    assert not (tmp_path / "out").exists()


def test_a_new_model_can_start_from_a_preset_and_overrides(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    output_dir = tmp_path / "out"
    run_korquad.main(
        [
            "--config_preset", "mlm-small", "--tokenizer_name", str(tmp_path / "tokenizer"),
            "--config_overrides", "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,max_position_embeddings=128,bucket_size=16",
            "--train_file", str(TRAIN_FILE), "--do_train", "--max_steps", "2", "--max_train_samples", "8",
            "--output_dir", str(output_dir), *LENGTHS, *QUIET,
        ]
    )  # fmt: skip
    model = AutoModelForQuestionAnswering.from_pretrained(output_dir)
    assert isinstance(model, ReformerKoForQuestionAnswering)
    assert model.config.hidden_size == 32 and model.config.vocab_size == len(tokenizer)
    assert AutoTokenizer.from_pretrained(output_dir).model_max_length == 128


def test_evaluating_training_features_is_an_error_saying_which_to_build(tokenizer, tmp_path):
    examples = load_korquad(EVAL_FILE).select(range(2))
    model = ReformerKoForQuestionAnswering(tiny_config(vocab_size=len(tokenizer)))
    trainer = KorquadTrainer(model=model, args=TrainingArguments(tmp_path, report_to="none", use_cpu=True))
    features = examples.map(prepare_train_features, batched=True, remove_columns=examples.column_names,
                            fn_kwargs={"tokenizer": tokenizer, "max_seq_length": 96, "doc_stride": 32, "max_query_length": 24})
    with pytest.raises(ValueError, match=r"lacks the columns \['example_id', 'offset_mapping'\]: build it with prepare_eval"):
        trainer.evaluate(features, examples)


def test_a_stage_without_its_data_file_is_an_error(mlm_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="--do_predict needs --test_file"):
        run_korquad.main(evaluation_arguments(mlm_checkpoint, tmp_path, "--do_predict"))


def test_an_invalid_example_is_named_unless_skipping_is_asked_for(mlm_checkpoint, tmp_path):
    broken = read_json_file(EVAL_FILE)
    broken["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1
    broken_file = write_json(tmp_path / "broken.json", broken)
    arguments = evaluation_arguments(mlm_checkpoint, tmp_path / "out", "--validation_file", str(broken_file))
    with pytest.raises(ValueError, match="demo-eval-0001"):
        run_korquad.main(arguments)
    metrics = run_korquad.main(arguments + ["--skip_invalid_examples", "--max_eval_samples", "3"])
    assert metrics["eval_questions"] == 3


def test_the_arguments_can_come_from_a_json_file(mlm_checkpoint, tmp_path):
    arguments = {
        "model_name_or_path": str(mlm_checkpoint),
        "validation_file": str(EVAL_FILE),
        "do_eval": True,
        "max_eval_samples": 5,
        "max_seq_length": 96,
        "doc_stride": 32,
        "max_query_length": 24,
        "output_dir": str(tmp_path / "out"),
        "report_to": "none",
        "use_cpu": True,
    }
    run_korquad.main([str(write_json(tmp_path / "arguments.json", arguments))])
    results = json.loads((tmp_path / "out" / "eval_results.json").read_text(encoding="utf-8"))
    assert results["eval_questions"] == 5


def test_a_checkpoint_of_another_model_type_is_an_error(tokenizer, tmp_path):
    BertConfig(vocab_size=len(tokenizer)).save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="is a 'bert' checkpoint; reformer-ko trains reformer-ko models"):
        run_korquad.main(evaluation_arguments(tmp_path / "bert", tmp_path / "out"))
