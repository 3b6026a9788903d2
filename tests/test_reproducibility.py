"""The same command, data and options give the same tokenizer files and the same training blocks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pretraining_fixtures import TINY_MLM, logged_losses, small_tokenizer

from reformer_ko.commands.pretrain import mlm
from reformer_ko.data import load_corpus, pack_causal_blocks, pack_mlm_blocks
from reformer_ko.tokenization import train_tokenizer

KOREAN_CORPUS = Path(__file__).parent / "fixtures" / "korean_corpus.txt"
TOKENIZER_FILES = ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]


def train_tokenizer_in_a_process(output: Path, hash_seed: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "reformer_ko.cli", "train-tokenizer", "--corpus", str(KOREAN_CORPUS)]
    command += ["--output", str(output), "--vocab-size", "500", "--min-frequency", "1"]
    # Different string-hash seeds, so that an order taken from a Python set or dict of strings would show too.
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_training_a_tokenizer_in_two_processes_gives_byte_identical_files(tmp_path):
    # With the `tokenizers` trainer, every process gave another vocabulary of this corpus.
    runs = {seed: train_tokenizer_in_a_process(tmp_path / seed, seed) for seed in ("1", "2")}
    for run in runs.values():
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output
    first, second = (sorted(path.name for path in (tmp_path / seed).iterdir()) for seed in runs)
    assert first == second == TOKENIZER_FILES
    for name in TOKENIZER_FILES:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two files of 20 documents each: several shards for `load_corpus(num_proc=2)`."""
    directory = tmp_path_factory.mktemp("corpus")
    documents = KOREAN_CORPUS.read_text(encoding="utf-8").split("\n\n")
    for number in range(2):
        text = "\n\n".join(documents[(index + number) % len(documents)] for index in range(20))
        (directory / f"{number}.txt").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(KOREAN_CORPUS, tmp_path_factory.mktemp("tokenizer"), vocab_size=300, limit_alphabet=200)


@pytest.mark.parametrize("pack", [pack_mlm_blocks, pack_causal_blocks])
def test_packing_gives_the_same_blocks_with_one_or_two_workers_and_streamed(tmp_path, corpus, tokenizer, pack):
    # Batches of 7 documents do not line up with the halves that two workers get.
    options = {"batch_size": 7}
    one_worker = pack(load_corpus(corpus, cache_dir=tmp_path / "one"), tokenizer, 32, **options)["input_ids"]
    two_workers = pack(
        load_corpus(corpus, num_proc=2, cache_dir=tmp_path / "two"), tokenizer, 32, num_proc=2, **options
    )["input_ids"]
    streamed = [row["input_ids"] for row in pack(load_corpus(corpus, streaming=True), tokenizer, 32, **options)]
    assert len(one_worker) > 40
    assert two_workers == one_worker
    assert streamed == one_worker


def test_the_same_pretraining_command_and_seed_give_the_same_losses(tmp_path, corpus):
    tokenizer = small_tokenizer(tmp_path / "tokenizer")

    def run(output_dir):
        mlm(
            [
                "--config_preset", "mlm-small", "--config_overrides", TINY_MLM + ",hidden_dropout_prob=0.1",
                "--tokenizer_name", str(tokenizer), "--train_file", str(corpus), "--output_dir", str(output_dir),
                "--cache_dir", str(tmp_path / "cache"), "--do_train", "--max_steps", "6", "--logging_steps", "1",
                "--per_device_train_batch_size", "4", "--seed", "7", "--use_cpu", "--report_to", "none",
                "--save_strategy", "no", "--disable_tqdm", "true",
            ]
        )  # fmt: skip
        return logged_losses(output_dir)

    first = run(tmp_path / "first")
    assert sorted(first) == [1, 2, 3, 4, 5, 6]
    assert run(tmp_path / "second") == first
