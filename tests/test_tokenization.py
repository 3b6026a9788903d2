import json
import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from reformer_ko import ReformerKoConfig
from reformer_ko.cli import main as cli_main
from reformer_ko.data import CorpusError
from reformer_ko.tokenization import (
    SPECIAL_TOKENS,
    check_tokenizer_matches,
    load_tokenizer,
    train_tokenizer,
    vocabulary_fingerprint,
)
from reformer_ko.wordpiece_trainer import train_wordpiece_vocabulary

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


def test_training_on_a_file_of_invisible_characters_fails_naming_the_file(tmp_path):
    invisible = tmp_path / "invisible.txt"
    invisible.write_text("\ufeff\u3000\n\u200b\n\u00a0\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="invisible.txt: no sentences"):
        train_tokenizer(invisible, tmp_path / "tokenizer", vocab_size=100)


def test_training_on_text_the_normaliser_removes_fails_naming_the_file(tmp_path):
    replaced = tmp_path / "replaced.txt"
    replaced.write_bytes(b"\xff\xfe\xfd\n\xee\x80\x80\n")  # invalid UTF-8, then a private-use character
    with pytest.raises(CorpusError, match=r"replaced.txt\) holds no word the tokenizer keeps"):
        train_tokenizer(replaced, tmp_path / "tokenizer", vocab_size=100, encoding_errors="replace")
    assert not (tmp_path / "tokenizer").exists()


# The trainer's rules


def test_ids_are_special_tokens_alphabet_continuations_then_merges_in_order():
    counts = {"가나": 3, "가다": 2, "나": 1}
    vocabulary = train_wordpiece_vocabulary(counts, vocab_size=9, special_tokens=["[PAD]", "[UNK]"])
    assert vocabulary == ["[PAD]", "[UNK]", "가", "나", "다", "##나", "##다", "가나", "가다"]


def test_equally_frequent_pairs_merge_in_the_order_of_their_ids():
    # 가+##나, 나+##다 and 다+##가 all occur twice: the pair of smaller ids goes first, whatever the input order.
    counts = {"다가": 2, "나다": 2, "가나": 2}
    for ordered in (counts, dict(reversed(counts.items()))):
        vocabulary = train_wordpiece_vocabulary(ordered, vocab_size=9, special_tokens=[])
        assert vocabulary[-3:] == ["가나", "나다", "다가"]


def test_the_alphabet_keeps_the_most_frequent_characters_ties_to_the_smaller_code_point():
    counts = {"가": 5, "라": 2, "나": 2, "다": 1}
    vocabulary = train_wordpiece_vocabulary(counts, vocab_size=10, special_tokens=[], limit_alphabet=2)
    assert vocabulary == ["가", "나"]


def test_characters_outside_the_alphabet_are_left_out_of_words():
    counts = {"가x나": 4, "가나": 2, "y": 1}
    vocabulary = train_wordpiece_vocabulary(counts, vocab_size=10, special_tokens=[], limit_alphabet=3)
    assert vocabulary == ["x", "가", "나", "##x", "##나", "가x", "가x나", "가나"]
    vocabulary = train_wordpiece_vocabulary(counts, vocab_size=10, special_tokens=[], limit_alphabet=2)
    assert vocabulary == ["가", "나", "##나", "가나"]


def test_merging_stops_below_min_frequency():
    counts = {"가나": 3, "다라": 2}
    vocabulary = train_wordpiece_vocabulary(counts, vocab_size=20, special_tokens=[], min_frequency=3)
    assert vocabulary[-1] == "가나" and "다라" not in vocabulary


def test_a_piece_made_by_a_second_pair_takes_no_new_id():
    # 가나다 is made from 가나+##다 in one word and from 가+##나다 in the other; it is one token.
    counts = {"가나다": 5, "나다": 4, "가나": 3, "x가나다": 2}
    vocabulary = train_wordpiece_vocabulary(counts, vocab_size=30, special_tokens=[])
    assert vocabulary.count("가나다") == 1 and len(vocabulary) == len(set(vocabulary))


def test_the_vocabulary_matches_the_tokenizers_trainer_where_no_counts_tie():
    counts = {"abcd": 29, "abce": 17, "bcd": 11, "cab": 5, "dab": 3}
    expected = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    expected.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordPieceTrainer(vocab_size=19, special_tokens=["[UNK]"], show_progress=False)
    expected.train_from_iterator([" ".join([word] * count) for word, count in counts.items()], trainer=trainer)
    vocabulary = train_wordpiece_vocabulary(counts, vocab_size=19, special_tokens=["[UNK]"])
    assert set(vocabulary) == set(expected.get_vocab())


# Which vocabulary a model was trained with


@pytest.fixture(scope="module")
def other_tokenizer(tmp_path_factory, tokenizer):
    """As large as `tokenizer`, trained on another text: most ids mean other tokens."""
    corpus = tmp_path_factory.mktemp("other") / "corpus.txt"
    text = KOREAN_CORPUS.read_text(encoding="utf-8")
    corpus.write_text(text.replace("다.", "요.") + "\n\n" + text, encoding="utf-8")
    return train_tokenizer(corpus, corpus.parent / "tokenizer", vocab_size=len(tokenizer))


def test_a_saved_and_reloaded_tokenizer_keeps_its_fingerprint(tokenizer, tokenizer_dir):
    assert vocabulary_fingerprint(tokenizer) == vocabulary_fingerprint(load_tokenizer(tokenizer_dir))
    assert vocabulary_fingerprint(tokenizer).startswith("sha256:")


def test_tokenizers_of_the_same_size_have_different_fingerprints(tokenizer, other_tokenizer):
    assert len(tokenizer) == len(other_tokenizer)
    assert vocabulary_fingerprint(tokenizer) != vocabulary_fingerprint(other_tokenizer)


def test_the_fingerprint_covers_the_special_tokens(tokenizer):
    renamed = AutoTokenizer.from_pretrained(tokenizer.name_or_path, mask_token="[UNK]")
    assert renamed.get_vocab() == tokenizer.get_vocab()
    assert vocabulary_fingerprint(renamed) != vocabulary_fingerprint(tokenizer)


def test_a_model_accepts_the_tokenizer_it_was_trained_with(tokenizer, tmp_path):
    config = ReformerKoConfig(vocab_size=len(tokenizer) + 8, vocab_fingerprint=vocabulary_fingerprint(tokenizer))
    config.save_pretrained(tmp_path)
    check_tokenizer_matches(ReformerKoConfig.from_pretrained(tmp_path), tokenizer)


def test_a_model_refuses_a_tokenizer_of_its_size_with_other_ids(tokenizer, other_tokenizer):
    config = ReformerKoConfig(vocab_size=len(tokenizer), vocab_fingerprint=vocabulary_fingerprint(tokenizer))
    with pytest.raises(ValueError, match=r"is not the one .* was trained with \(vocab_fingerprint sha256:") as error:
        check_tokenizer_matches(config, other_tokenizer)
    message = str(error.value)
    assert "\n" not in message and other_tokenizer.name_or_path in message
    assert vocabulary_fingerprint(other_tokenizer)[:19] in message and vocabulary_fingerprint(tokenizer)[:19] in message


@pytest.mark.parametrize("difference", [-1, 1], ids=["smaller-tokenizer", "larger-tokenizer"])
def test_without_a_fingerprint_the_tokenizer_must_have_vocab_size_tokens(tokenizer, difference):
    config = ReformerKoConfig(vocab_size=len(tokenizer) - difference)
    assert config.vocab_fingerprint is None
    expected = rf"has {len(tokenizer)} tokens but .* vocab_size={len(tokenizer) - difference}"
    with pytest.raises(ValueError, match=expected):
        check_tokenizer_matches(config, tokenizer)
    check_tokenizer_matches(ReformerKoConfig(vocab_size=len(tokenizer)), tokenizer)


# The command line


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


def train_with_the_cli(corpus, output, *options):
    """`reformer-ko train-tokenizer` of a 300-token tokenizer (`options` may change that)."""
    small = ["--vocab-size", "300", "--limit-alphabet", "100", "--min-frequency", "1"]
    return cli_main(["train-tokenizer", "--corpus", str(corpus), "--output", str(output), *small, *options])


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if training starts."""

    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("reformer_ko.tokenization.count_words", fail)


def test_cli_refuses_an_output_that_is_a_file_before_training(tmp_path, capsys, no_training):
    output = tmp_path / "tokenizer"
    output.write_text("not a directory", encoding="utf-8")
    assert train_with_the_cli(KOREAN_CORPUS, output) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{output} is a file" in error


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--min-frequency", "-1", "must be at least 0, got -1"),
        ("--vocab-size", "5", "must be at least 6, got 5"),
        ("--limit-alphabet", "0", "must be at least 1, got 0"),
        ("--model-max-length", "0", "must be at least 1, got 0"),
        ("--vocab-size", "lots", "expected an integer, got 'lots'"),
    ],
)
def test_cli_rejects_out_of_range_numbers_as_argument_errors(tmp_path, capsys, no_training, option, value, message):
    with pytest.raises(SystemExit) as exit_:
        train_with_the_cli(KOREAN_CORPUS, tmp_path / "tokenizer", option, value)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"argument {option}: {message}")


def test_cli_over_a_tokenizer_directory_leaves_only_the_new_tokenizer(tmp_path):
    output = tmp_path / "tokenizer"
    assert train_with_the_cli(KOREAN_CORPUS, output, "--vocab-size", "350") == 0
    (output / "added_tokens.json").write_text("{}", encoding="utf-8")
    (output / "merges.txt").write_text("stale\n", encoding="utf-8")
    assert train_with_the_cli(KOREAN_CORPUS, output) == 0
    assert sorted(path.name for path in output.iterdir()) == [
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"
    ]
    assert len(load_tokenizer(output)) == 300
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_cli_refuses_a_directory_with_other_files_unless_told_to_overwrite(tmp_path, capsys):
    output = tmp_path / "model"
    train_tokenizer(KOREAN_CORPUS, output, vocab_size=350, limit_alphabet=100, min_frequency=1)
    (output / "config.json").write_text("{}", encoding="utf-8")
    (output / "added_tokens.json").write_text("{}", encoding="utf-8")
    assert train_with_the_cli(KOREAN_CORPUS, output) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "(config.json)" in error and "--overwrite" in error
    assert len(load_tokenizer(output)) == 350

    assert train_with_the_cli(KOREAN_CORPUS, output, "--overwrite") == 0
    assert sorted(path.name for path in output.iterdir()) == [
        "config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"
    ]
    assert len(load_tokenizer(output)) == 300


@pytest.mark.parametrize("content", ["", "\ufeff", "\u3000\n\u200b\n"], ids=["empty", "only-a-bom", "invisible"])
def test_cli_reports_a_corpus_without_sentences_in_one_line(tmp_path, capsys, content):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(content, encoding="utf-8")
    assert train_with_the_cli(corpus, tmp_path / "tokenizer") == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "corpus.txt: no sentences" in error
    assert not (tmp_path / "tokenizer").exists()


def test_a_loaded_tokenizer_saves_without_how_it_was_loaded(tokenizer_dir, tmp_path):
    # The Trainer's checkpoint pushes save the tokenizer with transformers' own save_pretrained.
    load_tokenizer(tokenizer_dir).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert not {"local_files_only", "is_local"} & saved.keys()
