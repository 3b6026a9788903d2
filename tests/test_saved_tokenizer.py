"""The tokenizer a training command saves beside a model: the model's length limit, the files of
`reformer-ko train-tokenizer`, and loading without the model's code."""

import json
import subprocess
import sys

import pytest
from pretraining_fixtures import CORPUS, TINY_MLM, script_environment
from transformers import AutoTokenizer

from reformer_ko.commands import pretrain
from reformer_ko.tokenization import TOKENIZER_FILES, train_tokenizer

POSITIONS = 128  # TINY_MLM's max_position_embeddings


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A masked LM trained 2 steps (a checkpoint after each) with a tokenizer saved for 5,120 tokens, and the same
    tokenizer trained for the model's 128."""
    root = tmp_path_factory.mktemp("saved_tokenizer")
    for name, limit in (("tokenizer", 5120), ("tokenizer_128", POSITIONS)):
        train_tokenizer(CORPUS, root / name, vocab_size=800, limit_alphabet=300, model_max_length=limit)
    pretrain.mlm(
        [
            "--config_preset", "mlm-small", "--config_overrides", TINY_MLM, "--tokenizer_name", str(root / "tokenizer"),
            "--train_file", str(CORPUS), "--validation_split_percentage", "0", "--max_train_samples", "4",
            "--max_seq_length", "64", "--do_train", "--max_steps", "2", "--per_device_train_batch_size", "4",
            "--save_steps", "1", "--output_dir", str(root / "mlm"), "--use_cpu", "--report_to", "none",
        ],
        log_file=root / "log.txt",
    )  # fmt: skip
    return root


@pytest.mark.parametrize("saved", ["mlm", "mlm/checkpoint-1"])
def test_the_saved_tokenizer_promises_no_more_positions_than_the_model_has(trained, saved):
    config = json.loads((trained / saved / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == POSITIONS
    assert AutoTokenizer.from_pretrained(trained / saved, trust_remote_code=False).model_max_length == POSITIONS


def test_the_saved_tokenizer_is_the_files_train_tokenizer_writes_for_that_limit(trained):
    written = {path.name for path in (trained / "tokenizer_128").iterdir()}
    assert written <= TOKENIZER_FILES and "vocab.txt" in written
    for name in written:
        assert (trained / "mlm" / name).read_bytes() == (trained / "tokenizer_128" / name).read_bytes(), name


LOAD_TOKENIZER = """
import sys
sys.modules["reformer_ko"] = None  # reformer-ko is not installed here
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], {options})
assert not [name for name in sys.modules if name.startswith("transformers_modules")], "remote code was run"
print(type(tokenizer).__name__, tokenizer.model_max_length, tokenizer.tokenize("김치는 한국의 음식이다"))
"""


def load_tokenizer_alone(directory, tmp_path, options=""):
    """AutoTokenizer on `directory` in a process without reformer-ko, no terminal to answer a prompt."""
    return subprocess.run(
        [sys.executable, "-c", LOAD_TOKENIZER.format(options=options), str(directory)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, env=script_environment(tmp_path), timeout=120,
    )  # fmt: skip


def test_auto_tokenizer_loads_a_checkpoints_tokenizer_without_its_model_code(trained, tmp_path):
    result = load_tokenizer_alone(trained / "mlm", tmp_path, options="trust_remote_code=False")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"TokenizersBackend {POSITIONS} ")
    assert "custom code" not in result.stdout + result.stderr


@pytest.mark.xfail(
    strict=True,
    reason="transformers' AutoTokenizer loads config.json through AutoConfig (trust_remote_code unset) before it "
    "reads tokenizer_config.json, and a config whose auto_map names the model's code asks whether to run it; no "
    "saved file avoids that while the model loads with trust_remote_code=True (docs/transformers-scripts.md)",
)
def test_auto_tokenizer_asks_nothing_without_trust_remote_code(trained, tmp_path):
    result = load_tokenizer_alone(trained / "mlm", tmp_path)
    assert "Do you wish to run the custom code" not in result.stdout + result.stderr
