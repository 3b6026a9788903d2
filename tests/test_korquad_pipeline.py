"""Answering questions with a fine-tuned checkpoint outside the script, and the whole KorQuAD dev set end to end."""

import json
import unicodedata
from pathlib import Path

import pytest
import torch
from korquad_fixtures import (
    DEV_FILE,
    QUIET,
    fixture_texts,
    korquad_fixture,
    require_dev_data,
    tiny_tokenizer,
    write_json,
)
from pretraining_fixtures import load_script
from tiny_models import tiny_config
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, pipeline

from reformer_ko import ReformerKoForMaskedLM, ReformerKoForQuestionAnswering
from reformer_ko.cli import main as cli
from reformer_ko.korquad import load_korquad, postprocess_qa_predictions, prepare_eval_features, read_json_file

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "run_korquad.py"
LENGTHS = {"max_seq_length": 128, "doc_stride": 32, "max_query_length": 32}


run_korquad = load_script(SCRIPT)


def length_arguments(**lengths) -> list[str]:
    return [argument for name, value in {**LENGTHS, **lengths}.items() for argument in (f"--{name}", str(value))]


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    """A tiny model fine-tuned by the script for 30 steps on the 13 fixture questions, and evaluated on them."""
    directory = tmp_path_factory.mktemp("korquad")
    data_file = write_json(directory / "fixture.json", korquad_fixture())
    tokenizer = tiny_tokenizer(fixture_texts(), vocab_size=300)
    torch.manual_seed(0)
    ReformerKoForMaskedLM(tiny_config(vocab_size=len(tokenizer))).save_pretrained(directory / "mlm")
    tokenizer.save_pretrained(directory / "mlm")
    output_dir = directory / "qa"
    run_korquad.main(
        [
            "--model_name_or_path", str(directory / "mlm"), "--output_dir", str(output_dir),
            "--train_file", str(data_file), "--validation_file", str(data_file), "--do_train", "--do_eval",
            "--max_steps", "30", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
            *length_arguments(), *QUIET,
        ]
    )
    return output_dir, load_korquad(data_file)


def test_a_fine_tuned_checkpoint_answers_as_the_script_did(fine_tuned):
    output_dir, examples = fine_tuned
    model = AutoModelForQuestionAnswering.from_pretrained(output_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    features = prepare_eval_features(examples[:], tokenizer, padding=True, **LENGTHS)
    with torch.no_grad():
        outputs = model(**{name: torch.tensor(features[name]) for name in tokenizer.model_input_names})
    answers = postprocess_qa_predictions(examples, features, (outputs.start_logits.numpy(), outputs.end_logits.numpy()))
    assert answers == read_json_file(output_dir / "eval_predictions.json")
    assert all(answer and answer in context for answer, context in zip(answers.values(), examples["context"]))


def test_the_question_answering_pipeline_gives_the_scripts_answers(fine_tuned):
    # transformers >= 5.3 removed this task; importing reformer_ko provides it.
    output_dir, examples = fine_tuned
    question_answerer = pipeline("question-answering", model=str(output_dir), tokenizer=str(output_dir))
    script_answers = read_json_file(output_dir / "eval_predictions.json")
    for example in examples.select(range(3)):
        answer = question_answerer(question=example["question"], context=example["context"], **LENGTHS)
        assert answer["answer"] == script_answers[example["id"]]
        assert example["context"][answer["start"] : answer["end"]] == answer["answer"]
        assert 0 < answer["score"] <= 1


@pytest.mark.parametrize("composed_after", [None, 40], ids=["nfd", "mixed"])
def test_the_pipeline_answers_decomposed_text_in_the_users_characters(fine_tuned, composed_after):
    output_dir, examples = fine_tuned
    question_answerer = pipeline("question-answering", model=str(output_dir), tokenizer=str(output_dir))
    for example in examples.select(range(3)):
        composed = question_answerer(question=example["question"], context=example["context"], **LENGTHS)
        cut = len(example["context"]) if composed_after is None else composed_after
        context = unicodedata.normalize("NFD", example["context"][:cut]) + example["context"][cut:]
        question = unicodedata.normalize("NFD", example["question"])
        answer = question_answerer(question=question, context=context, **LENGTHS)
        assert context[answer["start"] : answer["end"]] == answer["answer"]
        assert unicodedata.normalize("NFC", answer["answer"]) == composed["answer"]
        assert answer["score"] == pytest.approx(composed["score"])


def test_the_question_answering_pipeline_returns_the_top_k(fine_tuned):
    output_dir, examples = fine_tuned
    question_answerer = pipeline("question-answering", model=str(output_dir), tokenizer=str(output_dir))
    answers = question_answerer(question=examples["question"][0], context=examples["context"][0], top_k=3)
    assert len(answers) == 3
    assert answers[0]["score"] >= answers[1]["score"] >= answers[2]["score"]


@pytest.mark.slow
def test_every_dev_question_gets_a_prediction_scored_by_the_official_metric(tmp_path, capsys):
    """5,774 questions through features, a model, post-processing and the metric.

    Sized for about half a minute on two cores: 256-token windows overlapping by 64, one layer, one hash round.
    """
    require_dev_data()
    dev = load_korquad(DEV_FILE)
    tokenizer = tiny_tokenizer(list(dict.fromkeys(dev["context"])) + list(dev["question"]), vocab_size=4000)
    torch.manual_seed(0)
    config = tiny_config(vocab_size=len(tokenizer), num_hidden_layers=1, num_hashes=1)
    ReformerKoForQuestionAnswering(config).save_pretrained(tmp_path / "qa")
    tokenizer.save_pretrained(tmp_path / "qa")
    metrics = run_korquad.main(
        [
            "--model_name_or_path", str(tmp_path / "qa"), "--output_dir", str(tmp_path / "out"),
            "--validation_file", str(DEV_FILE), "--do_eval", "--per_device_eval_batch_size", "64",
            *length_arguments(max_seq_length=256, doc_stride=64, max_query_length=64), *QUIET,
        ]
    )
    predictions = read_json_file(tmp_path / "out" / "eval_predictions.json")
    assert set(predictions) == set(dev["id"]) and all(predictions.values())
    assert metrics["eval_questions"] == len(dev) == 5774

    capsys.readouterr()
    assert cli(["evaluate-korquad", str(DEV_FILE), str(tmp_path / "out" / "eval_predictions.json")]) == 0
    official = json.loads(capsys.readouterr().out)
    assert official == {"exact_match": metrics["eval_exact_match"], "f1": metrics["eval_f1"]}
