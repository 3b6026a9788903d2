"""FSDP through the Trainer: `examples/run_clm.py --fsdp --fsdp_config examples/fsdp_config.json` on two CPU
processes over gloo shards the parameters, computes what one process computes, resumes from its checkpoints and
saves a model that loads without FSDP.

accelerate 1.15 turns FSDP on only for GPUs and other accelerators: on CPUs its state says "multi-CPU" and the
FSDP plugin is dropped (reformer-ko then refuses the run, rather than train unsharded). The processes here run
`FSDP_ON_CPU`, which makes accelerate's state say "FSDP" where it would say "multi-CPU", as it does on GPUs; the
rest (the plugin, `fully_shard` by the wrap policy, full-state-dict saving, resuming) is accelerate's and the
Trainer's unchanged. A causal LM, so that the batches hold the same tokens however they are split (masked-LM masks
are drawn per batch): one process with 8 blocks a step against two with 4 each.
"""

import json
import shutil

import pytest
import torch
from pretraining_fixtures import (
    EXAMPLES,
    ROOT,
    TINY_CLM,
    common_arguments,
    logged_losses,
    run_python,
    run_with_callback,
    small_tokenizer,
)
from safetensors.torch import load_file
from test_distributed import free_port, torchrun
from transformers import AutoModelForCausalLM

from reformer_ko import ReformerKoForCausalLM
from reformer_ko.training import is_complete
from reformer_ko.training.checkpoints import COMPLETION_RECORD
from reformer_ko.training.hub import model_code_files

FSDP_CONFIG = ROOT / "examples" / "fsdp_config.json"
STEPS, SAVE_EVERY, BLOCKS_PER_STEP = 4, 2, 8

# Runs an example script with FSDP on CPU processes (module docstring), and writes what each process holds after
# the first step (FSDP shards the model when training starts) to parameters-rank<N>.json in the output directory.
FSDP_ON_CPU = """
import json, os, runpy, sys
import accelerate.state
from accelerate.utils import DistributedType
from torch.distributed.fsdp import FSDPModule
from transformers import TrainerCallback
from reformer_ko.training import ReformerKoTrainer

state_init, fsdp_plugins = accelerate.state.AcceleratorState.__init__, []

def init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    # AcceleratorState() copies the process state (multi-CPU) each time it is made: say FSDP every time.
    state_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    fsdp_plugins.extend([fsdp_plugin] if fsdp_plugin is not None else [])
    if fsdp_plugins and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type, self.fsdp_plugin = DistributedType.FSDP, fsdp_plugins[0]

accelerate.state.AcceleratorState.__init__ = init_with_fsdp_on_cpu

class HeldParameters(TrainerCallback):
    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step != 1:
            return
        parameters = list(model.parameters())
        record = {
            "held": sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in parameters),
            "total": sum(p.numel() for p in parameters),
            "kinds": sorted({type(p).__name__ for p in parameters}),
            "units": sorted(type(m).__name__ for m in model.modules() if isinstance(m, FSDPModule)),
        }
        with open(os.path.join(args.output_dir, f"parameters-rank{args.process_index}.json"), "w") as file:
            json.dump(record, file)

""" + run_with_callback("HeldParameters")


def clm_arguments(tmp_path, output_dir, per_device_batch):
    return [
        EXAMPLES / "run_clm.py",
        *common_arguments(tokenizer_dir(tmp_path), output_dir, tmp_path / "cache"),
        "--config_preset", "clm-gpt3-small", "--config_overrides", TINY_CLM, "--block_size", "128",
        "--validation_split_percentage", "0", "--max_train_samples", str(2 * BLOCKS_PER_STEP),
        "--do_train", "--max_steps", str(STEPS), "--per_device_train_batch_size", str(per_device_batch),
        "--learning_rate", "3e-3", "--lr_scheduler_type", "constant", "--logging_steps", "1",
        "--save_steps", str(SAVE_EVERY),
    ]  # fmt: skip


def tokenizer_dir(tmp_path):
    directory = tmp_path.parent / "tokenizer"
    return directory if directory.is_dir() else small_tokenizer(directory)


def run_fsdp(tmp_path, output_dir):
    driver = tmp_path / "fsdp_on_cpu.py"
    driver.write_text(FSDP_ON_CPU)
    arguments = clm_arguments(tmp_path, output_dir, BLOCKS_PER_STEP // 2) + ["--fsdp", "--fsdp_config", FSDP_CONFIG]
    return run_python([driver, *arguments], tmp_path, launcher=torchrun(free_port()), timeout=300)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The run in one process, 8 blocks a step."""
    tmp_path = tmp_path_factory.mktemp("single")
    run_python(clm_arguments(tmp_path, tmp_path / "output", BLOCKS_PER_STEP), tmp_path, timeout=300)
    return tmp_path / "output"


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """The same run in two processes under FSDP, 4 blocks each a step, saving checkpoints 2 and 4."""
    tmp_path = tmp_path_factory.mktemp("fsdp")
    run_fsdp(tmp_path, tmp_path / "output")
    return tmp_path / "output"


@pytest.fixture(scope="module")
def resumed(sharded, tmp_path_factory):
    """The FSDP run again from its checkpoint 2 (the same command in a copy of its output directory holding only
    that checkpoint): it continues from there."""
    tmp_path = tmp_path_factory.mktemp("resumed")
    output_dir = tmp_path / "output"
    shutil.copytree(sharded, output_dir, ignore=shutil.ignore_patterns(f"checkpoint-{STEPS}"))
    run_fsdp(tmp_path, output_dir)
    return output_dir


def held_parameters(output_dir):
    return [json.loads((output_dir / f"parameters-rank{rank}.json").read_text()) for rank in (0, 1)]


def test_fsdp_wraps_each_attention_and_feed_forward_sublayer_and_the_model(sharded):
    # PreNorm is reformer-pytorch's wrapper of each sublayer: 2 per layer, 2 layers. (accelerate also wraps the
    # embeddings and the tied LM head on its own.)
    units = held_parameters(sharded)[0]["units"]
    assert units.count("FSDPPreNorm") == 4 and "FSDPReformerKoForCausalLM" in units


def test_each_process_holds_half_of_the_parameters(sharded):
    ranks = held_parameters(sharded)
    total = ranks[0]["total"]
    assert [rank["kinds"] for rank in ranks] == [["DTensor"], ["DTensor"]]
    assert sum(rank["held"] for rank in ranks) == total and total > 100_000
    for rank in ranks:
        assert 0.45 < rank["held"] / total < 0.55, rank


def test_the_losses_are_those_of_one_process(sharded, single_process):
    # Every step after the first trains on weights the reversible backward pass computed the gradients of under FSDP.
    losses, expected = logged_losses(sharded), logged_losses(single_process)
    assert list(losses) == list(range(1, STEPS + 1))
    assert [losses[step] for step in losses] == pytest.approx([expected[step] for step in losses], rel=1e-5)


def test_the_saved_weights_are_those_of_one_process(sharded, single_process):
    weights, expected = load_file(sharded / "model.safetensors"), load_file(single_process / "model.safetensors")
    assert weights.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(weights[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


def test_the_saved_model_loads_without_fsdp_and_carries_reformer_kos_code(sharded):
    model = AutoModelForCausalLM.from_pretrained(sharded)
    assert type(model) is ReformerKoForCausalLM
    config = json.loads((sharded / "config.json").read_text())
    assert config["architectures"] == ["ReformerKoForCausalLM"]
    modules = {reference.split(".")[0] for reference in config["auto_map"].values()}
    assert modules == {"modeling_reformer_ko", "configuration_reformer_ko"}
    assert "modeling_reformer_ko.py" in model_code_files(sharded)
    assert not list(sharded.glob("_fsdp*.py"))  # torch's FSDP modules are not the model's code


def test_checkpoints_saved_under_fsdp_are_recorded_complete_after_every_process_wrote_its_part(sharded):
    for step in range(SAVE_EVERY, STEPS + 1, SAVE_EVERY):
        checkpoint = sharded / f"checkpoint-{step}"
        assert is_complete(checkpoint)
        recorded = set(json.loads((checkpoint / COMPLETION_RECORD).read_text())["files"])
        parts = {"model.safetensors", "pytorch_model_fsdp.bin", "optimizer.bin", "rng_state_0.pth", "rng_state_1.pth"}
        assert parts <= recorded


def test_a_checkpoint_saved_under_fsdp_resumes_to_the_same_losses_and_weights(sharded, resumed):
    assert logged_losses(resumed) == logged_losses(sharded)
    weights, expected = load_file(resumed / "model.safetensors"), load_file(sharded / "model.safetensors")
    assert all(torch.equal(weights[name], expected[name]) for name in expected)


def test_fsdp_on_cpu_processes_without_accelerates_support_is_refused(tmp_path):
    # What a user gets on CPUs: accelerate drops the FSDP plugin, and reformer-ko stops rather than train unsharded.
    arguments = clm_arguments(tmp_path, tmp_path / "output", BLOCKS_PER_STEP // 2)
    arguments += ["--fsdp", "--fsdp_config", FSDP_CONFIG]
    result = run_python(arguments, tmp_path, launcher=torchrun(free_port()), check=False, timeout=300)
    assert result.returncode != 0
    assert "--fsdp: accelerate did not turn it on for this run" in result.stdout + result.stderr
