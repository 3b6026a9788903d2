"""The official KorQuAD v1.0 metric as an `evaluate` module, for transformers' run_qa.py: loaded offline from the
installed package, equal to `reformer-ko evaluate-korquad` on the same predictions."""

import json
import subprocess
import sys
from pathlib import Path

import reformer_ko
from pretraining_fixtures import script_environment

EVAL_SET = Path(reformer_ko.__file__).parent / "demo_data" / "korquad_eval.json"

# run_qa.py's post-processing gives these lists; only the metric's loading line differs from the squad one.
SCORE_WITH_EVALUATE = """
import json, sys
import evaluate
from reformer_ko.korquad import KORQUAD_METRIC
dataset, predictions = (json.load(open(path, encoding="utf-8")) for path in sys.argv[1:3])
references = [
    {"id": qa["id"], "answers": {"text": [a["text"] for a in qa["answers"]],
                                 "answer_start": [a["answer_start"] for a in qa["answers"]]}}
    for article in dataset["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]
]
formatted = [{"id": id_, "prediction_text": text} for id_, text in predictions.items()]
print(json.dumps(evaluate.load(KORQUAD_METRIC).compute(predictions=formatted, references=references)))
"""


def predictions_file(tmp_path):
    """A third of the questions answered right, a third with the answer cut short, a third wrong."""
    dataset = json.loads(EVAL_SET.read_text(encoding="utf-8"))
    questions = [qa for article in dataset["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    answers = [qa["answers"][0]["text"] for qa in questions]
    predictions = {
        qa["id"]: [answer, answer[: max(1, len(answer) - 1)], "없음"][i % 3]
        for i, (qa, answer) in enumerate(zip(questions, answers))
    }
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")
    return path


def test_the_evaluate_module_loads_offline_and_equals_evaluate_korquad(tmp_path):
    predictions = predictions_file(tmp_path)
    environment = {**script_environment(tmp_path), "HF_EVALUATE_OFFLINE": "1"}
    module = subprocess.run(
        [sys.executable, "-c", SCORE_WITH_EVALUATE, EVAL_SET, predictions],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    assert module.returncode == 0, module.stderr[-2000:]
    command = subprocess.run(
        [sys.executable, "-m", "reformer_ko.cli", "evaluate-korquad", EVAL_SET, predictions],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    assert command.returncode == 0, command.stderr[-2000:]
    scores, official = json.loads(module.stdout.splitlines()[-1]), json.loads(command.stdout.splitlines()[-1])
    assert scores == official
    assert 0 < official["exact_match"] < official["f1"] < 100  # some answers right, some partly
