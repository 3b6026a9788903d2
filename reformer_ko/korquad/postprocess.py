"""Start/end logits of evaluation windows to answer texts, like transformers' `utils_qa.postprocess_qa_predictions`."""

import json
import os
from collections import defaultdict

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def best_spans(start_logits, end_logits, offsets: list, *, n_best_size: int, max_answer_length: int) -> list[dict]:
    """The `n_best_size` highest-scoring context spans of one window, at most `max_answer_length` tokens long.

    Scores every valid span (start <= end, both in the context), not only the top start and end tokens.
    Each span is `{"score", "start_logit", "end_logit", "start_char", "end_char"}`.
    """
    in_context = np.array([offset is not None for offset in offsets], dtype=bool)
    if not in_context.any():
        return []
    if len(offsets) > len(start_logits):
        raise ValueError(
            f"a window has {len(offsets)} tokens but only {len(start_logits)} logits: the logits do not "
            "belong to these features"
        )
    start = np.where(in_context, np.asarray(start_logits[: len(offsets)], dtype=np.float64), -np.inf)
    end = np.where(in_context, np.asarray(end_logits[: len(offsets)], dtype=np.float64), -np.inf)
    # scores[i, k] = start[i] + end[i + k]: every span of up to max_answer_length tokens starting at i.
    padded_end = np.concatenate([end, np.full(max_answer_length - 1, -np.inf)])
    scores = start[:, None] + sliding_window_view(padded_end, max_answer_length)
    flat = scores.ravel()
    count = min(n_best_size, int(np.isfinite(flat).sum()))
    if count == 0:
        return []
    top = np.argpartition(-flat, count - 1)[:count]
    top = top[np.argsort(-flat[top], kind="stable")]
    spans = []
    for index in top:
        start_token, length = divmod(int(index), max_answer_length)
        end_token = start_token + length
        spans.append(
            {
                "score": float(flat[index]),
                "start_logit": float(start[start_token]),
                "end_logit": float(end[end_token]),
                "start_char": offsets[start_token][0],
                "end_char": offsets[end_token][1],
            }
        )
    return spans


def postprocess_qa_predictions(
    examples,
    features,
    predictions,
    *,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    output_dir: str | os.PathLike | None = None,
    prefix: str | None = None,
) -> dict[str, str]:
    """Answer text per example id: the best span over all windows of the example, cut from its context.

    Feature offsets index the contexts as given (the model read them in NFC), so every answer is a substring of
    its context in the user's own characters, decomposed (NFD) Hangul included.

    `examples` has columns `id` and `context`; `features` (from `prepare_eval_features`) `example_id` and
    `offset_mapping`; `predictions` is `(start_logits, end_logits)`, one row per feature (rows may be
    padded, e.g. with -100 by the `Trainer`). An example with no valid span gets "". With `output_dir`,
    writes `predictions.json` (id -> text) and `nbest_predictions.json` (id -> the `n_best_size` best
    distinct spans with text, probability, logits and `answer_start`), prefixed with `prefix_` if given.
    """
    all_nbest = nbest_answers(
        examples, features, predictions, n_best_size=n_best_size, max_answer_length=max_answer_length
    )
    all_predictions = {example_id: nbest[0]["text"] if nbest else "" for example_id, nbest in all_nbest.items()}
    if output_dir is not None:
        write_predictions(all_predictions, all_nbest, output_dir, prefix=prefix)
    return all_predictions


def nbest_answers(examples, features, predictions, *, n_best_size: int = 20, max_answer_length: int = 30) -> dict:
    """Example id -> its `n_best_size` best distinct spans over all its windows, best first, each
    `{"text", "probability", "start_logit", "end_logit", "answer_start"}` (arguments as in
    `postprocess_qa_predictions`)."""
    start_logits, end_logits = predictions[:2]
    missing_columns = {"example_id", "offset_mapping"} - set(_column_names(features))
    if missing_columns:
        raise ValueError(
            f"features lack the columns {sorted(missing_columns)}: build them with prepare_eval_features "
            "and keep those columns (the Trainer's remove_unused_columns drops them only from model inputs)"
        )
    feature_example_ids = list(features["example_id"])
    if not len(start_logits) == len(end_logits) == len(feature_example_ids):
        raise ValueError(
            f"got {len(start_logits)} start and {len(end_logits)} end logit rows for {len(feature_example_ids)} "
            "features: pass the logits of every evaluation feature, in order"
        )
    features_by_example = defaultdict(list)
    for feature_index, example_id in enumerate(feature_example_ids):
        features_by_example[example_id].append(feature_index)
    example_ids = list(examples["id"])
    unknown = set(features_by_example) - set(example_ids)
    if unknown:
        raise ValueError(
            f"{len(unknown)} example ids of the features are not among the examples (e.g. {sorted(unknown)[:3]}): "
            "pass the examples the features were built from"
        )
    offset_mapping = features["offset_mapping"]
    all_nbest = {}
    for example_id, context in zip(example_ids, examples["context"]):
        candidates = []
        for feature_index in features_by_example[example_id]:
            candidates += best_spans(
                start_logits[feature_index],
                end_logits[feature_index],
                offset_mapping[feature_index],
                n_best_size=n_best_size,
                max_answer_length=max_answer_length,
            )
        nbest = _distinct_best(candidates, n_best_size)
        probabilities = _softmax([span["score"] for span in nbest])
        all_nbest[example_id] = [
            {
                "text": context[span["start_char"] : span["end_char"]],
                "probability": probability,
                "start_logit": span["start_logit"],
                "end_logit": span["end_logit"],
                "answer_start": span["start_char"],
            }
            for span, probability in zip(nbest, probabilities)
        ]
    return all_nbest


def _column_names(table) -> list[str]:
    return table.column_names if hasattr(table, "column_names") else list(table.keys())


def _distinct_best(candidates: list[dict], n_best_size: int) -> list[dict]:
    """The best `n_best_size` spans, each character span once (overlapping windows find the same span)."""
    best, seen = [], set()
    for span in sorted(candidates, key=lambda span: span["score"], reverse=True):
        key = (span["start_char"], span["end_char"])
        if key not in seen:
            seen.add(key)
            best.append(span)
            if len(best) == n_best_size:
                break
    return best


def _softmax(scores: list[float]) -> list[float]:
    if not scores:
        return []
    exponentials = np.exp(np.array(scores) - max(scores))
    return (exponentials / exponentials.sum()).tolist()


def write_predictions(predictions: dict, nbest: dict, output_dir: str | os.PathLike, *, prefix: str | None = None):
    """Write `predictions.json` and `nbest_predictions.json` (UTF-8, Korean unescaped) to `output_dir`."""
    os.makedirs(output_dir, exist_ok=True)
    name_prefix = f"{prefix}_" if prefix else ""
    for name, content in (("predictions.json", predictions), ("nbest_predictions.json", nbest)):
        with open(os.path.join(output_dir, name_prefix + name), "w", encoding="utf-8") as file:
            json.dump(content, file, ensure_ascii=False, indent=2)
            file.write("\n")
