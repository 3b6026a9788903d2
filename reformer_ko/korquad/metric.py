"""The official KorQuAD v1.0 metric (exact match and character-level F1) and `reformer-ko evaluate-korquad`."""

import argparse
import json
import logging
import reprlib
import string
from collections import Counter
from collections.abc import Mapping
from typing import Any

from reformer_ko.korquad.data import KorquadFormatError, answer_texts, iter_korquad_records, read_json_file

logger = logging.getLogger(__name__)

EXPECTED_VERSION = "KorQuAD_v1.0"

# The official script turns these quotes and brackets into spaces before it drops ASCII punctuation, so
# "《훈민정음》을" keeps a word boundary where a bracket was.
_TO_SPACE = str.maketrans({character: " " for character in "'\"《》<>〈〉()‘’"})
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Official normalisation: quotes and brackets to spaces, lowercase, no ASCII punctuation, single spaces."""
    text = text.translate(_TO_SPACE).lower()
    text = "".join(character for character in text if character not in _ASCII_PUNCTUATION)
    return " ".join(text.split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """Whether the normalised strings are equal (spaces included)."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """F1 of the multisets of characters of the normalised strings, spaces excluded."""
    prediction_characters = "".join(normalize_answer(prediction).split())
    ground_truth_characters = "".join(normalize_answer(ground_truth).split())
    num_same = sum((Counter(prediction_characters) & Counter(ground_truth_characters)).values())
    if num_same == 0:
        return 0
    # The official arithmetic, in its order, so that sums over a dataset agree to the last bit.
    precision = 1.0 * num_same / len(prediction_characters)
    recall = 1.0 * num_same / len(ground_truth_characters)
    return (2 * precision * recall) / (precision + recall)


def gold_answers(dataset: Any, *, source: str = "<memory>") -> list[tuple[str, list[str]]]:
    """`(id, answer texts)` per question, in file order, of KorQuAD data in any layout or a `Dataset`."""
    if hasattr(dataset, "column_names"):
        return [(id_, answers["text"]) for id_, answers in zip(dataset["id"], dataset["answers"])]
    gold = []
    for where, record in iter_korquad_records(dataset, source=source):
        texts = answer_texts(record.get("answers"))
        if not isinstance(record.get("id"), str) or not texts:
            raise KorquadFormatError(
                f"{where}: expected an 'id' string and at least one answer text; "
                f"found id {record.get('id')!r}, answers {record.get('answers')!r}"
            )
        gold.append((record["id"], texts))
    return gold


def evaluate_korquad(
    dataset: Any, predictions: Mapping[str, str], *, ignore_unknown_ids: bool = False, source: str = "<memory>"
) -> dict[str, float]:
    """`{"exact_match", "f1"}` (percentages) exactly as the official `evaluate-v1.0.py` computes them.

    `dataset` is the official JSON (or its `data` list), flat example rows or a `Dataset`; `predictions`
    maps id to answer text. A question without a prediction scores 0 (with a warning). Predictions for
    ids not in the dataset are an error unless `ignore_unknown_ids=True`, which ignores them as the
    official script does.
    """
    _check_predictions(predictions, "predictions")
    gold = gold_answers(dataset, source=source)
    if not gold:
        raise KorquadFormatError(f"{source}: no questions to evaluate")
    gold_ids = {id_ for id_, _ in gold}
    unknown = [id_ for id_ in predictions if id_ not in gold_ids]
    if unknown and not ignore_unknown_ids:
        raise KorquadFormatError(
            f"{len(unknown)} of {len(predictions)} predictions are for ids not in {source} "
            f"(e.g. {unknown[:3]}): are they predictions for another file or split? "
            "Pass ignore_unknown_ids=True (--ignore-unknown-ids) to ignore them as the official script does."
        )
    missing = [id_ for id_, _ in gold if id_ not in predictions]
    if missing:
        logger.warning(
            "%d of %d questions have no prediction and score 0 (e.g. %s)", len(missing), len(gold), missing[:3]
        )
    exact_match = f1 = 0
    for id_, ground_truths in gold:
        if id_ in predictions:
            prediction = predictions[id_]
            exact_match += max(exact_match_score(prediction, truth) for truth in ground_truths)
            f1 += max(f1_score(prediction, truth) for truth in ground_truths)
    return {"exact_match": 100.0 * exact_match / len(gold), "f1": 100.0 * f1 / len(gold)}


def _check_predictions(predictions: Any, source: str) -> None:
    if not isinstance(predictions, Mapping):
        raise KorquadFormatError(
            f"{source}: expected a JSON object mapping question id to answer text, "
            f"found {type(predictions).__name__}"
        )
    if {"version", "data"} <= predictions.keys():
        raise KorquadFormatError(
            f"{source}: this is a KorQuAD dataset, not predictions: give the predictions file, a JSON object mapping "
            "question id to answer text (e.g. a run's eval_predictions.json), as the second argument"
        )
    for id_, prediction in predictions.items():
        if not isinstance(prediction, str):
            raise KorquadFormatError(
                f"{source}: the prediction for id {id_!r} must be the answer text (a string), found "
                f"{reprlib.repr(prediction)}"
            )


def add_evaluate_arguments(parser: argparse.ArgumentParser):
    """`reformer-ko evaluate-korquad DATASET PREDICTIONS`: the official metric, printed as JSON."""
    parser.description = "Score a predictions file (id -> answer text) with the official KorQuAD v1.0 metric."
    parser.add_argument("dataset_file", help="KorQuAD v1.0 JSON (official layout, or one example per row)")
    parser.add_argument("prediction_file", help="JSON object mapping question id to predicted answer text")
    parser.add_argument(
        "--ignore-unknown-ids",
        action="store_true",
        help="ignore predictions for ids not in the dataset (the official script's behaviour) instead of failing",
    )
    return run_evaluate


def run_evaluate(args: argparse.Namespace) -> int:
    """Print `{"exact_match": ..., "f1": ...}` for the files in `args`. A file of the wrong layout raises
    `KorquadFormatError`, which the command prints as one line."""
    dataset = read_json_file(args.dataset_file)
    predictions = read_json_file(args.prediction_file)
    _check_predictions(predictions, args.prediction_file)
    version = dataset.get("version") if isinstance(dataset, dict) else None
    if isinstance(version, str) and "_".join(version.split("_")[:-1]) != EXPECTED_VERSION:
        logger.warning("Evaluation expects %s, but got dataset with %s", EXPECTED_VERSION, version)
    result = evaluate_korquad(dataset, predictions, ignore_unknown_ids=args.ignore_unknown_ids, source=args.dataset_file)
    print(json.dumps(result))
    return 0
