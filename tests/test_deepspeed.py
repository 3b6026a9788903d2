"""DeepSpeed ZeRO through the Trainer: the config files in examples/, and, where `deepspeed` is installed, ZeRO-2 and
ZeRO-3 runs of `examples/run_clm.py --deepspeed ...` on two CPU processes over gloo, checked as tests/test_fsdp.py
checks FSDP.

`deepspeed` is not a reformer-ko dependency, nor in the `dev` extra: `make test` runs the first tests only, and
`TrainingArguments(deepspeed=...)` needs the package (without it: "The 'deepspeed>=0.9.3' distribution was not
found"). With it (0.19.8 here, `DS_BUILD_OPS=0 pip install deepspeed`), DeepSpeed runs on CPUs, but accelerate
1.15 starts it only with GPUs or other accelerators: on CPUs it counts one process while DeepSpeed counts two
("train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size 4 != 4 * 1 * 2"), and with
`--use_cpu` it leaves DeepSpeed out. The processes here run `DEEPSPEED_ON_CPU`, which gives accelerate's process
state the gloo backend and "multi-CPU" where it finds no accelerator under a launcher, as it would find GPUs; the
rest is accelerate's, DeepSpeed's and the Trainer's.
"""

import json
import shutil

import pytest
import torch
from accelerate.utils.deepspeed import HfDeepSpeedConfig
from pretraining_fixtures import ROOT, logged_losses, run_python, run_with_callback
from safetensors.torch import load_file
from test_distributed import free_port, torchrun
from test_fsdp import BLOCKS_PER_STEP, SAVE_EVERY, STEPS, clm_arguments
from transformers import AutoModelForCausalLM, TrainingArguments
from transformers.integrations.deepspeed import is_deepspeed_available

from reformer_ko import ReformerKoForCausalLM

CONFIGS = {2: ROOT / "examples" / "ds_config_zero2.json", 3: ROOT / "examples" / "ds_config_zero3.json"}
needs_deepspeed = pytest.mark.skipif(not is_deepspeed_available(), reason="deepspeed is not installed")

# Runs an example script with DeepSpeed on CPU processes (module docstring), and writes what each process holds
# after the first step to held-rank<N>.json in the output directory: its share of AdamW's state and, under ZeRO-3,
# of the parameters (DeepSpeed keeps a parameter's partition in `ds_tensor`, its full size in `ds_numel`).
DEEPSPEED_ON_CPU = """
import json, os, runpy, sys
import accelerate.state
from accelerate.utils import DistributedType
from transformers import TrainerCallback
from reformer_ko.training import ReformerKoTrainer

prepare_backend = accelerate.state.PartialState._prepare_backend

def prepare_backend_on_cpu(self, cpu=False, sagemaker_dp=False, backend=None):
    found = prepare_backend(self, cpu, sagemaker_dp, backend)
    if found[1] == DistributedType.NO and int(os.environ.get("LOCAL_RANK", -1)) != -1:
        return "gloo", DistributedType.MULTI_CPU
    return found

accelerate.state.PartialState._prepare_backend = prepare_backend_on_cpu

class HeldState(TrainerCallback):
    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        if state.global_step != 1:
            return
        parameters = list(model.parameters())
        zero = optimizer.optimizer  # accelerate's wrapper -> DeepSpeed's ZeRO optimizer
        record = {
            "total": sum(getattr(p, "ds_numel", p.numel()) for p in parameters),
            "parameters": sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in parameters),
            "adam_exp_avg": sum(s["exp_avg"].numel() for s in zero.optimizer.state.values() if "exp_avg" in s),
            "distributed_type": str(accelerate.state.AcceleratorState().distributed_type),
        }
        with open(os.path.join(args.output_dir, f"held-rank{args.process_index}.json"), "w") as file:
            json.dump(record, file)

""" + run_with_callback("HeldState")


@pytest.mark.parametrize("stage", sorted(CONFIGS))
def test_each_deepspeed_config_is_its_zero_stage_with_the_trainers_settings(stage):
    config = HfDeepSpeedConfig(str(CONFIGS[stage]))
    assert (config.is_zero2(), config.is_zero3()) == (stage == 2, stage == 3)
    # Batch sizes, precision and clipping come from the Trainer's flags; the optimizer and schedule are the Trainer's.
    raw = json.loads(CONFIGS[stage].read_text())
    assert raw["train_micro_batch_size_per_gpu"] == raw["gradient_clipping"] == raw["bf16"]["enabled"] == "auto"
    assert "optimizer" not in raw and "scheduler" not in raw


@pytest.mark.skipif(is_deepspeed_available(), reason="deepspeed is installed")
def test_training_arguments_need_deepspeed_installed_to_read_a_config(tmp_path):
    with pytest.raises(Exception, match="deepspeed"):
        TrainingArguments(tmp_path, deepspeed=str(CONFIGS[2]), use_cpu=True, report_to="none")


@needs_deepspeed
@pytest.mark.parametrize("stage", sorted(CONFIGS))
def test_training_arguments_fill_the_configs_auto_values(stage, tmp_path):
    args = TrainingArguments(
        tmp_path, deepspeed=str(CONFIGS[stage]), per_device_train_batch_size=4, gradient_accumulation_steps=2,
        max_grad_norm=0.5, report_to="none",
    )  # fmt: skip
    config = args.hf_deepspeed_config.config
    assert (config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"]) == (4, 2)
    assert config["gradient_clipping"] == 0.5 and config["zero_optimization"]["stage"] == stage


def run_deepspeed(tmp_path, output_dir, stage):
    driver = tmp_path / "deepspeed_on_cpu.py"
    driver.write_text(DEEPSPEED_ON_CPU)
    arguments = clm_arguments(tmp_path, output_dir, BLOCKS_PER_STEP // 2)
    arguments = [argument for argument in arguments if argument != "--use_cpu"] + ["--deepspeed", CONFIGS[stage]]
    return run_python([driver, *arguments], tmp_path, launcher=torchrun(free_port()), timeout=400)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("single")
    run_python(clm_arguments(tmp_path, tmp_path / "output", BLOCKS_PER_STEP), tmp_path, timeout=300)
    return tmp_path / "output"


@pytest.fixture(scope="module", params=sorted(CONFIGS), ids=lambda stage: f"zero{stage}")
def zero(request, tmp_path_factory):
    """(stage, output directory) of a run under that ZeRO stage, saving checkpoints 2 and 4."""
    if not is_deepspeed_available():
        pytest.skip("deepspeed is not installed")
    tmp_path = tmp_path_factory.mktemp(f"zero{request.param}")
    run_deepspeed(tmp_path, tmp_path / "output", request.param)
    return request.param, tmp_path / "output"


def held(output_dir):
    return [json.loads((output_dir / f"held-rank{rank}.json").read_text()) for rank in (0, 1)]


def test_deepspeed_partitions_the_optimizer_state_and_zero3_the_parameters(zero):
    stage, output_dir = zero
    for rank in held(output_dir):
        assert rank["distributed_type"] == "DistributedType.DEEPSPEED"
        assert 0.45 < rank["adam_exp_avg"] / rank["total"] < 0.55, rank
        share = rank["parameters"] / rank["total"]
        if stage == 2:
            assert share == 1.0, rank
        else:
            assert 0.45 < share < 0.55, rank


def test_the_losses_under_deepspeed_are_those_of_one_process(zero, single_process):
    losses, expected = logged_losses(zero[1]), logged_losses(single_process)
    assert list(losses) == list(range(1, STEPS + 1))
    assert [losses[step] for step in losses] == pytest.approx([expected[step] for step in losses], rel=1e-5)


def test_the_model_saved_under_deepspeed_loads_without_it_with_one_processs_weights(zero, single_process):
    model = AutoModelForCausalLM.from_pretrained(zero[1])
    assert type(model) is ReformerKoForCausalLM
    weights, expected = load_file(zero[1] / "model.safetensors"), load_file(single_process / "model.safetensors")
    assert weights.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(weights[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_checkpoint_saved_under_deepspeed_resumes_to_the_same_losses_and_weights(zero, tmp_path):
    stage, output_dir = zero
    resumed = tmp_path / "output"
    shutil.copytree(output_dir, resumed, ignore=shutil.ignore_patterns(f"checkpoint-{STEPS}"))
    assert (resumed / f"checkpoint-{SAVE_EVERY}" / f"global_step{SAVE_EVERY}").is_dir()  # DeepSpeed's own state
    run_deepspeed(tmp_path, resumed, stage)
    assert logged_losses(resumed) == logged_losses(output_dir)
    weights, expected = load_file(resumed / "model.safetensors"), load_file(output_dir / "model.safetensors")
    assert all(torch.equal(weights[name], expected[name]) for name in expected)
