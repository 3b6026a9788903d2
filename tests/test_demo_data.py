"""Checks that the data shipped in reformer_ko/demo_data is well formed.

The files are located relative to this test file (not through ``import reformer_ko``) so that these
checks do not depend on the package importing.
"""

import json
import unicodedata
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[1] / "reformer_ko" / "demo_data"
CORPUS = DATA_DIR / "corpus.txt"
QA_FILES = {"train": DATA_DIR / "korquad_train.json", "eval": DATA_DIR / "korquad_eval.json"}


def _corpus_text():
    raw = CORPUS.read_bytes()
    return raw.decode("utf-8")  # strict: raises on invalid UTF-8


def _documents():
    text = _corpus_text()
    return [block.split("\n") for block in text.rstrip("\n").split("\n\n")]


def _load(split):
    with QA_FILES[split].open(encoding="utf-8") as f:
        return json.load(f)


def _iter_qas(dataset):
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield article, paragraph, qa


def test_files_exist():
    assert CORPUS.is_file()
    for path in QA_FILES.values():
        assert path.is_file()
    assert (DATA_DIR / "README.md").is_file()


def test_corpus_is_valid_utf8_nfc():
    text = _corpus_text()
    assert not text.startswith("\ufeff")
    assert unicodedata.normalize("NFC", text) == text
    assert "\r" not in text and "\t" not in text


def test_corpus_layout():
    text = _corpus_text()
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert not text.startswith("\n")
    # one blank line between documents: never two blank lines in a row
    assert "\n\n\n" not in text
    for line in text.split("\n"):
        assert line == line.strip(), f"leading/trailing whitespace in {line!r}"


def test_corpus_documents_and_sentences():
    docs = _documents()
    assert len(docs) >= 40
    sentences = [s for doc in docs for s in doc]
    assert len(sentences) >= 400
    for doc in docs:
        assert doc and all(doc), "empty document or empty line inside a document"
        assert 8 <= len(doc) <= 15
    for sentence in sentences:
        assert sentence[-1] in ".?!", sentence
        assert 20 <= len(sentence) <= 120, sentence
        assert any("\uac00" <= ch <= "\ud7a3" for ch in sentence), sentence


@pytest.mark.parametrize("split", ["train", "eval"])
def test_qa_layout(split):
    dataset = _load(split)
    assert set(dataset) == {"version", "data"}
    assert isinstance(dataset["version"], str) and dataset["version"]
    assert isinstance(dataset["data"], list) and dataset["data"]
    for article in dataset["data"]:
        assert isinstance(article["title"], str) and article["title"]
        assert isinstance(article["paragraphs"], list) and article["paragraphs"]
        for paragraph in article["paragraphs"]:
            assert isinstance(paragraph["context"], str) and paragraph["context"]
            assert isinstance(paragraph["qas"], list) and paragraph["qas"]
            for qa in paragraph["qas"]:
                assert isinstance(qa["id"], str) and qa["id"]
                assert isinstance(qa["question"], str) and qa["question"].strip()
                assert isinstance(qa["answers"], list) and qa["answers"]
                for answer in qa["answers"]:
                    assert isinstance(answer["text"], str) and answer["text"]
                    assert isinstance(answer["answer_start"], int)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_qa_text_is_nfc(split):
    raw = QA_FILES[split].read_bytes().decode("utf-8")
    assert unicodedata.normalize("NFC", raw) == raw


@pytest.mark.parametrize("split", ["train", "eval"])
def test_answer_offsets(split):
    for _, paragraph, qa in _iter_qas(_load(split)):
        context = paragraph["context"]
        for answer in qa["answers"]:
            start, text = answer["answer_start"], answer["text"]
            assert 0 <= start <= len(context) - len(text), qa["id"]
            assert context[start:start + len(text)] == text, qa["id"]
            assert text == text.strip(), qa["id"]


def test_ids_unique_across_files():
    ids = [qa["id"] for split in QA_FILES for _, _, qa in _iter_qas(_load(split))]
    assert len(ids) == len(set(ids))


def test_qa_counts():
    train, evaluation = _load("train"), _load("eval")
    articles = train["data"] + evaluation["data"]
    paragraphs = [p for a in articles for p in a["paragraphs"]]
    questions = [qa for p in paragraphs for qa in p["qas"]]
    assert len(articles) >= 12
    assert len(paragraphs) >= 24
    assert len(questions) >= 120
    assert sum(1 for _ in _iter_qas(evaluation)) >= 25
    assert sum(1 for _ in _iter_qas(train)) > sum(1 for _ in _iter_qas(evaluation))


def test_train_and_eval_are_disjoint():
    train, evaluation = _load("train"), _load("eval")
    train_titles = {a["title"] for a in train["data"]}
    eval_titles = {a["title"] for a in evaluation["data"]}
    assert not train_titles & eval_titles
    train_contexts = {p["context"] for a in train["data"] for p in a["paragraphs"]}
    eval_contexts = {p["context"] for a in evaluation["data"] for p in a["paragraphs"]}
    assert not train_contexts & eval_contexts
