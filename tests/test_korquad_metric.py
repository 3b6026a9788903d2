import json
import logging
import unicodedata

import pytest

from korquad_fixtures import DEV_FILE, DEV_SAMPLE_PREDICTIONS, korquad_fixture, require_dev_data, write_json
from reformer_ko.korquad import (
    KorquadFormatError,
    evaluate_korquad,
    exact_match_score,
    f1_score,
    load_korquad,
    normalize_answer,
)


def gold_predictions(dataset_json):
    return {
        qa["id"]: qa["answers"][0]["text"]
        for article in dataset_json["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


def test_quotes_and_brackets_become_spaces():
    assert normalize_answer("《훈민정음》을") == "훈민정음 을"
    assert normalize_answer("〈부산 갈매기〉") == "부산 갈매기"
    assert normalize_answer("'부산국제영화제'") == "부산국제영화제"
    assert normalize_answer("‘세종’과\"장영실\"") == "세종 과 장영실"
    assert normalize_answer("탐라(耽羅)") == "탐라 耽羅"
    assert normalize_answer("<제주>도") == "제주 도"


def test_lowercased_without_ascii_punctuation():
    assert normalize_answer("1,947m.") == "1947m"
    assert normalize_answer("KBS-TV!") == "kbstv"


def test_curly_double_quotes_and_cjk_punctuation_are_kept():
    # The official list has ‘ ’ but not “ ”; full-width punctuation is not ASCII.
    assert normalize_answer("“훈민정음”。") == "“훈민정음”。"


def test_whitespace_is_collapsed():
    assert normalize_answer(" 약\t330만\n  명 ") == "약 330만 명"


def test_exact_match_ignores_brackets_case_and_punctuation():
    assert exact_match_score("《훈민정음》", "훈민정음")
    assert exact_match_score("Seoul.", "seoul")
    assert not exact_match_score("훈민정음", "훈민정음을")


def test_characters_are_compared_as_written_as_the_official_script_does():
    # No Unicode normalisation: answers are cut from the context as given, in the gold answers' own characters.
    decomposed = unicodedata.normalize("NFD", "1443년")
    assert exact_match_score(decomposed, decomposed)
    assert not exact_match_score(decomposed, "1443년")
    assert f1_score(decomposed, "1443년") == pytest.approx(2 * (4 / 7) * (4 / 5) / (4 / 7 + 4 / 5))


def test_spacing_breaks_exact_match_but_not_f1():
    assert not exact_match_score("약 330만 명", "약 330만명")
    assert f1_score("약 330만 명", "약 330만명") == 1.0


def test_f1_of_a_partial_overlap_counts_characters():
    # prediction 1989년2월 (7 characters), gold 1989년2월15일 (10): precision 1, recall 0.7.
    assert f1_score("1989년 2월", "1989년 2월 15일") == pytest.approx(2 * 0.7 / 1.7)


def test_f1_matches_repeated_characters_as_a_multiset():
    # one 가 in common: precision 1/3, recall 1/2
    assert f1_score("가가가", "가나") == pytest.approx(0.4)


def test_f1_of_disjoint_answers_is_zero():
    assert f1_score("부산", "제주") == 0


def test_answers_that_normalise_to_nothing_match_exactly_but_score_no_f1():
    # The official script's behaviour, kept: equal empty strings, zero common characters.
    assert exact_match_score("()", "《》")
    assert f1_score("()", "《》") == 0


def test_best_of_several_gold_answers_counts():
    dataset = korquad_fixture()
    qa = dataset["data"][0]["paragraphs"][0]["qas"][1]
    qa["answers"].append({"text": "훈민정음", "answer_start": qa["answers"][0]["answer_start"] + 1})
    predictions = gold_predictions(dataset)
    predictions[qa["id"]] = "훈민정음을"
    scores = evaluate_korquad(dataset, predictions)
    # 12 exact; the 13th: 훈민정음을 vs 훈민정음 (the better gold): precision 4/5, recall 1.
    assert scores["exact_match"] == pytest.approx(100 * 12 / 13)
    assert scores["f1"] == pytest.approx(100 * (12 + 2 * 0.8 / 1.8) / 13)


def test_hand_computed_scores_on_the_fixture():
    dataset = korquad_fixture()
    predictions = gold_predictions(dataset)
    predictions["sejong-0-1"] = "훈민정음"  # exact after normalisation
    predictions["busan-0-1"] = "약 330만명"  # spacing: F1 1, not exact
    predictions["sejong-1-0"] = "장영실은"  # precision 3/4, recall 1
    predictions["jeju-0-0"] = "1,947m."  # exact: ASCII punctuation is dropped
    predictions["jeju-0-1"] = "한라산"  # wrong
    scores = evaluate_korquad(dataset, predictions)
    assert scores["exact_match"] == pytest.approx(100 * 10 / 13)
    assert scores["f1"] == pytest.approx(100 * (11 + 2 * 0.75 / 1.75) / 13)


def test_a_missing_prediction_scores_zero_with_a_warning(caplog):
    predictions = gold_predictions(korquad_fixture())
    del predictions["busan-0-0"]
    with caplog.at_level(logging.WARNING):
        scores = evaluate_korquad(korquad_fixture(), predictions)
    assert scores == {"exact_match": pytest.approx(100 * 12 / 13), "f1": pytest.approx(100 * 12 / 13)}
    assert "1 of 13 questions have no prediction" in caplog.text
    assert "busan-0-0" in caplog.text


def test_predictions_for_unknown_ids_are_an_error_naming_them():
    predictions = gold_predictions(korquad_fixture())
    predictions["6548850-0-0"] = "1989년 2월 15일"
    with pytest.raises(KorquadFormatError, match=r"1 of 14 predictions are for ids not in .*6548850-0-0"):
        evaluate_korquad(korquad_fixture(), predictions)


def test_unknown_ids_can_be_ignored_as_the_official_script_does():
    predictions = gold_predictions(korquad_fixture())
    predictions["6548850-0-0"] = "1989년 2월 15일"
    scores = evaluate_korquad(korquad_fixture(), predictions, ignore_unknown_ids=True)
    assert scores == {"exact_match": 100.0, "f1": 100.0}


def test_a_prediction_that_is_not_text_is_an_error_naming_the_id():
    predictions = gold_predictions(korquad_fixture())
    predictions["jeju-0-2"] = ["탐라"]
    with pytest.raises(KorquadFormatError, match=r"'jeju-0-2' must be the answer text \(a string\)"):
        evaluate_korquad(korquad_fixture(), predictions)


def test_every_layout_of_the_gold_gives_the_same_scores():
    dataset = korquad_fixture()
    predictions = gold_predictions(dataset)
    predictions["sejong-1-0"] = "장영실은"
    flat_rows = load_korquad(dataset).to_list()
    layouts = [dataset, dataset["data"], flat_rows, load_korquad(dataset)]
    assert len({json.dumps(evaluate_korquad(gold, predictions)) for gold in layouts}) == 1


def run_cli(*argv):
    """`reformer-ko evaluate-korquad ARGV`'s exit status."""
    from reformer_ko.cli import main

    return main(["evaluate-korquad", *map(str, argv)])


def test_cli_prints_the_scores_as_the_official_script_does(tmp_path, capsys):
    dataset_file = write_json(tmp_path / "dev.json", korquad_fixture())
    predictions_file = write_json(tmp_path / "predictions.json", gold_predictions(korquad_fixture()))
    assert run_cli(dataset_file, predictions_file) == 0
    assert capsys.readouterr().out == '{"exact_match": 100.0, "f1": 100.0}\n'


def test_cli_is_registered_as_evaluate_korquad(tmp_path, capsys):
    from reformer_ko.cli import main

    dataset_file = write_json(tmp_path / "dev.json", korquad_fixture())
    predictions_file = write_json(tmp_path / "predictions.json", {"sejong-0-0": "1443년"})
    assert main(["evaluate-korquad", str(dataset_file), str(predictions_file)]) == 0
    assert json.loads(capsys.readouterr().out)["exact_match"] == pytest.approx(100 / 13)


def test_cli_names_the_file_of_malformed_json(tmp_path, capsys):
    dataset_file = write_json(tmp_path / "dev.json", korquad_fixture())
    predictions_file = tmp_path / "predictions.json"
    predictions_file.write_text('{"sejong-0-0": "1443년",}', encoding="utf-8")
    assert run_cli(dataset_file, predictions_file) == 1
    error = capsys.readouterr().err
    assert str(predictions_file) in error
    assert "not valid JSON" in error and "line 1, column" in error


def test_cli_rejects_predictions_that_are_not_an_object(tmp_path, capsys):
    dataset_file = write_json(tmp_path / "dev.json", korquad_fixture())
    predictions_file = write_json(tmp_path / "predictions.json", [["sejong-0-0", "1443년"]])
    assert run_cli(dataset_file, predictions_file) == 1
    assert "expected a JSON object mapping question id to answer text" in capsys.readouterr().err


def test_cli_warns_about_another_dataset_version(tmp_path, caplog):
    dataset = korquad_fixture()
    dataset["version"] = "KorQuAD_2.0_dev"
    dataset_file = write_json(tmp_path / "dev.json", dataset)
    predictions_file = write_json(tmp_path / "predictions.json", gold_predictions(dataset))
    with caplog.at_level(logging.WARNING):
        assert run_cli(dataset_file, predictions_file) == 0
    assert "Evaluation expects KorQuAD_v1.0, but got dataset with KorQuAD_2.0_dev" in caplog.text


def test_official_sample_predictions_score_100_on_the_dev_set(capsys):
    require_dev_data()
    assert run_cli(DEV_FILE, DEV_SAMPLE_PREDICTIONS) == 0
    assert json.loads(capsys.readouterr().out) == {"exact_match": 100.0, "f1": 100.0}


def test_one_wrong_dev_prediction_costs_one_question(tmp_path):
    require_dev_data()
    predictions = json.loads(DEV_SAMPLE_PREDICTIONS.read_text(encoding="utf-8"))
    predictions["6548850-0-0"] = "평양축전"
    scores = evaluate_korquad(json.loads(DEV_FILE.read_text(encoding="utf-8")), predictions)
    assert scores == {"exact_match": pytest.approx(100 * 5773 / 5774), "f1": pytest.approx(100 * 5773 / 5774)}
