import multiprocessing
import os
from pathlib import Path

import datasets
import pytest
from datasets.arrow_writer import ArrowWriter
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from reformer_ko.data import CorpusError, corpus_files, load_corpus, pack_causal_blocks, pack_mlm_blocks, read_documents
from reformer_ko.data import corpus as corpus_module
from reformer_ko.tokenization import train_tokenizer

KOREAN_CORPUS = Path(__file__).parent / "fixtures" / "korean_corpus.txt"
KOWIKI_SAMPLE = Path(__file__).parents[1] / ".." / "shared" / "data" / "kowiki" / "kowiki_sample.sent.txt"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(KOREAN_CORPUS, tmp_path_factory.mktemp("tokenizer"), vocab_size=500)


@pytest.fixture(scope="module")
def word_tokenizer():
    """One token per space-separated word `w0` … `w99`, so that sentence lengths are exact."""
    words = [f"w{index}" for index in range(100)]
    vocab = {token: index for index, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    special_tokens = {
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    }
    return PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=64, **special_tokens)


def sentence(word, length):
    return " ".join([word] * length)


def write_corpus(path, documents):
    path.write_text("\n\n".join("\n".join(document) for document in documents) + "\n", encoding="utf-8")
    return path


def assert_blocks_keep_documents_apart(blocks, documents, tokenizer, max_seq_length):
    """Every block is `[CLS] … [SEP]` within the limit, and the blocks' contents, in order, are the documents'
    tokens with every document ending exactly at the end of a block."""
    contents = []
    for ids, token_types, mask in zip(blocks["input_ids"], blocks["token_type_ids"], blocks["attention_mask"]):
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert 2 < len(ids) <= max_seq_length
        assert token_types == [0] * len(ids) and mask == [1] * len(ids)
        contents.append(ids[1:-1])
    remaining = iter(contents)
    sentences = documents["sentences"]
    sentence_ids = iter(
        tokenizer([s for document in sentences for s in document], add_special_tokens=False)["input_ids"]
    )
    for document in sentences:
        expected = [token for _, ids in zip(document, sentence_ids) for token in ids]
        packed = []
        while len(packed) < len(expected):
            packed.extend(next(remaining))
        assert packed == expected
    assert next(remaining, None) is None


# Reading the corpus format


def test_documents_are_separated_by_blank_lines(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("\ufeff\n첫 문서의 첫 문장.\r\n둘째 문장.  \n\n \n\n둘째 문서.\n\t\n셋째 문서.".encode())
    documents = load_corpus(path, cache_dir=tmp_path / "cache")
    assert documents["sentences"] == [["첫 문서의 첫 문장.", "둘째 문장."], ["둘째 문서."], ["셋째 문서."]]


def test_lines_of_invisible_characters_separate_documents_and_sentences_lose_them(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(
        "첫 문서.\u200b\n\u3000\n\ufeff둘째 문서.\n\u200b\ufeff \n셋째\u00a0문서.\u2028\n", encoding="utf-8"
    )
    expected = [["첫 문서."], ["둘째 문서."], ["셋째\u00a0문서."]]
    assert list(read_documents(path)) == expected
    assert load_corpus(path, cache_dir=tmp_path / "cache")["sentences"] == expected


def test_a_big_file_is_cut_into_shards_after_lines_of_invisible_characters(tmp_path):
    documents = [[sentence(f"w{index}", 3)] for index in range(40)]
    path = tmp_path / "big.txt"
    path.write_text("\n\u3000\n".join(document[0] for document in documents) + "\n", encoding="utf-8")
    shards = corpus_module._file_shards(path, 100)
    assert len(shards) > 2
    read = [list(corpus_module._read_shard(str(path), start, end, "strict")) for _, start, end, *_ in shards]
    assert [document for shard in read for document in shard] == documents


def test_fixture_corpus_has_six_documents(tmp_path):
    documents = load_corpus(KOREAN_CORPUS, cache_dir=tmp_path)
    assert isinstance(documents, datasets.Dataset)
    assert len(documents) == 6
    assert documents[1]["sentences"][0] == "서울은 대한민국의 수도이다."


def test_a_directory_means_its_txt_files_and_a_glob_its_matches(tmp_path):
    (tmp_path / "b").mkdir()
    write_corpus(tmp_path / "b" / "2.txt", [["둘째 파일."]])
    write_corpus(tmp_path / "1.txt", [["첫 파일."]])
    (tmp_path / "notes.md").write_text("문서가 아니다.\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("숨은 파일.\n", encoding="utf-8")
    assert corpus_files(tmp_path) == [tmp_path / "1.txt", tmp_path / "b" / "2.txt"]
    assert corpus_files(str(tmp_path / "**" / "*.txt")) == [tmp_path / "1.txt", tmp_path / "b" / "2.txt"]
    assert list(read_documents(tmp_path)) == [["첫 파일."], ["둘째 파일."]]


def test_a_big_file_is_read_in_shards_giving_the_same_documents(tmp_path, monkeypatch):
    documents = [[sentence(f"w{index}", 3), sentence("w99", 2)] for index in range(40)]
    path = write_corpus(tmp_path / "big.txt", documents)
    monkeypatch.setattr(corpus_module, "_SHARD_BYTES", 100)
    assert len(corpus_module._file_shards(path, 100)) > 2
    assert load_corpus(path, num_proc=2, cache_dir=tmp_path / "cache")["sentences"] == documents
    assert list(load_corpus(path, streaming=True))[-1]["sentences"] == documents[-1]


def test_streaming_gives_an_iterable_dataset_of_the_same_documents(tmp_path):
    streamed = load_corpus(KOREAN_CORPUS, streaming=True)
    assert isinstance(streamed, datasets.IterableDataset)
    assert [row["sentences"] for row in streamed] == load_corpus(KOREAN_CORPUS, cache_dir=tmp_path)["sentences"]


def test_changed_files_are_read_again_not_taken_from_the_cache(tmp_path):
    path = write_corpus(tmp_path / "corpus.txt", [["처음 문장."]])
    assert len(load_corpus(path, cache_dir=tmp_path / "cache")) == 1
    write_corpus(path, [["처음 문장."], ["새로 더한 문서."]])
    assert len(load_corpus(path, cache_dir=tmp_path / "cache")) == 2


def _interrupt_in_the_middle_of_writing(method, work):
    """Run `work` in a forked process that dies, as on SIGKILL, at its second Arrow write."""
    calls = []

    def dying_write(self, *args, **kwargs):
        calls.append(method)
        if len(calls) == 2:
            os._exit(3)
        return getattr(ArrowWriter, f"_original_{method}")(self, *args, **kwargs)

    def child():
        setattr(ArrowWriter, f"_original_{method}", getattr(ArrowWriter, method))
        setattr(ArrowWriter, method, dying_write)
        work()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join()
    assert process.exitcode == 3


def test_a_corpus_cache_left_by_a_killed_run_is_not_used(tmp_path):
    documents = [[sentence(f"w{index}", 2)] for index in range(30)]
    path = write_corpus(tmp_path / "corpus.txt", documents)
    cache = tmp_path / "cache"
    _interrupt_in_the_middle_of_writing("write", lambda: load_corpus(path, cache_dir=cache))
    assert [p for p in cache.rglob("*.incomplete")], "the killed run should have left a partial cache"
    assert load_corpus(path, cache_dir=cache)["sentences"] == documents


def test_a_blocks_cache_left_by_a_killed_run_is_not_used(tmp_path, word_tokenizer):
    path = write_corpus(tmp_path / "corpus.txt", [[sentence(f"w{index}", 5)] for index in range(30)])
    documents = load_corpus(path, cache_dir=tmp_path / "cache")
    _interrupt_in_the_middle_of_writing(
        "write_batch", lambda: pack_mlm_blocks(documents, word_tokenizer, 16, batch_size=4)
    )
    assert [p for p in (tmp_path / "cache").rglob("tmp*")], "the killed run should have left a partial cache file"
    blocks = pack_mlm_blocks(documents, word_tokenizer, 16, batch_size=4)
    assert_blocks_keep_documents_apart(blocks, documents, word_tokenizer, 16)


# Bad input


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"corpus path not found: {tmp_path / 'absent.txt'}"):
        load_corpus(tmp_path / "absent.txt", cache_dir=tmp_path)


def test_a_glob_without_matches_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no corpus file matches"):
        load_corpus(str(tmp_path / "*.txt"), cache_dir=tmp_path)


def test_a_directory_without_text_files_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no .txt files"):
        load_corpus(tmp_path, cache_dir=tmp_path)


WITHOUT_SENTENCES = {
    "empty": "",
    "blank-lines": "\n\n \n",
    "unicode-spaces": "\u3000\n\u00a0\u2003\n\u2028\n",
    "only-a-bom": "\ufeff",
    "zero-width-and-control": "\ufeff\n\u200b\u200d\n\x00\x1f\r\n",
}


@pytest.mark.parametrize("content", WITHOUT_SENTENCES.values(), ids=WITHOUT_SENTENCES.keys())
def test_a_file_without_sentences_is_named(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match="empty.txt: no sentences"):
        load_corpus([KOREAN_CORPUS, path], cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    with pytest.raises(CorpusError, match="empty.txt: no sentences"):
        next(read_documents(path))


@pytest.mark.parametrize("num_proc", [None, 2])
def test_invalid_utf8_is_reported_with_file_line_and_byte_offset(tmp_path, num_proc):
    good = write_corpus(tmp_path / "good.txt", [["좋은 문장."]])
    bad = tmp_path / "bad.txt"
    first_lines = "첫 문장.\n\n둘째 문서.\n".encode()
    bad.write_bytes(first_lines + b"\xea\xb0 broken\n")
    with pytest.raises(CorpusError, match=rf"bad.txt:4: invalid UTF-8 at byte offset {len(first_lines)}\b"):
        load_corpus([good, bad], num_proc=num_proc, cache_dir=tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").rglob("*.arrow")]


def test_invalid_utf8_is_reported_when_streaming(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\n")
    with pytest.raises(CorpusError, match="bad.txt:1: invalid UTF-8 at byte offset 0"):
        list(load_corpus(bad, streaming=True))


def test_invalid_utf8_can_be_replaced_on_request(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("깨진 ".encode() + b"\xea\xb0" + " 글자.\n".encode())
    documents = load_corpus(bad, cache_dir=tmp_path / "cache", encoding_errors="replace")
    assert documents["sentences"] == [["깨진 \ufffd 글자."]]


def test_an_unknown_encoding_errors_value_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="encoding_errors"):
        load_corpus(KOREAN_CORPUS, cache_dir=tmp_path, encoding_errors="ignore")


def test_max_seq_length_beyond_the_tokenizer_limit_is_rejected(tmp_path, word_tokenizer):
    documents = load_corpus(KOREAN_CORPUS, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="max_seq_length=128 is longer than the tokenizer's model_max_length=64"):
        pack_mlm_blocks(documents, word_tokenizer, 128)


def test_max_seq_length_beyond_the_model_limit_is_rejected(tmp_path, word_tokenizer):
    documents = load_corpus(KOREAN_CORPUS, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="longer than the model's limit of 32"):
        pack_mlm_blocks(documents, word_tokenizer, 64, model_max_length=32)
    with pytest.raises(ValueError, match="block_size=64 is longer than the model's limit of 32"):
        pack_causal_blocks(documents, word_tokenizer, 64, model_max_length=32)


def test_packing_needs_cls_and_sep_tokens(tmp_path):
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "w0": 1}, unk_token="[UNK]"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    documents = load_corpus(KOREAN_CORPUS, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no cls_token, sep_token"):
        pack_mlm_blocks(documents, tokenizer, 16)


# MLM blocks


def test_sentences_are_packed_whole_and_a_long_one_runs_on_into_the_next_block(tmp_path, word_tokenizer):
    document = [sentence("w1", 5), sentence("w2", 5), sentence("w3", 5), sentence("w4", 20), sentence("w5", 3)]
    documents = load_corpus(write_corpus(tmp_path / "corpus.txt", [document]), cache_dir=tmp_path / "cache")
    blocks = pack_mlm_blocks(documents, word_tokenizer, 12)
    contents = [word_tokenizer.decode(ids[1:-1]).split() for ids in blocks["input_ids"]]
    assert contents == [
        ["w1"] * 5 + ["w2"] * 5,
        ["w3"] * 5 + ["w4"] * 5,
        ["w4"] * 10,
        ["w4"] * 5 + ["w5"] * 3,
    ]


def test_short_documents_get_a_block_each(tmp_path, word_tokenizer):
    path = write_corpus(tmp_path / "corpus.txt", [[sentence("w1", 2)], [sentence("w2", 3)], [sentence("w3", 1)]])
    blocks = pack_mlm_blocks(load_corpus(path, cache_dir=tmp_path / "cache"), word_tokenizer, 64)
    assert [len(ids) for ids in blocks["input_ids"]] == [4, 5, 3]


@pytest.mark.parametrize("num_proc", [None, 2])
def test_mlm_blocks_of_korean_text_keep_documents_apart(tmp_path, tokenizer, num_proc):
    documents = load_corpus(KOREAN_CORPUS, cache_dir=tmp_path)
    blocks = pack_mlm_blocks(documents, tokenizer, 24, num_proc=num_proc)
    assert set(blocks.column_names) == {"input_ids", "token_type_ids", "attention_mask"}
    assert_blocks_keep_documents_apart(blocks, documents, tokenizer, 24)


def test_streamed_corpus_gives_the_same_mlm_blocks(tmp_path, tokenizer):
    blocks = pack_mlm_blocks(load_corpus(KOREAN_CORPUS, cache_dir=tmp_path), tokenizer, 24)
    streamed = pack_mlm_blocks(load_corpus(KOREAN_CORPUS, streaming=True), tokenizer, 24)
    assert isinstance(streamed, datasets.IterableDataset)
    assert list(streamed) == list(blocks)


# Causal-LM blocks


def test_causal_blocks_are_documents_joined_by_sep_cut_to_block_size(tmp_path, word_tokenizer):
    path = write_corpus(
        tmp_path / "corpus.txt", [[sentence("w1", 3)], [sentence("w2", 4), sentence("w3", 2)], [sentence("w4", 5)]]
    )
    blocks = pack_causal_blocks(load_corpus(path, cache_dir=tmp_path / "cache"), word_tokenizer, 4)
    stream = word_tokenizer.convert_ids_to_tokens([token for ids in blocks["input_ids"] for token in ids])
    expected = ["w1"] * 3 + ["[SEP]"] + ["w2"] * 4 + ["w3"] * 2 + ["[SEP]"] + ["w4"] * 5 + ["[SEP]"]
    assert [len(ids) for ids in blocks["input_ids"]] == [4, 4, 4, 4]
    assert stream == expected[:16]
    assert blocks["attention_mask"] == [[1] * 4] * 4


def test_streamed_corpus_gives_the_same_causal_blocks(tmp_path, tokenizer):
    blocks = pack_causal_blocks(load_corpus(KOREAN_CORPUS, cache_dir=tmp_path), tokenizer, 32)
    streamed = pack_causal_blocks(load_corpus(KOREAN_CORPUS, streaming=True), tokenizer, 32)
    assert len(blocks) > 3
    assert list(streamed) == list(blocks)


# Real text


@pytest.mark.skipif(not KOWIKI_SAMPLE.is_file(), reason=f"{KOWIKI_SAMPLE} is absent")
def test_mlm_blocks_of_the_kowiki_sample_keep_documents_apart(tmp_path):
    tokenizer = train_tokenizer(KOWIKI_SAMPLE, tmp_path / "tokenizer", vocab_size=8000)
    documents = load_corpus(KOWIKI_SAMPLE, cache_dir=tmp_path / "cache")
    assert len(documents) == 914
    blocks = pack_mlm_blocks(documents, tokenizer, 512)
    assert_blocks_keep_documents_apart(blocks, documents, tokenizer, 512)
