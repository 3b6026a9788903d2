"""Helpers for the tests of the scripts: a small tokenizer, tiny model configs, running or importing a script."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import reformer_ko
from reformer_ko.tokenization import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# 47 short documents of Korean text written for the project.
CORPUS = Path(reformer_ko.__file__).parent / "demo_data" / "corpus.txt"

# Width 64, 2 layers, 16-token buckets. Learned absolute positions let a model this small memorise a couple of
# blocks within a few dozen steps (with rotary positions alone its masked-LM loss stalls at the unigram level).
TINY_MLM = (
    "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,max_position_embeddings=128,bucket_size=16,"
    "num_hashes=2,hidden_dropout_prob=0,position_embedding_type=absolute"
)
TINY_ELECTRA = TINY_MLM + ",embedding_size=32"
TINY_CLM = (
    "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,max_position_embeddings=256,"
    "axial_position_shape=[16,16],bucket_size=16,num_hashes=2,hidden_dropout_prob=0"
)


def load_script(path):
    """Import the script at `path` as a module (its `main` and helpers), without running it."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_tokenizer(directory):
    """A WordPiece tokenizer of 800 tokens trained on the demo corpus."""
    train_tokenizer(CORPUS, directory, vocab_size=800, limit_alphabet=300)
    return Path(directory)


def script_environment(tmp_path):
    """Offline, one thread per process (tiny models only lose time to threads on a busy CPU), caches in tmp_path."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),
    }


def common_arguments(tokenizer_dir, output_dir, cache_dir):
    return [
        "--tokenizer_name", str(tokenizer_dir),
        "--train_file", str(CORPUS),
        "--output_dir", str(output_dir),
        "--cache_dir", str(cache_dir),
        "--use_cpu",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--seed", "0",
    ]  # fmt: skip


def kill_marked_processes(marker):
    """SIGKILL every process whose environment holds `marker` (a launcher's workers run in sessions of their own,
    and may outlive their parent)."""
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def run_python(arguments, tmp_path, *, launcher=(), check=True, timeout=None, environment=None):
    """Run `python [launcher] arguments` offline; with `check`, fail with the end of its output. On `timeout` every
    process it started is killed (they all carry a marker in their environment), so a hang fails the test instead
    of CI. `environment` sets variables over `script_environment`'s (None unsets)."""
    command = [sys.executable, *launcher, *map(str, arguments)]
    marker = f"REFORMER_KO_TEST_RUN={uuid.uuid4().hex}"
    env = {**script_environment(tmp_path), **(environment or {}), **dict([marker.split("=")])}
    process = subprocess.Popen(
        command,
        env={name: value for name, value in env.items() if value is not None},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        kill_marked_processes(marker)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{' '.join(command)} ran past {timeout} s:\n{stdout[-3000:]}\n{stderr[-5000:]}")
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check:
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def run_with_callback(callback_class):
    """The end of a driver (`python -c DRIVER script arguments`) that defines the TrainerCallback `callback_class`:
    every reformer-ko trainer gets one, then the script runs as `python script arguments` would."""
    return f"""
trainer_init = ReformerKoTrainer.__init__

def init_with_callback(self, *args, **kwargs):
    trainer_init(self, *args, **kwargs)
    self.add_callback({callback_class}())

ReformerKoTrainer.__init__ = init_with_callback
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def logged_losses(output_dir, name="loss"):
    """A logged training loss by step, from the trainer_state.json a run saves in its output directory."""
    history = json.loads((Path(output_dir) / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: entry[name] for entry in history if name in entry}


REMOTE_LOAD = """
import json, sys, torch
sys.modules["reformer_ko"] = None  # reformer-ko is not installed here
import transformers
auto_name, directory, tokens = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
model = getattr(transformers, auto_name).from_pretrained(directory, trust_remote_code=True).eval()
assert model.__class__.__module__.startswith("transformers_modules"), model.__class__.__module__
with torch.no_grad():
    print(json.dumps(model(torch.tensor(tokens))[0].tolist()))
"""


def remote_code_outputs(auto_class_name, directory, tokens, tmp_path):
    """The first output of the model in `directory` loaded with `trust_remote_code=True` in a Python process where
    reformer_ko cannot be imported."""
    result = run_python(["-c", REMOTE_LOAD, auto_class_name, directory, json.dumps(tokens)], tmp_path)
    return json.loads(result.stdout.strip().splitlines()[-1])
