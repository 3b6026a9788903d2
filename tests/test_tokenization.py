import json
import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from reformer_ko.cli import main as cli_main
from reformer_ko.data import CorpusError
from reformer_ko.tokenization import SPECIAL_TOKENS, load_tokenizer, train_tokenizer

KOREAN_CORPUS = Path(__file__).parent / "fixtures" / "korean_corpus.txt"
# The test sentence of the original project.
SENTENCE = "나는 워드피스 토크나이저를 써요. 성능이 좋은지 테스트 해보려 합니다."
HANGUL_JAMO = range(0x1100, 0x1200)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(KOREAN_CORPUS, directory, vocab_size=500)
    return directory


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


def test_special_tokens_have_ids_zero_to_four(tokenizer):
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS.values())) == [0, 1, 2, 3, 4]
    assert tokenizer.pad_token_id == 0


def test_saved_directory_has_the_files_of_a_bert_tokenizer(tokenizer_dir):
    assert {"tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"} <= {
        p.name for p in tokenizer_dir.iterdir()
    }
    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["model_max_length"] == 5120
    assert config["do_lower_case"] is False
    assert json.loads((tokenizer_dir / "special_tokens_map.json").read_text(encoding="utf-8")) == SPECIAL_TOKENS
    assert not [p for p in tokenizer_dir.iterdir() if p.name.startswith(".")]


def test_autotokenizer_loads_the_whole_vocabulary(tokenizer, tokenizer_dir):
    # Guards against the trap of a BERT tokenizer built from a file it ignores: 5 tokens, all [UNK].
    vocab_lines = (tokenizer_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert tokenizer.is_fast
    assert len(tokenizer) == len(vocab_lines) > 300
    assert vocab_lines == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))


def test_korean_words_are_not_unknown(tokenizer):
    assert tokenizer.unk_token not in tokenizer.tokenize(SENTENCE)


def test_tokenizer_is_cased_and_keeps_hangul_syllables_whole(tokenizer):
    # Guards against lowercasing with accent stripping, which decomposes Hangul syllables into jamo.
    assert tokenizer.tokenize("Seoul") != tokenizer.tokenize("seoul")
    pieces = "".join(tokenizer.tokenize(SENTENCE))
    assert not [character for character in pieces if ord(character) in HANGUL_JAMO]


def test_decode_of_encode_returns_the_sentence(tokenizer):
    assert tokenizer.decode(tokenizer(SENTENCE)["input_ids"], skip_special_tokens=True) == SENTENCE


def test_encoding_adds_cls_and_sep(tokenizer):
    ids = tokenizer(SENTENCE)["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id


def test_decomposed_hangul_gets_the_same_ids_as_composed(tokenizer):
    decomposed = unicodedata.normalize("NFD", SENTENCE)
    assert decomposed != SENTENCE
    assert tokenizer(decomposed)["input_ids"] == tokenizer(SENTENCE)["input_ids"]


def test_load_tokenizer_returns_a_checked_tokenizer(tokenizer_dir):
    tokenizer = load_tokenizer(tokenizer_dir)
    assert tokenizer.mask_token == "[MASK]"
    assert tokenizer.model_input_names == ["input_ids", "token_type_ids", "attention_mask"]


def test_load_tokenizer_rejects_a_tokenizer_without_the_mask_token(tmp_path):
    vocab = {token: index for index, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "서울"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    foreign = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    foreign.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"mask_token \(\[MASK\]\)"):
        load_tokenizer(tmp_path)


def test_load_tokenizer_rejects_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer directory not found"):
        load_tokenizer(tmp_path / "absent")


def test_load_tokenizer_rejects_a_directory_without_tokenizer_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no tokenizer"):
        load_tokenizer(tmp_path)


def test_training_on_blank_lines_fails_naming_the_file_and_writes_nothing(tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n  \n", encoding="utf-8")
    output = tmp_path / "tokenizer"
    with pytest.raises(CorpusError, match="blank.txt: no sentences"):
        train_tokenizer(blank, output, vocab_size=100)
    assert not output.exists()


def test_training_on_invalid_utf8_fails_and_writes_nothing(tmp_path):
    broken = tmp_path / "broken.txt"
    first_line = "첫 문장이다.\n".encode()
    broken.write_bytes(first_line + b"\xff\xfe \xec\x84\n")
    output = tmp_path / "tokenizer"
    with pytest.raises(CorpusError, match=rf"broken.txt:2: invalid UTF-8 at byte offset {len(first_line)}\b"):
        train_tokenizer([KOREAN_CORPUS, broken], output, vocab_size=100)
    assert not output.exists()


def test_vocab_size_must_leave_room_beside_special_tokens(tmp_path):
    with pytest.raises(ValueError, match="vocab_size=5"):
        train_tokenizer(KOREAN_CORPUS, tmp_path, vocab_size=5)


def test_cli_trains_a_tokenizer(tmp_path, capsys):
    output = tmp_path / "tokenizer"
    options = ["--vocab-size", "300", "--limit-alphabet", "100", "--min-frequency", "1", "--model-max-length", "1024"]
    assert cli_main(["train-tokenizer", "--corpus", str(KOREAN_CORPUS), *options, "--output", str(output)]) == 0
    tokenizer = load_tokenizer(output)
    assert (len(tokenizer), tokenizer.model_max_length) == (300, 1024)
    assert str(output) in capsys.readouterr().out


def test_cli_reports_a_missing_corpus(tmp_path, capsys):
    missing = tmp_path / "missing.txt"
    assert cli_main(["train-tokenizer", "--corpus", str(missing), "--output", str(tmp_path / "out")]) == 1
    assert f"corpus path not found: {missing}" in capsys.readouterr().err
