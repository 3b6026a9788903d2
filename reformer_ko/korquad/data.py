"""Read KorQuAD v1.0 files into `datasets`: the official nested JSON or one example per row, validated."""

import copy
import itertools
import json
import logging
import os
from typing import Any, Iterator

import datasets

from reformer_ko.data.text import is_blank
from reformer_ko.errors import UserInputError

logger = logging.getLogger(__name__)

# transformers' run_qa.py column names, so its preprocessing conventions carry over unchanged.
KORQUAD_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        },
    }
)

# How many problems an error message lists before summarising the rest as a count.
_PROBLEMS_SHOWN = 5


class KorquadFormatError(UserInputError):
    """A KorQuAD file, example or predictions file that does not have the expected layout."""


def read_json_file(path: str | os.PathLike) -> Any:
    """Parse a JSON file (or, for `*.jsonl`, one JSON value per line), naming the file on any error."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read()
    except FileNotFoundError:
        raise KorquadFormatError(f"{path}: no such file") from None
    except OSError as error:
        raise KorquadFormatError(f"{path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise KorquadFormatError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if path.endswith(".jsonl"):
        values = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not is_blank(line):
                values.append(_parse_json(line, f"{path}, line {line_number}"))
        return values
    return _parse_json(text, path)


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        hint = " (a file with one JSON value per line must be named *.jsonl)" if error.msg == "Extra data" else ""
        raise KorquadFormatError(
            f"{where}: not valid JSON at line {error.lineno}, column {error.colno} ({error.msg}){hint}"
        ) from None


def iter_korquad_records(data: Any, *, source: str = "<memory>") -> Iterator[tuple[str, dict]]:
    """Yield `(where, record)` per question of a parsed KorQuAD file, official or flat, fields as found."""
    records = data.get("data") if isinstance(data, dict) else data
    if not isinstance(records, list):
        found = f"an object with keys {sorted(data)[:8]}" if isinstance(data, dict) else type(data).__name__
        raise KorquadFormatError(
            f"{source}: expected the KorQuAD layout ({{'version': ..., 'data': [articles]}}) or a list of "
            f"examples, found {found}"
        )
    for index, record in enumerate(records):
        if isinstance(record, dict) and "paragraphs" in record:
            yield from _article_records(record, f"{source}: article {index}")
        elif isinstance(record, dict) and "context" in record:
            yield f"{source}: row {index}", record
        else:
            found = f"keys {sorted(record)[:8]}" if isinstance(record, dict) else type(record).__name__
            raise KorquadFormatError(
                f"{source}: entry {index} of 'data' is neither an article (with 'paragraphs') nor an example "
                f"(with 'context', 'question', 'answers'); found {found}"
            )


def _article_records(article: dict, where: str) -> Iterator[tuple[str, dict]]:
    title = article.get("title", "")
    where = f"{where} ({title!r})" if title else where
    paragraphs = article["paragraphs"]
    if not isinstance(paragraphs, list):
        raise KorquadFormatError(f"{where}: 'paragraphs' must be a list, found {type(paragraphs).__name__}")
    for paragraph_index, paragraph in enumerate(paragraphs):
        paragraph_where = f"{where}, paragraph {paragraph_index}"
        for key, kind in (("context", str), ("qas", list)):
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get(key), kind):
                raise KorquadFormatError(
                    f"{paragraph_where}: expected a paragraph with '{key}' ({kind.__name__}); "
                    f"found {_describe(paragraph, key)}"
                )
        for question_index, qa in enumerate(paragraph["qas"]):
            qa = qa if isinstance(qa, dict) else {}
            record = {key: qa.get(key) for key in ("id", "question", "answers")}
            record.update(title=title, context=paragraph["context"])
            yield f"{paragraph_where}, question {question_index}", record


def _describe(value: Any, key: str) -> str:
    if not isinstance(value, dict):
        return type(value).__name__
    if key not in value:
        return f"no '{key}' among keys {sorted(value)[:8]}"
    return f"'{key}' of type {type(value[key]).__name__}"


def answer_texts(answers: Any) -> list[str] | None:
    """The answer texts of either layout (list of dicts or dict of lists); None when malformed."""
    if isinstance(answers, dict):
        texts = answers.get("text")
    elif isinstance(answers, list) and all(isinstance(answer, dict) for answer in answers):
        texts = [answer.get("text") for answer in answers]
    else:
        return None
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        return None
    return texts


def _example_or_problem(record: dict) -> tuple[dict | None, str | None]:
    """The record as a `KORQUAD_FEATURES` row, or what is wrong with it."""
    for key in ("id", "question", "context"):
        if not isinstance(record.get(key), str) or (key != "context" and is_blank(record[key])):
            return None, f"'{key}' must be a string with a visible character, found {record.get(key)!r}"
    answers = record.get("answers")
    if isinstance(answers, list):
        if not all(isinstance(answer, dict) for answer in answers):
            return None, "'answers' must be a list of {'text', 'answer_start'} objects"
        texts = [answer.get("text") for answer in answers]
        starts = [answer.get("answer_start") for answer in answers]
    elif isinstance(answers, dict):
        texts, starts = answers.get("text"), answers.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            return None, "'answers' must hold equally long lists 'text' and 'answer_start'"
    else:
        return None, f"'answers' must be a list of {{'text', 'answer_start'}} objects, found {answers!r}"
    if not texts:
        return None, "no answers (KorQuAD v1.0 has at least one answer per question)"
    context = record["context"]
    for number, (text, start) in enumerate(zip(texts, starts)):
        if not isinstance(text, str) or is_blank(text):
            return None, f"answer {number}: 'text' must be a string with a visible character, found {text!r}"
        if not isinstance(start, int) or isinstance(start, bool):
            return None, f"answer {number}: 'answer_start' must be an integer, found {start!r}"
        if start < 0 or context[start : start + len(text)] != text:
            found = list(itertools.islice(_occurrences(context, text), 5))
            where_found = f"the text occurs at {found}" if found else "the text does not occur in the context"
            return None, (
                f"answer {number} {text!r} is not at answer_start {start}: the context there reads "
                f"{context[max(start, 0) : max(start, 0) + len(text)]!r}; {where_found}"
            )
    row = {
        "id": record["id"],
        "title": record.get("title") or "",
        "context": context,
        "question": record["question"],
        "answers": {"text": texts, "answer_start": starts},
    }
    return row, None


def _occurrences(context: str, text: str) -> Iterator[int]:
    index = context.find(text)
    while index >= 0:
        yield index
        index = context.find(text, index + 1)


def korquad_examples(
    data: Any, *, source: str = "<memory>", skip_invalid: bool = False
) -> tuple[list[dict], list[str]]:
    """Validated example rows of a parsed KorQuAD file, and the problems of the examples left out.

    Every `answer_start` must point at its answer text in the context and ids must be unique. An invalid
    example raises `KorquadFormatError` naming each one; with `skip_invalid=True` it is left out instead
    and its problem returned.
    """
    rows, problems, first_seen = [], [], {}
    for where, record in iter_korquad_records(data, source=source):
        row, problem = _example_or_problem(record)
        if row is not None and row["id"] in first_seen:
            row, problem = None, f"duplicate id (first at {first_seen[row['id']]})"
        if problem is not None:
            identifier = f", id {record['id']!r}" if isinstance(record.get("id"), str) else ""
            problems.append(f"{where}{identifier}: {problem}")
            continue
        first_seen[row["id"]] = where
        rows.append(row)
    if problems and not skip_invalid:
        shown = "; ".join(problems[:_PROBLEMS_SHOWN])
        more = f"; and {len(problems) - _PROBLEMS_SHOWN} more" if len(problems) > _PROBLEMS_SHOWN else ""
        raise KorquadFormatError(
            f"{len(problems)} invalid example(s) in {source}: {shown}{more}. Fix them, or leave them out "
            "(--skip_invalid_examples; skip_invalid=True in Python): they are then counted in a warning."
        )
    return rows, problems


def load_korquad(path_or_data: str | os.PathLike | Any, *, skip_invalid: bool = False) -> datasets.Dataset:
    """A KorQuAD file (official JSON, flat JSON or `*.jsonl`) or parsed data as a validated `Dataset`."""
    if isinstance(path_or_data, (str, os.PathLike)):
        source, data = os.fspath(path_or_data), read_json_file(path_or_data)
    else:
        source, data = "<memory>", path_or_data
    rows, problems = korquad_examples(data, source=source, skip_invalid=skip_invalid)
    if problems:
        logger.warning(
            "Skipped %d invalid example(s) of %d in %s; the first: %s",
            len(problems), len(rows) + len(problems), source, problems[0],
        )
    columns = {name: [row[name] for row in rows] for name in KORQUAD_FEATURES}
    return datasets.Dataset.from_dict(columns, features=KORQUAD_FEATURES)


def split_by_article(dataset_json: dict, n_first: int) -> tuple[dict, dict]:
    """Split an official-layout KorQuAD dict into its first `n_first` articles and the rest."""
    articles = dataset_json.get("data") if isinstance(dataset_json, dict) else None
    if not isinstance(articles, list):
        raise KorquadFormatError(
            "split_by_article expects the official layout: {'version': ..., 'data': [articles]}"
        )
    if not 0 < n_first < len(articles):
        raise UserInputError(
            f"n_first must leave articles on both sides: between 1 and {len(articles) - 1} "
            f"for this file of {len(articles)} articles, got {n_first}"
        )
    head, tail = copy.copy(dataset_json), copy.copy(dataset_json)
    head["data"], tail["data"] = articles[:n_first], articles[n_first:]
    return head, tail


def write_korquad_json(dataset_json: dict, path: str | os.PathLike) -> None:
    """Write a KorQuAD dict as UTF-8 JSON that the official evaluation script reads."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(dataset_json, file, ensure_ascii=False)
