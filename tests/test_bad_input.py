"""The bad-input catalogue (tests/bad_input_catalogue.py), run: every wrong input to a command is answered with one
line naming the problem, the catalogue's exit status and no traceback; every wrong input to a Python entry point
(a model's forward, `from_pretrained`, a pipeline) with a `ValueError` naming it; in both cases nothing in the
user's directories is written or changed. docs/errors.md is the catalogue rendered."""

import bz2
import json
import re
import shutil

import pytest
import torch
from bad_input_catalogue import CASES, DOCS_PAGE, render_errors_page
from korquad_fixtures import korquad_fixture, write_json
from pretraining_fixtures import CORPUS, small_tokenizer
from tiny_models import tiny_config
from wiki_fixtures import mediawiki_export
from transformers import AutoTokenizer, BertConfig, pipeline

from reformer_ko import ReformerKoForMaskedLM, ReformerKoForQuestionAnswering
from reformer_ko.cli import main
from reformer_ko.tokenization import train_tokenizer, vocabulary_fingerprint

# Three articles long enough for a dump that is still being read when its bz2 stream ends.
PAGES = [(title, 0, f"{title}은 한국의 문화를 설명하는 문서이다. " * 20) for title in ("김치", "한글", "서울")]
TINY = "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,max_position_embeddings=128,bucket_size=16,num_hashes=2"
COMMAND_CASES = [case for case in CASES if case.status is not None]
PYTHON_CASES = [case for case in CASES if case.status is None]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The files the cases name: good inputs to get past the other checks, and the bad ones."""
    root = tmp_path_factory.mktemp("workspace")
    shutil.copy(CORPUS, root / "corpus.txt")
    (root / "blank.txt").write_bytes("\ufeff\n \t\n\u3000\n\u200b\n".encode())
    (root / "cp949.txt").write_bytes("세종대왕은 조선의 국왕이다.\n".encode("cp949"))
    small_tokenizer(root / "tokenizer")
    # Another vocabulary: the same text read backwards.
    (root / "reversed.txt").write_text(CORPUS.read_text(encoding="utf-8")[::-1], encoding="utf-8")
    train_tokenizer(root / "reversed.txt", root / "other-tokenizer", vocab_size=800, limit_alphabet=300)
    tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
    torch.manual_seed(0)
    config = tiny_config(vocab_size=len(tokenizer), max_position_embeddings=128)
    config.vocab_fingerprint = vocabulary_fingerprint(tokenizer)
    ReformerKoForMaskedLM(config).save_pretrained(root / "mlm")
    tokenizer.save_pretrained(root / "mlm")
    ReformerKoForMaskedLM(config).save_pretrained(root / "truncated-weights")
    weights = root / "truncated-weights" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    BertConfig(vocab_size=len(tokenizer)).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    fixture = korquad_fixture()
    write_json(root / "korquad_train.json", fixture)
    moved = json.loads(json.dumps(fixture))
    moved["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 0
    write_json(root / "moved_answer.json", moved)
    (root / "truncated.json").write_text(json.dumps(fixture, ensure_ascii=False)[:80], encoding="utf-8")
    write_json(root / "predictions.json", {"sejong-0-0": "1443년"})
    (root / "kowiki.xml").write_text("<html><body>404 Not Found</body></html>")
    dump = bz2.compress(mediawiki_export(PAGES * 40).encode("utf-8"))
    (root / "truncated.xml.bz2").write_bytes(dump[: len(dump) * 3 // 4])
    (root / "data.jsonl").write_text(json.dumps({"id": 1, "body": "김치는 음식이다."}, ensure_ascii=False) + "\n")
    return root


def names(workspace, case):
    return {
        "corpus": workspace / "corpus.txt",
        "blank": workspace / "blank.txt",
        "cp949": workspace / "cp949.txt",
        "missing": workspace / "missing.txt",
        "missing_dir": workspace / "missing",
        "tokenizer": workspace / "tokenizer",
        "other_tokenizer": workspace / "other-tokenizer",
        "mlm": workspace / "mlm",
        "bert": workspace / "bert",
        "korquad": workspace / "korquad_train.json",
        "moved_answer": workspace / "moved_answer.json",
        "truncated_json": workspace / "truncated.json",
        "predictions": workspace / "predictions.json",
        "not_a_dump": workspace / "kowiki.xml",
        "truncated_bz2": workspace / "truncated.xml.bz2",
        "jsonl": workspace / "data.jsonl",
        "output": workspace / f"output-{CASES.index(case)}",
        "tiny": TINY,
    }


def assert_documented_as_given(case, message, workspace):
    """docs/errors.md quotes the message itself: the same text, with the workspace's paths shortened to their
    names and `...` where the page leaves a part out."""
    shown = message.replace(f"{workspace}/", "")
    pattern = ".*".join(re.escape(part) for part in case.example.split("..."))
    assert re.fullmatch(pattern, shown, re.DOTALL), f"docs/errors.md says\n  {case.example}\nthe error is\n  {shown}"


def snapshot(directory):
    """Every file under `directory` with its size and modification time."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file() or path.is_dir()
    }


@pytest.mark.parametrize("case", COMMAND_CASES, ids=[case.id for case in COMMAND_CASES])
def test_a_command_answers_bad_input_with_one_line_and_writes_nothing(case, workspace, capsys):
    arguments = [argument.format(**names(workspace, case)) for argument in case.arguments]
    before = snapshot(workspace)
    try:
        status = main([*case.entry.split()[1:], *arguments])
    except SystemExit as exit:  # argparse's usage errors
        status = exit.code
    errors = capsys.readouterr().err
    assert status == case.status, errors[-2000:]
    assert "Traceback" not in errors
    message = errors.strip().splitlines()[-1]
    assert message.startswith(f"{case.entry}: error: "), errors[-2000:]
    assert re.search(case.message, message), message
    assert_documented_as_given(case, message.removeprefix(f"{case.entry}: error: "), workspace)
    assert snapshot(workspace) == before


def call_a_model(workspace, **inputs):
    torch.manual_seed(0)
    ReformerKoForMaskedLM(tiny_config()).eval()(**inputs)


# The calls of the Python cases, by the name the catalogue gives in `arguments`: each must raise.
PYTHON_CALLS = {
    "id_outside_the_vocabulary": lambda root: call_a_model(root, input_ids=torch.tensor([[5, 5000, 7]])),
    "too_long": lambda root: call_a_model(root, input_ids=torch.ones(1, 257, dtype=torch.long)),
    "float_ids": lambda root: call_a_model(root, input_ids=torch.ones(1, 8)),
    "no_rows": lambda root: call_a_model(root, input_ids=torch.ones(0, 8, dtype=torch.long)),
    "mask_shape": lambda root: call_a_model(
        root, input_ids=torch.full((2, 10), 5), attention_mask=torch.ones(2, 9, dtype=torch.long)
    ),
    "segment_id": lambda root: call_a_model(root, input_ids=torch.full((1, 10), 5), token_type_ids=torch.full((1, 10), 2)),
    "attention_weights": lambda root: call_a_model(root, input_ids=torch.full((1, 10), 5), output_attentions=True),
    "truncated_weights": lambda root: ReformerKoForMaskedLM.from_pretrained(root / "truncated-weights"),
    "other_model_type": lambda root: ReformerKoForMaskedLM.from_pretrained(root / "bert"),
    "question_without_context": lambda root: pipeline(
        "question-answering", model=ReformerKoForQuestionAnswering.from_pretrained(root / "mlm"),
        tokenizer=AutoTokenizer.from_pretrained(root / "mlm"),
    )(question="세종대왕은 누구인가?"),
}


@pytest.mark.parametrize("case", PYTHON_CASES, ids=[case.id for case in PYTHON_CASES])
def test_a_python_entry_point_answers_bad_input_with_a_value_error(case, workspace):
    before = snapshot(workspace)
    with pytest.raises(ValueError) as error:
        PYTHON_CALLS[case.arguments[0]](workspace)
    assert re.search(case.message, str(error.value)), str(error.value)
    assert_documented_as_given(case, str(error.value), workspace)
    assert snapshot(workspace) == before


def test_every_python_case_has_its_call():
    assert {case.arguments[0] for case in PYTHON_CASES} == set(PYTHON_CALLS)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_documented_message_is_the_one_given(case):
    assert re.search(case.message, case.example), (case.message, case.example)


def test_docs_errors_page_is_the_catalogue():
    assert DOCS_PAGE.read_text(encoding="utf-8") == render_errors_page(), (
        "docs/errors.md is out of date: run `python tests/bad_input_catalogue.py`"
    )


# The model's checks, for more of each kind of wrong input than the catalogue shows ------------------------------


@pytest.fixture
def model(config):
    return ReformerKoForMaskedLM(config).eval()


def test_input_longer_than_the_context_names_both_lengths(model):
    with pytest.raises(ValueError, match=r"257 tokens .* max_position_embeddings \(256\)"):
        model(torch.ones(1, 257, dtype=torch.long))


@pytest.mark.parametrize("bad_id", [120, 5000, -1])
def test_token_id_outside_the_vocabulary(model, bad_id):
    inputs = torch.full((1, 10), 5)
    inputs[0, 3] = bad_id
    with pytest.raises(ValueError, match=rf"Token id {bad_id} is outside the vocabulary \[0, 120\)"):
        model(inputs)


@pytest.mark.parametrize("name", ["attention_mask", "token_type_ids"])
def test_mask_or_segment_shape_mismatch(model, name):
    inputs = torch.full((2, 10), 5)
    with pytest.raises(ValueError, match=rf"{name} has shape \(2, 9\) but input_ids has shape \(2, 10\)"):
        model(inputs, **{name: torch.zeros(2, 9, dtype=torch.long)})


def test_segment_id_outside_type_vocab_size(model):
    inputs = torch.full((1, 10), 5)
    with pytest.raises(ValueError, match="token_type_ids must be in \\[0, 2\\)"):
        model(inputs, token_type_ids=torch.full((1, 10), 2))


def test_missing_or_empty_input_ids(model):
    with pytest.raises(ValueError, match="input_ids is required"):
        model(None)
    with pytest.raises(ValueError, match="empty"):
        model(torch.ones(1, 0, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bool])
def test_token_ids_that_are_not_integers(model, dtype):
    with pytest.raises(ValueError, match=rf"input_ids must be integer token ids, got dtype {dtype}"):
        model(torch.ones(1, 10, dtype=dtype))


def test_a_batch_of_no_rows(model):
    with pytest.raises(ValueError, match="no rows"):
        model(torch.ones(0, 10, dtype=torch.long))


def test_attention_weights_are_refused_with_the_reason(model, config):
    with pytest.raises(ValueError, match="no attention weights .* LSH attention"):
        model(torch.ones(1, 10, dtype=torch.long), output_attentions=True)
    with pytest.raises(ValueError, match="no attention weights"):
        config.output_attentions = True
