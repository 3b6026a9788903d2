import json
import unicodedata

import numpy as np
import pytest

from korquad_fixtures import (
    DEV_FILE,
    fixture_texts,
    korquad_fixture,
    require_dev_data,
    tiny_tokenizer,
)
from reformer_ko.korquad import (
    evaluate_korquad,
    load_korquad,
    nbest_answers,
    postprocess_qa_predictions,
    prepare_eval_features,
    prepare_train_features,
    truncate_questions,
)
from reformer_ko.tokenization import train_tokenizer

# Small enough that the fixture's paragraphs need several windows.
SMALL = {"max_seq_length": 64, "doc_stride": 16, "max_query_length": 12}
CLS_ID, SEP_ID = 2, 3


@pytest.fixture(scope="module")
def examples():
    return load_korquad(korquad_fixture())


@pytest.fixture(scope="module")
def syllable_tokenizer():
    """Trained on so little text that nearly every token is one syllable: answer bounds are token bounds."""
    return tiny_tokenizer(fixture_texts(), vocab_size=300)


@pytest.fixture(scope="module")
def word_tokenizer():
    """Keeps whole words such as 자격루를 and pieces such as ##년에 that run past an answer's end."""
    return tiny_tokenizer(fixture_texts(), vocab_size=1000)


def windows(examples, tokenizer, **lengths):
    """Train and eval features of the same windows, side by side."""
    train = prepare_train_features(examples[:], tokenizer, **lengths)
    evaluation = prepare_eval_features(examples[:], tokenizer, **lengths)
    assert train["input_ids"] == evaluation["input_ids"]
    return train, evaluation


def labelled_text(examples, train, evaluation, window):
    context = examples[examples["id"].index(evaluation["example_id"][window])]["context"]
    offsets = evaluation["offset_mapping"][window]
    return context[offsets[train["start_positions"][window]][0] : offsets[train["end_positions"][window]][1]]


def gold(examples, example_id):
    return examples[examples["id"].index(example_id)]["answers"]


def test_answer_labels_reproduce_the_gold_text_from_the_context(examples, syllable_tokenizer):
    train, evaluation = windows(examples, syllable_tokenizer, **SMALL)
    labelled = [window for window, start in enumerate(train["start_positions"]) if start != 0]
    assert labelled
    for window in labelled:
        expected = gold(examples, evaluation["example_id"][window])["text"][0]
        assert labelled_text(examples, train, evaluation, window) == expected


def test_every_answer_is_labelled_in_some_window(examples, syllable_tokenizer):
    train, evaluation = windows(examples, syllable_tokenizer, **SMALL)
    assert len(train["input_ids"]) > 2 * len(examples)
    labelled = {evaluation["example_id"][w] for w, start in enumerate(train["start_positions"]) if start != 0}
    assert labelled == set(examples["id"])


def test_windows_without_the_answer_are_labelled_at_cls(examples, syllable_tokenizer):
    train, evaluation = windows(examples, syllable_tokenizer, **SMALL)
    unlabelled = [window for window, start in enumerate(train["start_positions"]) if start == 0]
    assert unlabelled
    for window in unlabelled:
        assert train["end_positions"][window] == 0 and train["input_ids"][window][0] == CLS_ID
        answers = gold(examples, evaluation["example_id"][window])
        start, end = answers["answer_start"][0], answers["answer_start"][0] + len(answers["text"][0])
        context_offsets = [offset for offset in evaluation["offset_mapping"][window] if offset is not None]
        assert not context_offsets[0][0] <= start < end <= context_offsets[-1][1]


def test_an_answer_ending_inside_a_token_is_labelled_with_the_whole_token(examples, word_tokenizer):
    train, evaluation = windows(examples, word_tokenizer, **SMALL)
    texts = {
        labelled_text(examples, train, evaluation, window)
        for window, example_id in enumerate(evaluation["example_id"])
        if example_id == "sejong-0-0" and train["start_positions"][window] != 0
    }
    assert texts == {"1443년에"}


def test_question_is_segment_0_and_context_segment_1(examples, syllable_tokenizer):
    features = prepare_eval_features(examples[:], syllable_tokenizer, **SMALL)
    for input_ids, token_type_ids, attention_mask, offsets in zip(
        features["input_ids"], features["token_type_ids"], features["attention_mask"], features["offset_mapping"]
    ):
        first_sep = input_ids.index(SEP_ID)
        assert input_ids[0] == CLS_ID and input_ids[-1] == SEP_ID
        assert token_type_ids == [0] * (first_sep + 1) + [1] * (len(input_ids) - first_sep - 1)
        assert attention_mask == [1] * len(input_ids)
        assert [offset is not None for offset in offsets] == [False] * (first_sep + 1) + [True] * (
            len(input_ids) - first_sep - 2
        ) + [False]


def test_a_long_question_is_cut_to_max_query_length_tokens(examples, syllable_tokenizer):
    long_question = examples[examples["id"].index("busan-0-2")]["question"]
    full = syllable_tokenizer(long_question, add_special_tokens=False)["input_ids"]
    assert len(full) > 40
    features = prepare_eval_features(examples[:], syllable_tokenizer, **SMALL)
    for input_ids, example_id in zip(features["input_ids"], features["example_id"]):
        if example_id == "busan-0-2":
            assert input_ids[1 : input_ids.index(SEP_ID)] == full[:12]


@pytest.mark.parametrize("max_query_length", [1, 5, 12, 30])
def test_a_cut_question_keeps_exactly_its_first_tokens(examples, syllable_tokenizer, word_tokenizer, max_query_length):
    questions = examples["question"]
    for tokenizer in (syllable_tokenizer, word_tokenizer):
        for question, cut in zip(questions, truncate_questions(questions, tokenizer, max_query_length)):
            assert tokenizer.tokenize(cut) == tokenizer.tokenize(question)[:max_query_length]


def test_context_offsets_point_at_each_tokens_text(examples, syllable_tokenizer):
    features = prepare_eval_features(examples[:], syllable_tokenizer, **SMALL)
    for input_ids, offsets, example_id in zip(
        features["input_ids"], features["offset_mapping"], features["example_id"]
    ):
        context = examples[examples["id"].index(example_id)]["context"]
        for token, offset in zip(syllable_tokenizer.convert_ids_to_tokens(input_ids), offsets):
            if offset is not None:
                assert token != "[UNK]" and context[offset[0] : offset[1]] == token.removeprefix("##")


def test_consecutive_windows_share_doc_stride_context_tokens(examples, syllable_tokenizer):
    features = prepare_eval_features(examples[:1], syllable_tokenizer, **SMALL)
    context_offsets = [[offset for offset in window if offset is not None] for window in features["offset_mapping"]]
    assert len(context_offsets) >= 3
    for window, next_window in zip(context_offsets, context_offsets[1:]):
        assert window[-16:] == next_window[:16]


def test_default_lengths_fit_each_fixture_example_in_one_window(examples, word_tokenizer):
    features = prepare_eval_features(examples[:], word_tokenizer)
    assert features["example_id"] == examples["id"]
    assert max(len(input_ids) for input_ids in features["input_ids"]) <= 512


def test_padding_to_max_length_is_masked(examples, syllable_tokenizer):
    features = prepare_train_features(examples[:2], syllable_tokenizer, padding="max_length", **SMALL)
    for input_ids, attention_mask in zip(features["input_ids"], features["attention_mask"]):
        assert len(input_ids) == 64
        assert attention_mask == [int(token != 0) for token in input_ids]


def test_a_stride_leaving_no_room_for_the_context_is_a_clear_error(examples, syllable_tokenizer):
    with pytest.raises(ValueError, match=r"doc_stride \(60\) must be smaller .* max_query_length - 3 = 49"):
        prepare_eval_features(examples[:], syllable_tokenizer, max_seq_length=64, doc_stride=60, max_query_length=12)


def test_a_training_example_without_an_answer_is_an_error_naming_it(examples, syllable_tokenizer):
    batch = examples[:2]
    batch["answers"][1] = {"text": [], "answer_start": []}
    with pytest.raises(ValueError, match=r"example 'sejong-0-1' has no answer to train on"):
        prepare_train_features(batch, syllable_tokenizer, **SMALL)


def test_features_map_over_a_dataset_in_batches(examples, syllable_tokenizer):
    fn_kwargs = {"tokenizer": syllable_tokenizer, **SMALL}
    arguments = {"batched": True, "remove_columns": examples.column_names, "fn_kwargs": fn_kwargs}
    train = examples.map(prepare_train_features, **arguments)
    evaluation = examples.map(prepare_eval_features, **arguments)
    inputs = {"input_ids", "token_type_ids", "attention_mask"}
    assert set(train.column_names) == inputs | {"start_positions", "end_positions"}
    assert set(evaluation.column_names) == inputs | {"example_id", "offset_mapping"}
    assert len(train) == len(evaluation)


def gold_logits(train, length=None):
    """Logits that put each window's label (the answer, or [CLS]) first."""
    length = length or max(len(input_ids) for input_ids in train["input_ids"])
    start = np.full((len(train["input_ids"]), length), -5.0)
    end = start.copy()
    rows = np.arange(len(start))
    start[rows, train["start_positions"]] = 5.0
    end[rows, train["end_positions"]] = 5.0
    return start, end


def test_gold_label_logits_give_back_the_gold_answers(examples, syllable_tokenizer):
    train, evaluation = windows(examples, syllable_tokenizer, **SMALL)
    predictions = postprocess_qa_predictions(examples, evaluation, gold_logits(train))
    assert predictions == {row["id"]: row["answers"]["text"][0] for row in examples}
    assert evaluate_korquad(examples, predictions) == {"exact_match": 100.0, "f1": 100.0}


def test_spans_outside_the_context_are_never_chosen(examples, syllable_tokenizer):
    evaluation = prepare_eval_features(examples[:], syllable_tokenizer, **SMALL)
    start = np.zeros((len(evaluation["input_ids"]), 64))
    start[:, :14] = 100.0  # [CLS] and the question
    predictions = postprocess_qa_predictions(examples, evaluation, (start, start.copy()))
    for row in examples:
        assert predictions[row["id"]] and predictions[row["id"]] in row["context"]


def one_window(example_id, context_offsets):
    """Features of one window: [CLS], a 2-token question, [SEP], the given context offsets, [SEP]."""
    return {"example_id": [example_id], "offset_mapping": [[None] * 4 + context_offsets + [None]]}


def test_spans_longer_than_max_answer_length_are_not_chosen():
    context = "가나다라마바사아자차"
    examples = {"id": ["q"], "context": [context]}
    features = one_window("q", [(i, i + 1) for i in range(10)])
    start, end = np.zeros((1, 15)), np.zeros((1, 15))
    start[0, 4], end[0, 13] = 10.0, 10.0  # 가 ... 차, 10 tokens
    end[0, 6] = 5.0  # 가나다, 3 tokens
    assert postprocess_qa_predictions(examples, features, (start, end), max_answer_length=10) == {"q": context}
    assert postprocess_qa_predictions(examples, features, (start, end), max_answer_length=9) == {"q": "가나다"}


def test_an_end_before_the_start_is_not_chosen():
    examples = {"id": ["q"], "context": ["가나다라"]}
    features = one_window("q", [(i, i + 1) for i in range(4)])
    start, end = np.zeros((1, 9)), np.zeros((1, 9))
    start[0, 6], end[0, 5], end[0, 7] = 10.0, 9.0, 1.0
    assert postprocess_qa_predictions(examples, features, (start, end)) == {"q": "다라"}


def test_the_best_window_of_an_example_wins():
    examples = {"id": ["q"], "context": ["가나다라마바"]}
    first, second = one_window("q", [(0, 1), (1, 2), (2, 3), (3, 4)]), one_window("q", [(2, 3), (3, 4), (4, 5), (5, 6)])
    features = {name: first[name] + second[name] for name in first}
    start, end = np.zeros((2, 9)), np.zeros((2, 9))
    start[0, 4], end[0, 5] = 3.0, 3.0  # 가나, score 6
    start[1, 6], end[1, 7] = 4.0, 4.0  # 마바, score 8
    assert postprocess_qa_predictions(examples, features, (start, end)) == {"q": "마바"}


def test_logits_padded_by_the_trainer_are_accepted(examples, syllable_tokenizer):
    train, evaluation = windows(examples, syllable_tokenizer, **SMALL)
    start, end = gold_logits(train, length=80)
    for row, input_ids in enumerate(train["input_ids"]):
        start[row, len(input_ids) :] = end[row, len(input_ids) :] = -100.0
    predictions = postprocess_qa_predictions(examples, evaluation, (start, end))
    assert evaluate_korquad(examples, predictions) == {"exact_match": 100.0, "f1": 100.0}


def test_prediction_files_hold_the_answers_and_distinct_n_best_spans(examples, syllable_tokenizer, tmp_path):
    evaluation = prepare_eval_features(examples[:], syllable_tokenizer, **SMALL)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, len(evaluation["input_ids"]), 64))
    predictions = postprocess_qa_predictions(
        examples, evaluation, tuple(logits), n_best_size=5, output_dir=tmp_path / "out", prefix="eval"
    )
    written = json.loads((tmp_path / "out" / "eval_predictions.json").read_text(encoding="utf-8"))
    nbest = json.loads((tmp_path / "out" / "eval_nbest_predictions.json").read_text(encoding="utf-8"))
    assert written == predictions and set(nbest) == set(examples["id"])
    for row in examples:
        spans = nbest[row["id"]]
        assert len(spans) == 5 and spans[0]["text"] == predictions[row["id"]]
        assert len({(span["answer_start"], span["text"]) for span in spans}) == 5
        assert sum(span["probability"] for span in spans) == pytest.approx(1.0)
        scores = [span["start_logit"] + span["end_logit"] for span in spans]
        assert scores == sorted(scores, reverse=True)
        for span in spans:
            assert row["context"][span["answer_start"] :].startswith(span["text"])


def test_logits_for_other_features_are_an_error(examples, syllable_tokenizer):
    evaluation = prepare_eval_features(examples[:], syllable_tokenizer, **SMALL)
    too_few = np.zeros((len(evaluation["input_ids"]) - 1, 64))
    with pytest.raises(ValueError, match=r"start and .* end logit rows for \d+ features"):
        postprocess_qa_predictions(examples, evaluation, (too_few, too_few))


def test_features_without_offsets_are_an_error_saying_how_to_fix(examples, syllable_tokenizer):
    train = prepare_train_features(examples[:], syllable_tokenizer, **SMALL)
    logits = np.zeros((len(train["input_ids"]), 64))
    with pytest.raises(ValueError, match=r"lack the columns \['example_id', 'offset_mapping'\]: build them with"):
        postprocess_qa_predictions(examples, train, (logits, logits))


def decomposed(examples, composed_after=None):
    """The examples with questions, contexts and answers in NFD (contexts only up to `composed_after`
    characters when given: mixed NFD/NFC), `answer_start` moved to the same answers."""
    rows = []
    for row in examples:
        context, cut = row["context"], len(row["context"]) if composed_after is None else composed_after

        def position(index):
            return len(unicodedata.normalize("NFD", context[: min(index, cut)])) + max(0, index - cut)

        new_context = unicodedata.normalize("NFD", context[:cut]) + context[cut:]
        answers = zip(row["answers"]["answer_start"], row["answers"]["text"])
        spans = [(position(start), position(start + len(text))) for start, text in answers]
        answers = {"text": [new_context[start:end] for start, end in spans], "answer_start": [s for s, _ in spans]}
        question = unicodedata.normalize("NFD", row["question"])
        rows.append({**row, "question": question, "context": new_context, "answers": answers})
    return load_korquad(rows)


@pytest.fixture(scope="module", params=[None, 60], ids=["nfd", "mixed"])
def decomposed_examples(request, examples):
    changed = decomposed(examples, request.param)
    assert all(row["context"] != original for row, original in zip(changed, examples["context"]))
    return changed


def test_decomposed_text_gets_the_windows_and_labels_of_composed_text(
    examples, decomposed_examples, syllable_tokenizer
):
    composed = prepare_train_features(examples[:], syllable_tokenizer, **SMALL)
    assert prepare_train_features(decomposed_examples[:], syllable_tokenizer, **SMALL) == composed


@pytest.fixture(scope="module")
def normalizing_tokenizer(tmp_path_factory):
    """reformer-ko's own tokenizer, whose NFC normaliser gives decomposed text composed ids but offsets that
    cover only each syllable's first jamo."""
    directory = tmp_path_factory.mktemp("normalizing")
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(fixture_texts()) + "\n", encoding="utf-8")
    return train_tokenizer(corpus, directory / "tokenizer", vocab_size=300)


@pytest.fixture(params=["syllable", "normalizing"])
def any_tokenizer(request, syllable_tokenizer, normalizing_tokenizer):
    return {"syllable": syllable_tokenizer, "normalizing": normalizing_tokenizer}[request.param]


def test_context_offsets_of_decomposed_text_cover_whole_syllables(decomposed_examples, any_tokenizer):
    features = prepare_eval_features(decomposed_examples[:], any_tokenizer, **SMALL)
    per_window = zip(features["input_ids"], features["offset_mapping"], features["example_id"])
    for input_ids, offsets, example_id in per_window:
        context = decomposed_examples[decomposed_examples["id"].index(example_id)]["context"]
        for token, offset in zip(any_tokenizer.convert_ids_to_tokens(input_ids), offsets):
            if offset is not None and token != "[UNK]":
                assert unicodedata.normalize("NFC", context[offset[0] : offset[1]]) == token.removeprefix("##")


def test_answers_in_decomposed_text_are_the_composed_answers_in_the_users_characters(
    examples, decomposed_examples, any_tokenizer
):
    rng = np.random.default_rng(0)
    evaluation = prepare_eval_features(examples[:], any_tokenizer, **SMALL)
    logits = tuple(rng.normal(size=(2, len(evaluation["input_ids"]), 64)))
    composed = postprocess_qa_predictions(examples, evaluation, logits)
    features = prepare_eval_features(decomposed_examples[:], any_tokenizer, **SMALL)
    assert features["input_ids"] == evaluation["input_ids"]
    answers = nbest_answers(decomposed_examples, features, logits, n_best_size=1)
    for row in decomposed_examples:
        best = answers[row["id"]][0]
        assert row["context"][best["answer_start"] :].startswith(best["text"])
        assert unicodedata.normalize("NFC", best["text"]) == composed[row["id"]]


def test_gold_label_logits_give_back_the_gold_answers_of_decomposed_text(decomposed_examples, syllable_tokenizer):
    train, evaluation = windows(decomposed_examples, syllable_tokenizer, **SMALL)
    predictions = postprocess_qa_predictions(decomposed_examples, evaluation, gold_logits(train))
    assert predictions == {row["id"]: row["answers"]["text"][0] for row in decomposed_examples}
    assert evaluate_korquad(decomposed_examples, predictions) == {"exact_match": 100.0, "f1": 100.0}


@pytest.mark.slow
def test_the_whole_dev_set_goes_through_features_post_processing_and_the_metric():
    require_dev_data()
    examples = load_korquad(DEV_FILE)
    tokenizer = tiny_tokenizer(list(dict.fromkeys(examples["context"])) + list(examples["question"]), vocab_size=8000)
    arguments = {"batched": True, "remove_columns": examples.column_names, "fn_kwargs": {"tokenizer": tokenizer}}
    evaluation = examples.map(prepare_eval_features, **arguments)
    train = examples.map(prepare_train_features, **arguments)
    assert len(evaluation) == len(train) > len(examples)
    questions = list(examples["question"])
    cut = tokenizer(truncate_questions(questions, tokenizer, 9), add_special_tokens=False)["input_ids"]
    assert cut == [ids[:9] for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    assert max(len(input_ids) for input_ids in evaluation["input_ids"]) <= 512

    rng = np.random.default_rng(0)
    random_logits = tuple(rng.normal(size=(2, len(evaluation), 512)))
    predictions = postprocess_qa_predictions(examples, evaluation, random_logits)
    assert set(predictions) == set(examples["id"]) and all(predictions.values())
    random_scores = evaluate_korquad(examples, predictions)
    assert random_scores["exact_match"] < 5 and random_scores["f1"] < 20

    # Perfect logits: what is lost is only where an answer ends inside a WordPiece token (e.g. before a
    # particle such as 은/는), which F1 over characters barely counts.
    gold_scores = evaluate_korquad(examples, postprocess_qa_predictions(examples, evaluation, gold_logits(train)))
    assert gold_scores["f1"] > 95 and gold_scores["exact_match"] > 70
