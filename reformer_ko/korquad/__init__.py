"""KorQuAD v1.0: data loading and validation, QA features, post-processing and the official metric."""

from pathlib import Path

from reformer_ko.korquad.data import (
    KORQUAD_FEATURES,
    KorquadFormatError,
    korquad_examples,
    load_korquad,
    read_json_file,
    split_by_article,
    write_korquad_json,
)
from reformer_ko.korquad.features import prepare_eval_features, prepare_train_features, truncate_questions
from reformer_ko.korquad.metric import evaluate_korquad, exact_match_score, f1_score, normalize_answer
from reformer_ko.korquad.postprocess import nbest_answers, postprocess_qa_predictions, write_predictions

# The official metric as an `evaluate` module: `evaluate.load(KORQUAD_METRIC)` (korquad_metric.py).
KORQUAD_METRIC = str(Path(__file__).with_name("korquad_metric.py"))

__all__ = [
    "KORQUAD_FEATURES",
    "KORQUAD_METRIC",
    "KorquadFormatError",
    "evaluate_korquad",
    "exact_match_score",
    "f1_score",
    "korquad_examples",
    "load_korquad",
    "nbest_answers",
    "normalize_answer",
    "postprocess_qa_predictions",
    "prepare_eval_features",
    "prepare_train_features",
    "read_json_file",
    "split_by_article",
    "truncate_questions",
    "write_korquad_json",
    "write_predictions",
]
