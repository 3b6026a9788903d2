"""Every command in the docs is run here, at a tiny size, so that the docs cannot rot.

The commands are the ```bash blocks (one command per line; `\\` continuations joined) and the ```python blocks of
README.md, docs/*.md and examples/README.md. They run in document order in one sandbox directory, as a reader
following the pages would run them: later commands use what earlier ones wrote (`outputs/demo/mlm`,
`runs/mlm-small`, `korquad_dev_last40.json`, ...). The sandbox has the layout the docs assume: this clone's
`examples/`, `reformer_ko/` and `benchmarks/`, tiny stand-ins for the real data under `../shared/data/` (the demo
corpus; 140 one-question articles made from the demo QA sets) and for the corpus directories the docs name
(`kowiki/`, `corpus/`, ...). Run the file as a whole: a command picked alone with `-k` misses what the commands
before it wrote.

`ENTRIES` says how each command runs. Every command must match exactly one entry and every entry a command
(`test_every_docs_command_has_one_entry`, `test_every_entry_matches_a_docs_command`), so a command added to the
docs fails here until it has an entry. The test ids end in what happens: `docs/korquad.md:54-run`.

- `run`, executed in this process: the `reformer-ko` CLI, `python examples/run_*.py` (through the script's
  `main`), `python -c`, python blocks, and `make demo` (`make -n` says what it would run;
  that runs). The entry's `options` replace the values of options in the command, or add them, to shrink it: a
  tiny model (`--config_overrides`), 2 steps, a few samples, and `--use_cpu` where the command asks for `--bf16`
  (the Trainer refuses bf16 on a CPU without it). Python blocks that use names from the prose get them from the
  entry's `prelude`.
- `isolated`, executed in a subprocess: the `trust_remote_code=True` block of docs/hub.md, in a Python where
  `reformer_ko` cannot be imported.
- `validate`, not executed; the launcher's parser reads the launcher arguments, and the script runs up to its
  argument parsing, so that its own parser (for the example scripts, `HfArgumentParser` building the argument
  dataclasses, `TrainingArguments`' checks included) reads the exact argument list, then stops. For commands
  that need GPUs (8 or 16 processes, the GPU benchmarks), DeepSpeed or Hub access (`--push_to_hub`), and for the
  benchmarks, which measure for minutes (tests/test_benchmarks.py runs their harness at a tiny size). The two
  CPU DDP launches are validated too, and their launcher arguments checked to be those of
  tests/test_distributed.py, which runs them with 2 processes.
- `check`: commands that install or log in (network) and `make test` (this suite): a check that what they rely
  on holds (the Makefile keeps an installed torch, the pins are setup.cfg's, the `hf` CLI has the command).
- `compile`: python blocks that upload to the Hub are compiled, and their imports run.
"""

import argparse
import ast
import contextlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pretraining_fixtures import CORPUS, ROOT, load_script, script_environment
from wiki_fixtures import corpus_as_wiki_dump

RUN, ISOLATED, VALIDATE, CHECK, COMPILE = "run", "isolated", "validate", "check", "compile"
DEMO_DATA = ROOT / "reformer_ko" / "demo_data"

# The order a reader follows, pages that write outputs before the pages that use them; other docs/*.md follow.
DOCUMENTS = [
    "README.md",
    "docs/quickstart.md",
    "docs/models.md",
    "docs/data.md",
    "docs/pretraining.md",
    "examples/README.md",
    "docs/korquad.md",
    "docs/hub.md",
]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
PYTHON_LANGUAGES = {"python", "py"}
OTHER_LANGUAGES = {"text", "json", "yaml", "toml", "markdown"}

# One tiny model for every pretraining command: 0.1M parameters, and 512 positions so that the docs' block and
# window lengths work unchanged.
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 512,
    "bucket_size": 16,
    "num_hashes": 1,
    "position_embedding_type": "absolute",
}
TINY_OVERRIDES = ",".join(f"{name}={value}" for name, value in TINY.items())
TINY_PRETRAINING = {
    "--config_overrides": [TINY_OVERRIDES],
    "--max_steps": ["2"],
    "--per_device_train_batch_size": ["2"],
    "--max_eval_samples": ["2"],
    "--validation_split_percentage": ["10"],  # of the 47 demo documents; 1% would hold out none
    "--preprocessing_num_workers": None,
    "--use_cpu": [],
}
TINY_KORQUAD = {
    "--max_train_samples": ["16"],
    "--max_eval_samples": ["8"],
    "--num_train_epochs": ["1"],
    "--per_device_train_batch_size": ["8"],
    "--use_cpu": [],
}
TINY_DEMO = {"--steps": ["2"], "--qa-steps": ["2"]}
TINY_PRELUDE = f"""
from transformers import Trainer, TrainingArguments
from reformer_ko import ReformerKoConfig, ReformerKoForMaskedLM
from reformer_ko.data import load_corpus, pack_mlm_blocks
from reformer_ko.tokenization import load_tokenizer
TINY = {TINY!r}
"""


@dataclass(frozen=True)
class Entry:
    """How the docs commands that contain `match` (in `docs`, or in any document when empty) run."""

    match: str
    how: str
    docs: tuple = ()
    unless: str | None = None  # the entry is not for commands that contain this
    options: dict = field(default_factory=dict)  # option -> its new values ([]: a flag; None: removed)
    prelude: str = ""  # python run before a python block
    check: object = None  # a function of the command's words
    why: str = ""  # why the command is not executed as written


# Checks of commands that are not executed ------------------------------------------------------------------------


def makefile_keeps_an_installed_torch(words):
    makefile = (ROOT / "Makefile").read_text()
    assert "VENV := .venv" in makefile
    assert '$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install' in makefile


def makefile_venv_is_dot_venv(words):
    assert words[-1] == ".venv/bin/activate"
    assert "VENV := .venv" in (ROOT / "Makefile").read_text()
    assert "python3 -m venv $(VENV)" in (ROOT / "Makefile").read_text()


def pins_are_setup_cfgs(words):
    requirements = (ROOT / "setup.cfg").read_text()
    for requirement in words[2:]:
        pinned = re.search(rf"^\s+{re.escape(requirement)}$", requirements, re.M)
        unpinned = re.fullmatch(r"[\w-]+", requirement) and re.search(rf"^\s+{requirement}\b", requirements, re.M)
        assert pinned or unpinned, f"{requirement} is not what setup.cfg requires"


def hf_cli_has_the_command(words):
    hf = shutil.which("hf", path=str(Path(sys.executable).parent)) or shutil.which("hf")
    assert hf, "the hf CLI (huggingface_hub) is not installed"
    result = subprocess.run([hf, *words[1:], "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def make_test_runs_pytest_and_ci_runs_it(words):
    assert make_dry_run(words[1:])[-1][-2:] == ["-m", "pytest"]
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"


def launched_like_test_distributed(words):
    import test_distributed

    launcher, _, _ = split_launcher(words)
    if launcher[:2] == ["accelerate", "launch"]:
        tested, given = test_distributed.accelerate_launch(0), launcher[2:]
    else:
        tested, given = test_distributed.torchrun(0), launcher[1:]
    assert tested[2 : 2 + len(given)] == given, f"{given} is not what tests/test_distributed.py launches: {tested}"


def deepspeed_config_is_the_zero_stage_it_names(words):
    path = words[words.index("--deepspeed") + 1]
    stage = int(re.fullmatch(r"examples/ds_config_zero(\d)\.json", path).group(1))
    assert json.loads((ROOT / path).read_text())["zero_optimization"]["stage"] == stage


def fsdp_config_is_the_tested_one(words):
    import test_fsdp

    assert ROOT / words[words.index("--fsdp_config") + 1] == test_fsdp.FSDP_CONFIG


# The table -------------------------------------------------------------------------------------------------------

GPUS = "needs 8 or 16 GPUs"
HUB = "--push_to_hub uploads to the Hub"
CPU_DDP = "tests/test_distributed.py runs 2 CPU processes with these launcher arguments"
QUICKSTART, README, MODELS, DATA = "docs/quickstart.md", "README.md", "docs/models.md", "docs/data.md"
PRETRAINING, EXAMPLES, KORQUAD, HUB_MD = "docs/pretraining.md", "examples/README.md", "docs/korquad.md", "docs/hub.md"
SCRIPTS = "docs/transformers-scripts.md"

# fmt: off
ENTRIES = [
    # README.md, docs/quickstart.md
    Entry("make demo", RUN, options={"DEMO_ARGS": TINY_DEMO}),
    Entry("make test", CHECK, check=make_test_runs_pytest_and_ci_runs_it, why="it is the suite this test is in"),
    Entry("python3 -m venv .venv", CHECK, (README,), check=makefile_keeps_an_installed_torch,
          why="replaces the venv the suite runs in"),
    Entry(".venv/bin/python -m pip install torch", CHECK, (README,), check=makefile_keeps_an_installed_torch,
          why="downloads torch"),
    Entry(". .venv/bin/activate", CHECK, check=makefile_venv_is_dot_venv, why="changes the shell the suite runs in"),
    Entry('fill_mask = pipeline("fill-mask", model=model, tokenizer=tokenizer)', RUN, (README,)),
    Entry("reformer-ko demo --all", RUN, (QUICKSTART,), options=TINY_DEMO),
    Entry("reformer-ko demo --corpus ../shared/data/kowiki", RUN, (QUICKSTART,), options=TINY_DEMO),
    Entry("split_by_article(dev, 100)", RUN, (QUICKSTART, KORQUAD)),
    Entry("reformer-ko train-tokenizer --corpus ../shared/data/kowiki", RUN, (KORQUAD,)),
    Entry("reformer-ko prepare-corpus --input kowiki-latest-pages-articles.xml.bz2 --output kowiki-corpus", RUN,
          (QUICKSTART, DATA), unless="--headings", options={"--overwrite": []},
          why="both pages write kowiki-corpus; the later run replaces it"),
    Entry("reformer-ko train-tokenizer --corpus kowiki-corpus", RUN, (QUICKSTART, DATA)),
    Entry("reformer-ko pretrain mlm --config_preset mlm-small --tokenizer_name runs/kowiki-tokenizer", RUN,
          (QUICKSTART,), options=TINY_PRETRAINING),
    Entry("reformer-ko korquad --model_name_or_path runs/kowiki-mlm", RUN, (QUICKSTART,),
          options=TINY_KORQUAD),
    Entry("reformer-ko evaluate-korquad", RUN, (QUICKSTART, KORQUAD)),
    Entry('pipeline("question-answering", model="runs/kowiki-korquad")', RUN, (QUICKSTART,)),
    # docs/models.md
    Entry('ReformerKoConfig.from_preset("mlm-small", vocab_size=22000)', RUN, (MODELS,)),
    Entry("output = model(prompt.input_ids, use_cache=True)", RUN, (MODELS,)),
    Entry('from_pretrained(path, attn_implementation="flex_attention")', RUN, (MODELS,),
          prelude='from reformer_ko import ReformerKoConfig, ReformerKoForMaskedLM\npath = "my-model"'),
    # docs/data.md
    Entry('train_tokenizer(["corpus/"], "tokenizer")', RUN, (DATA,), prelude=TINY_PRELUDE + """
config = ReformerKoConfig.from_preset("mlm-small", **TINY)
model = ReformerKoForMaskedLM(config)
training_args = TrainingArguments(output_dir="runs/data-md", report_to="none", use_cpu=True)
"""),
    Entry("reformer-ko train-tokenizer --corpus kowiki/ namuwiki/*.txt", RUN, (DATA,)),
    Entry("--headings drop --lists drop", RUN, (DATA,), options={"--overwrite": []},
          why="the options' defaults, into the kowiki-corpus the command above wrote"),
    Entry("reformer-ko pretrain mlm --config_preset mlm-small --tokenizer_name kowiki-tokenizer", RUN, (DATA,),
          options=TINY_PRETRAINING),
    # docs/pretraining.md
    Entry("reformer-ko train-tokenizer --corpus kowiki/ --output tokenizer", RUN, (PRETRAINING,)),
    Entry("reformer-ko pretrain mlm --config_preset mlm-small --tokenizer_name tokenizer", RUN, (PRETRAINING,),
          options=TINY_PRETRAINING),
    Entry("reformer-ko pretrain clm --config_preset clm-gpt3-small", RUN, (PRETRAINING,),
          options={**TINY_PRETRAINING, "--block_size": ["128"]}),
    Entry("reformer-ko pretrain electra --config_preset electra-small-discriminator", RUN, (PRETRAINING,),
          options={**TINY_PRETRAINING, "--config_overrides": [TINY_OVERRIDES + ",embedding_size=16"]}),
    Entry('AutoModelForCausalLM.from_pretrained("runs/clm-gpt3-small"', RUN, (PRETRAINING,)),
    Entry("accelerate launch --num_processes 8 examples/run_clm.py", VALIDATE, (PRETRAINING,), unless="--deepspeed",
          options={"--use_cpu": []}, why=GPUS),
    Entry("torchrun --nproc_per_node 8 examples/run_clm.py", VALIDATE, (PRETRAINING,), unless="--fsdp",
          options={"--use_cpu": []}, why=GPUS),
    Entry("accelerate launch --num_machines 2", VALIDATE, (PRETRAINING,), options={"--use_cpu": []},
          why="needs two machines with GPUs"),
    Entry("torchrun --nproc_per_node 2 examples/run_mlm.py", VALIDATE, (PRETRAINING,),
          check=launched_like_test_distributed, why=CPU_DDP),
    Entry("accelerate launch --multi_gpu --num_processes 2", VALIDATE, (PRETRAINING,),
          check=launched_like_test_distributed, why=CPU_DDP),
    Entry("--fsdp --fsdp_config examples/fsdp_config.json", VALIDATE, (PRETRAINING,), options={"--use_cpu": []},
          check=fsdp_config_is_the_tested_one, why=GPUS + "; tests/test_fsdp.py runs it on 2 CPU processes"),
    Entry("examples/run_clm.py <the arguments above> --deepspeed examples/ds_config_zero", VALIDATE,
          (PRETRAINING,), options={"--use_cpu": [], "--deepspeed": None},
          check=deepspeed_config_is_the_zero_stage_it_names,
          why="needs GPUs and DeepSpeed; without DeepSpeed TrainingArguments refuses --deepspeed, so the script "
          "parses the other arguments and the config file is checked"),
    Entry("trainer = PretrainingTrainer(", RUN, (PRETRAINING,), prelude=TINY_PRELUDE + """
tokenizer = load_tokenizer("tokenizer")
model = ReformerKoForMaskedLM(ReformerKoConfig.from_preset("mlm-small", vocab_size=len(tokenizer), **TINY))
blocks = pack_mlm_blocks(load_corpus(["kowiki/"]), tokenizer, 128)
training_args = TrainingArguments(output_dir="runs/python-mlm", max_steps=2, report_to="none", use_cpu=True)
"""),
    # examples/README.md
    Entry("reformer-ko train-tokenizer --corpus reformer_ko/demo_data/corpus.txt", RUN, (EXAMPLES,)),
    Entry("python examples/run_mlm.py --config_preset mlm-small --config_overrides", RUN, (EXAMPLES,),
          options={"--max_steps": ["2"]}),
    # docs/korquad.md
    Entry("reformer-ko korquad --model_name_or_path runs/mlm-small", RUN, (KORQUAD,), options=TINY_KORQUAD),
    Entry("reformer-ko korquad --model_name_or_path demo-mlm", RUN, (KORQUAD,),
          options={"--max_steps": ["2"]}),
    Entry("reformer-ko korquad --model_name_or_path runs/korquad-mlm-small", RUN, (KORQUAD,)),
    Entry('pipeline("question-answering", model="runs/korquad-mlm-small"', RUN, (KORQUAD,)),
    Entry('AutoModelForQuestionAnswering.from_pretrained("runs/korquad-mlm-small").eval()', RUN, (KORQUAD,)),
    Entry("python -c", RUN, (KORQUAD,)),
    Entry("reformer-ko korquad --model_name_or_path untrained-mlm-small", RUN, (KORQUAD,),
          options={"--max_eval_samples": ["2"]}),
    # docs/hub.md
    Entry('model.save_pretrained("my-reformer-ko-mlm")', RUN, (HUB_MD,)),
    Entry('AutoModelForQuestionAnswering.from_pretrained("outputs/demo/electra")', RUN, (HUB_MD,)),
    Entry("pip install ", CHECK, (HUB_MD,), check=pins_are_setup_cfgs, why="downloads packages"),
    Entry('pipeline("fill-mask", model="outputs/demo/mlm", trust_remote_code=True)', ISOLATED, (HUB_MD,)),
    Entry('pipeline("question-answering", model="outputs/demo/korquad")', RUN, (HUB_MD,)),
    Entry("hf auth login", CHECK, (HUB_MD,), check=hf_cli_has_the_command, why="needs a Hub account"),
    Entry("python examples/run_mlm.py --config_preset mlm-small --tokenizer_name runs/kowiki-tokenizer", VALIDATE,
          (HUB_MD,), options={"--use_cpu": []}, why=HUB),
    Entry("python examples/run_korquad.py --model_name_or_path your-name/", VALIDATE, (HUB_MD,),
          options={"--use_cpu": []}, why=HUB),
    Entry("model.push_to_hub(", COMPILE, (HUB_MD,), why="uploads to the Hub"),
    Entry('ModelCard.load("outputs/demo/korquad/README.md")', RUN, (HUB_MD,)),
    # docs/data.md, docs/benchmarks.md
    Entry("python benchmarks/", VALIDATE, why="measures for minutes, or on a GPU"),
    # docs/transformers-scripts.md (transformers' scripts themselves are text blocks: they live in transformers' repo)
    Entry('AutoTokenizer.from_pretrained("outputs/demo/mlm", trust_remote_code=False)', RUN, (SCRIPTS,)),
    Entry("metric = evaluate.load(KORQUAD_METRIC)", RUN, (SCRIPTS,)),
]
# fmt: on


# Extracting the commands -----------------------------------------------------------------------------------------

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
ARGUMENTS_ABOVE = re.compile(r"<[^<>\n]*arguments[^<>\n]*>")  # `<the arguments above>`
OPTIONAL = re.compile(r"\[(--[^\[\]\n]*)\]")  # `[--causal]`
ARGUMENTS_ABOVE_WORD = "__ARGUMENTS_ABOVE__"


@dataclass
class DocCommand:
    doc: str
    line: int
    language: str  # "bash" or "python"
    text: str  # one shell command (continuations joined) or a whole python block

    @property
    def key(self):
        """What entries are matched against: for a shell command, its text with whitespace collapsed."""
        return " ".join(self.text.split()) if self.language == "bash" else self.text

    @property
    def id(self):
        matches = entries_for(self)
        return f"{self.doc}:{self.line}-{matches[0].how if len(matches) == 1 else 'no-entry'}"


def documents():
    names = [name for name in DOCUMENTS if (ROOT / name).is_file()]
    return names + sorted(
        str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md") if str(path.relative_to(ROOT)) not in names
    )


def fenced_blocks(doc):
    """(language, body, line of the body's first line) of each fenced block."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        yield match.group(1).strip(), match.group(2), text.count("\n", 0, match.start(2)) + 1


def shell_commands(block, first_line):
    """(line, text) of each command: `\\` continuations joined, a quoted string may span lines, comments dropped."""
    buffer, start = "", first_line
    for number, line in enumerate(block.splitlines(), first_line):
        start = start if buffer else number
        buffer += line + "\n"
        if buffer.rstrip().endswith("\\"):
            continue
        joined = buffer.replace("\\\n", " ")
        try:
            words = shlex.split(joined, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if words:
            yield start, joined.strip()
        buffer = ""
    assert not buffer.strip(), f"unfinished shell command: {buffer}"


def docs_commands():
    commands = []
    for doc in documents():
        for language, body, line in fenced_blocks(doc):
            if language in SHELL_LANGUAGES:
                commands += [DocCommand(doc, number, "bash", text) for number, text in shell_commands(body, line)]
            elif language in PYTHON_LANGUAGES:
                commands.append(DocCommand(doc, line, "python", body))
    return commands


def entries_for(command):
    return [
        entry
        for entry in ENTRIES
        if (not entry.docs or command.doc in entry.docs)
        and entry.match in command.key
        and not (entry.unless and entry.unless in command.key)
    ]


COMMANDS = docs_commands()


# The example scripts are the training commands: `<the arguments above>` of a launch of a script may come from a
# command above that runs the script or its command.
SCRIPT_COMMANDS = {
    "examples/run_mlm.py": ["reformer-ko", "pretrain", "mlm"],
    "examples/run_clm.py": ["reformer-ko", "pretrain", "clm"],
    "examples/run_electra.py": ["reformer-ko", "pretrain", "electra"],
    "examples/run_korquad.py": ["reformer-ko", "korquad"],
}


def arguments_after(words, script):
    """The arguments `words` give `script` (run directly or as its command), or None if they run neither."""
    if script in words:
        return words[words.index(script) + 1 :]
    prefix = SCRIPT_COMMANDS.get(script)
    if prefix and words[: len(prefix)] == prefix:
        return words[len(prefix) :]
    return None


def words_of(command):
    """The command's words: optional arguments (`[--causal]`) given, and `<the arguments above>` replaced by the
    arguments of the nearest command above it in the same document that runs the same script (or its command)."""
    text = OPTIONAL.sub(r"\1", ARGUMENTS_ABOVE.sub(ARGUMENTS_ABOVE_WORD, command.text))
    words = shlex.split(text, comments=True)
    if ARGUMENTS_ABOVE_WORD not in words:
        return words
    script = next(word for word in words if word.endswith(".py"))
    above = [
        arguments_after(shlex.split(earlier.text, comments=True), script)
        for earlier in COMMANDS
        if earlier.doc == command.doc and earlier.line < command.line and earlier.language == "bash"
        and not ARGUMENTS_ABOVE.search(earlier.text)
    ]  # fmt: skip
    above = [arguments for arguments in above if arguments is not None]
    assert above, f"{command.doc}:{command.line}: no command above it runs {script}"
    index = words.index(ARGUMENTS_ABOVE_WORD)
    return words[:index] + above[-1] + words[index + 1 :]


def with_options(words, options):
    """`words` with each option's values replaced (the option added where absent; removed for None)."""
    words = list(words)
    for name, values in options.items():
        if name in words:
            start = end = words.index(name)
            end += 1
            while end < len(words) and not words[end].startswith("--"):
                end += 1
            words[start:end] = [] if values is None else [name, *values]
        elif values is not None:
            words += [name, *values]
    return words


def split_environment(words):
    """The leading `NAME=value` words as a dict, and the rest of the command."""
    environment = {}
    while words and re.match(r"[A-Za-z_]\w*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        environment[name] = value
    return environment, words


def split_launcher(words):
    """(launcher, script, script arguments): `accelerate launch --num_processes 8 run.py --x 1` →
    (["accelerate", "launch", "--num_processes", "8"], "run.py", ["--x", "1"])."""
    index = next(index for index, word in enumerate(words) if word.endswith(".py"))
    return words[:index], words[index], words[index + 1 :]


# Running and validating ------------------------------------------------------------------------------------------


def run_shell_command(words):
    """`reformer-ko ...`, `python examples/<script>.py ...` or `python -c ...`, in this process."""
    from reformer_ko.cli import main as reformer_ko

    if words[0] == "reformer-ko":
        assert reformer_ko(words[1:]) == 0
    elif words[:2] == ["python", "-c"]:
        run_python(words[2])
    elif words[0] == "python" and re.fullmatch(r"examples/\w+\.py", words[1]):
        load_script(ROOT / words[1]).main(words[2:])
    else:
        raise AssertionError(f"no way to run {words}")


def run_python(code, prelude=""):
    namespace = {"__name__": "__main__"}
    exec(compile(prelude, "<prelude>", "exec"), namespace)
    exec(compile(code, "<docs>", "exec"), namespace)


def make_dry_run(arguments):
    """The commands `make ARGUMENTS` would run, as lists of words (nothing runs)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", ROOT, *arguments], capture_output=True, text=True, check=True
    )
    return [shlex.split(line) for line in result.stdout.splitlines() if line.strip()]


def run_make(words, entry):
    """`make demo`: the last command make would run is the demo's; it runs here."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    variables = [f"{name}={' '.join(with_options([], options))}" for name, options in entry.options.items()]
    command = make_dry_run([*words[1:], *variables])[-1]
    assert Path(command[0]).name == "reformer-ko", command
    run_shell_command(["reformer-ko", *command[1:]])


BLOCK_REFORMER_KO = 'import sys\nsys.modules["reformer_ko"] = None  # reformer-ko is not installed here\n'


def run_without_reformer_ko(code, sandbox):
    """Run python code in a Python process where `reformer_ko` cannot be imported."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_REFORMER_KO + code], cwd=sandbox, env=script_environment(sandbox.parent),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


def compile_python(code):
    """Compile the code and run its imports."""
    tree = ast.parse(code)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(imports, type_ignores=[]), "<docs imports>", "exec"), {})


class StopAfterParsing(Exception):
    """Raised as soon as a script has parsed its arguments."""


@contextlib.contextmanager
def stop_after_parsing(monkeypatch):
    """Argument parsers parse as usual, then stop the script."""
    from transformers import HfArgumentParser

    def then_stop(parse):
        def parse_then_stop(self, *args, **kwargs):
            raise StopAfterParsing(parse(self, *args, **kwargs))

        return parse_then_stop

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", then_stop(argparse.ArgumentParser.parse_args))
        patch.setattr(
            HfArgumentParser, "parse_args_into_dataclasses", then_stop(HfArgumentParser.parse_args_into_dataclasses)
        )
        yield


def validate_launcher(launcher):
    if launcher[:2] == ["accelerate", "launch"]:
        from accelerate.commands.launch import launch_command_parser

        launch_command_parser().parse_args([*launcher[2:], "script.py"])
    elif launcher[0] == "torchrun":
        from torch.distributed.run import get_args_parser

        get_args_parser().parse_args([*launcher[1:], "script.py"])
    elif launcher[0] != "deepspeed":  # DeepSpeed's launcher is not installed here
        assert launcher == ["python"], f"unknown launcher {launcher}"


def validate_script(path, arguments, monkeypatch):
    """Run the script at `path` with `arguments` as its command line, up to its argument parsing."""
    assert Path(path).is_file(), f"{path} does not exist"
    script = load_script(path)
    monkeypatch.setattr(sys, "argv", [str(path), *arguments])
    with stop_after_parsing(monkeypatch), pytest.raises(StopAfterParsing):
        script.main()


# The sandbox -----------------------------------------------------------------------------------------------------


def tiny_korquad_dev(path):
    """140 one-question articles made from the demo QA sets: the KorQuAD dev set's shape, split at article 100."""
    paragraphs = [
        paragraph
        for name in ("korquad_train.json", "korquad_eval.json")
        for article in json.loads((DEMO_DATA / name).read_text(encoding="utf-8"))["data"]
        for paragraph in article["paragraphs"]
    ]
    articles = []
    for index in range(140):
        paragraph = paragraphs[index % len(paragraphs)]
        question = dict(paragraph["qas"][index // len(paragraphs) % len(paragraph["qas"])], id=f"q{index}")
        paragraph = {"context": paragraph["context"], "qas": [question]}
        articles.append({"title": f"article {index}", "paragraphs": [paragraph]})
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": "KorQuAD_v1.0", "data": articles}, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """The directory the commands run in (`main/`, beside a tiny `shared/data/`), offline, with its own caches."""
    import datasets
    import huggingface_hub
    import transformers

    root = tmp_path_factory.mktemp("docs")
    main = root / "main"
    main.mkdir()
    for name in ("examples", "reformer_ko", "benchmarks"):
        (main / name).symlink_to(ROOT / name)
    for corpus in ("kowiki/kowiki.txt", "namuwiki/namuwiki.txt", "corpus/corpus.txt"):
        (main / corpus).parent.mkdir()
        shutil.copy(CORPUS, main / corpus)
    shared = root / "shared" / "data"
    (shared / "kowiki").mkdir(parents=True)
    shutil.copy(CORPUS, shared / "kowiki" / "kowiki_sample.sent.txt")
    tiny_korquad_dev(shared / "korquad_v1" / "KorQuAD_v1.0_dev.json")
    # The downloads the quickstart names: Korean Wikipedia's dump and KorQuAD's train and dev files.
    corpus_as_wiki_dump(CORPUS, main / "kowiki-latest-pages-articles.xml.bz2")
    for name in ("KorQuAD_v1.0_train.json", "KorQuAD_v1.0_dev.json"):
        shutil.copy(shared / "korquad_v1" / "KorQuAD_v1.0_dev.json", main / name)

    verbosity = transformers.logging.get_verbosity(), datasets.logging.get_verbosity()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in script_environment(root).items():
            patch.setenv(name, value)
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "datasets_cache"))
        yield main
    transformers.logging.set_verbosity(verbosity[0])
    datasets.logging.set_verbosity(verbosity[1])


# The tests -------------------------------------------------------------------------------------------------------


def test_every_docs_command_has_one_entry():
    problems = [
        f"{command.doc}:{command.line}: {len(entries_for(command))} entries match {command.key[:200]!r}"
        for command in COMMANDS
        if len(entries_for(command)) != 1
    ]
    assert not problems, "Add (or narrow) an entry in ENTRIES for each of these:\n" + "\n".join(problems)


def test_every_entry_matches_a_docs_command():
    unused = [entry.match for entry in ENTRIES if not any(entry in entries_for(command) for command in COMMANDS)]
    assert not unused, f"Entries of commands no longer in the docs: {unused}"


def test_every_fenced_block_says_its_language():
    unlabelled = [
        f"{doc}:{line}"
        for doc in documents()
        for language, _, line in fenced_blocks(doc)
        if language not in SHELL_LANGUAGES | PYTHON_LANGUAGES | OTHER_LANGUAGES
    ]
    assert not unlabelled, f"Give these fenced blocks a language (bash and python blocks are run here): {unlabelled}"


@pytest.mark.parametrize("command", COMMANDS, ids=[command.id for command in COMMANDS])
def test_docs_command(command, sandbox, monkeypatch):
    matches = entries_for(command)
    if len(matches) != 1:
        pytest.fail(f"{command.doc}:{command.line} needs exactly one entry in ENTRIES")
    (entry,) = matches
    monkeypatch.chdir(sandbox)
    if command.language == "python":
        {
            RUN: lambda: run_python(command.text, entry.prelude),
            ISOLATED: lambda: run_without_reformer_ko(command.text, sandbox),
            COMPILE: lambda: compile_python(command.text),
        }[entry.how]()
        return

    environment, words = split_environment(words_of(command))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if entry.how == CHECK:
        entry.check(words)
    elif entry.how == VALIDATE:
        launcher, script, arguments = split_launcher(words)
        validate_launcher(launcher)
        validate_script(script, with_options(arguments, entry.options), monkeypatch)
        if entry.check:
            entry.check(words)
    elif words[0] == "make":
        run_make(words, entry)
    else:
        run_shell_command(with_options(words, entry.options))
