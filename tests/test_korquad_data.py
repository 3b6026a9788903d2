import json
import logging

import pytest

from korquad_fixtures import DEV_FILE, N_QUESTIONS, korquad_fixture, require_dev_data, write_json
from reformer_ko.korquad import (
    KorquadFormatError,
    evaluate_korquad,
    korquad_examples,
    load_korquad,
    read_json_file,
    split_by_article,
    write_korquad_json,
)


def test_official_layout_loads_into_run_qa_columns(tmp_path):
    dataset = load_korquad(write_json(tmp_path / "train.json", korquad_fixture()))
    assert dataset.column_names == ["id", "title", "context", "question", "answers"]
    assert len(dataset) == N_QUESTIONS
    first = dataset[0]
    assert (first["id"], first["title"], first["question"]) == ("sejong-0-0", "세종대왕", "세종대왕이 훈민정음을 창제한 해는?")
    assert first["answers"] == {"text": ["1443년"], "answer_start": [first["context"].index("1443년")]}


def test_flat_layouts_load_the_same_examples(tmp_path):
    rows = load_korquad(korquad_fixture()).to_list()
    expected = load_korquad(korquad_fixture()).to_list()
    as_list = write_json(tmp_path / "list.json", rows)
    under_data = write_json(tmp_path / "data.json", {"version": "flat", "data": rows})
    as_lines = tmp_path / "rows.jsonl"
    as_lines.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    for path in (as_list, under_data, as_lines):
        assert load_korquad(path).to_list() == expected


def test_an_answer_offset_mismatch_names_file_id_and_what_the_context_says(tmp_path):
    dataset = korquad_fixture()
    dataset["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 2
    path = write_json(tmp_path / "train.json", dataset)
    with pytest.raises(KorquadFormatError) as error:
        load_korquad(path)
    message = str(error.value)
    assert str(path) in message and "article 1 ('부산광역시'), paragraph 0, question 0" in message
    assert "id 'busan-0-0'" in message
    assert "'부산국제영화제' is not at answer_start" in message and "the text occurs at [" in message
    assert "skip_invalid=True" in message


def test_invalid_examples_can_be_skipped_and_counted(caplog):
    dataset = korquad_fixture()
    dataset["data"][0]["paragraphs"][1]["qas"][1]["answers"][0]["answer_start"] = 0
    del dataset["data"][2]["paragraphs"][0]["qas"][3]["question"]
    rows, problems = korquad_examples(dataset, skip_invalid=True)
    assert len(rows) == N_QUESTIONS - 2 and len(problems) == 2
    assert "sejong-1-1" in problems[0] and "'question' must be a string with a visible character" in problems[1]
    with caplog.at_level(logging.WARNING):
        assert len(load_korquad(dataset, skip_invalid=True)) == N_QUESTIONS - 2
    assert f"Skipped 2 invalid example(s) of {N_QUESTIONS}" in caplog.text


@pytest.mark.parametrize("blank", ["", " \u3000", "\ufeff", "\u200b\n"], ids=["empty", "spaces", "bom", "zero-width"])
def test_a_question_or_answer_of_invisible_characters_is_invalid(blank):
    dataset = korquad_fixture()
    qas = dataset["data"][0]["paragraphs"][0]["qas"]
    qas[0]["question"] = blank
    qas[1]["answers"][0]["text"] = blank
    _, problems = korquad_examples(dataset, skip_invalid=True)
    assert len(problems) == 2
    assert "'question' must be a string with a visible character" in problems[0]
    assert "answer 0: 'text' must be a string with a visible character" in problems[1]


def test_blank_lines_of_a_jsonl_file_are_skipped(tmp_path):
    rows = load_korquad(korquad_fixture()).to_list()
    path = tmp_path / "rows.jsonl"
    lines = [json.dumps(row, ensure_ascii=False) for row in rows[:2]]
    path.write_text(f"{lines[0]}\n\u3000\n\ufeff\u200b\n{lines[1]}\n", encoding="utf-8")
    assert load_korquad(path).to_list() == rows[:2]


def test_duplicate_ids_are_an_error_naming_the_first_occurrence():
    dataset = korquad_fixture()
    dataset["data"][2]["paragraphs"][0]["qas"][0]["id"] = "sejong-0-0"
    with pytest.raises(KorquadFormatError, match=r"id 'sejong-0-0': duplicate id \(first at .*article 0"):
        load_korquad(dataset)


def test_every_problem_is_listed_up_to_five_then_counted():
    dataset = korquad_fixture()
    for qa in dataset["data"][2]["paragraphs"][0]["qas"] + dataset["data"][1]["paragraphs"][0]["qas"]:
        qa["answers"] = []
    with pytest.raises(KorquadFormatError, match=r"8 invalid example\(s\)(.|\n)*and 3 more") as error:
        load_korquad(dataset)
    assert "no answers (KorQuAD v1.0 has at least one answer per question)" in str(error.value)


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (lambda data: data["data"][0]["paragraphs"][0].pop("context"), r"paragraph 0: expected .* with 'context'"),
        (lambda data: data["data"][0].update(paragraphs="text"), r"'paragraphs' must be a list"),
        (lambda data: data["data"][0].pop("paragraphs"), r"entry 0 of 'data' is neither an article"),
        (lambda data: data.pop("data"), r"expected the KorQuAD layout"),
        (lambda data: data["data"][0]["paragraphs"][0]["qas"][0].pop("answers"), r"'answers' must be a list"),
        (lambda data: data["data"][0]["paragraphs"][0]["qas"][0].pop("id"), r"question 0: 'id' must be"),
    ],
    ids=["no context", "paragraphs not a list", "no paragraphs", "no data", "no answers", "no id"],
)
def test_missing_fields_are_errors_saying_what_was_expected(break_it, expected):
    dataset = korquad_fixture()
    break_it(dataset)
    with pytest.raises(KorquadFormatError, match=expected):
        load_korquad(dataset)


def test_malformed_json_names_the_file_and_position(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('{"version": "KorQuAD_v1.0", "data": [}', encoding="utf-8")
    with pytest.raises(KorquadFormatError, match=r"train.json: not valid JSON at line 1, column 38 \("):
        load_korquad(path)


def test_json_lines_under_a_json_name_get_a_hint(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('{"id": "a"}\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(KorquadFormatError, match=r"must be named \*\.jsonl"):
        read_json_file(path)


def test_a_missing_file_is_named():
    with pytest.raises(KorquadFormatError, match=r"nowhere/train.json: no such file"):
        load_korquad("nowhere/train.json")


def test_an_unreadable_path_is_named(tmp_path):
    with pytest.raises(KorquadFormatError, match=r"cannot be read \(Is a directory\)"):
        load_korquad(tmp_path)


def test_split_by_article_keeps_order_and_version():
    head, tail = split_by_article(korquad_fixture(), 2)
    assert [article["title"] for article in head["data"]] == ["세종대왕", "부산광역시"]
    assert [article["title"] for article in tail["data"]] == ["제주도"]
    assert head["version"] == tail["version"] == "KorQuAD_v1.0_fixture"
    assert len(load_korquad(head)) + len(load_korquad(tail)) == N_QUESTIONS


def test_split_by_article_leaves_articles_on_both_sides():
    with pytest.raises(ValueError, match=r"between 1 and 2 for this file of 3 articles, got 3"):
        split_by_article(korquad_fixture(), 3)


def test_a_written_split_reads_back_for_training_and_evaluation(tmp_path):
    _, tail = split_by_article(korquad_fixture(), 2)
    path = tmp_path / "eval.json"
    write_korquad_json(tail, path)
    dataset = load_korquad(path)
    predictions = dict(zip(dataset["id"], (answers["text"][0] for answers in dataset["answers"])))
    assert evaluate_korquad(read_json_file(path), predictions) == {"exact_match": 100.0, "f1": 100.0}


def test_the_dev_set_loads_valid_with_unique_ids():
    require_dev_data()
    dataset = load_korquad(DEV_FILE)
    assert len(dataset) == 5774 and len(set(dataset["id"])) == 5774
    head, tail = split_by_article(read_json_file(DEV_FILE), 100)
    assert len(load_korquad(head)) + len(load_korquad(tail)) == 5774
