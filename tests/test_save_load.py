"""save_pretrained / from_pretrained, Auto classes, Hub remote code, and loading one head's checkpoint into another."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file
from tiny_models import tiny_config
from transformers import AutoModelForMaskedLM, AutoModelForQuestionAnswering, BertConfig, BertForMaskedLM
from transformers.utils import logging as hf_logging

from reformer_ko import ReformerKoForCausalLM, ReformerKoForMaskedLM, ReformerKoPreTrainedModel
from reformer_ko import modeling_reformer_ko as modeling
from reformer_ko.modeling_reformer_ko import HEADS

AUTO_CLASS_OF = {head: getattr(transformers, auto_class_name) for auto_class_name, head in HEADS.items()}
TOKENS = [[5, 17, 33, 8, 99, 42, 7], [6, 7, 8, 9, 10, 11, 12]]


def saved(model_class, directory, **overrides):
    torch.manual_seed(0)
    config = tiny_config(is_decoder=model_class is ReformerKoForCausalLM, **overrides)
    model = model_class(config).eval()
    model.save_pretrained(directory)
    return model


def first_output(model, tokens=TOKENS):
    with torch.no_grad():
        return model(torch.tensor(tokens))[0]


@pytest.mark.parametrize("model_class", list(AUTO_CLASS_OF), ids=lambda cls: cls.__name__)
def test_round_trip_gives_identical_outputs(model_class, tmp_path):
    model = saved(model_class, tmp_path)
    loaded, info = AUTO_CLASS_OF[model_class].from_pretrained(tmp_path, output_loading_info=True)
    assert type(loaded) is model_class
    assert all(not keys for keys in info.values() if isinstance(keys, (list, set))), info
    assert torch.equal(first_output(model), first_output(loaded.eval()))


@pytest.mark.parametrize("overrides", [{}, {"weight_tie": True}, {"position_embedding_type": "axial"}])
def test_each_tensor_is_stored_once(overrides, tmp_path):
    model = saved(ReformerKoForMaskedLM, tmp_path, **overrides)
    stored = load_file(tmp_path / "model.safetensors")
    assert not any("irrev_blocks" in name for name in stored)
    unique_tensors = {id(t) for t in model.parameters()} | {id(t) for t in model.buffers()}
    # every tensor once, except the output layer tied to the input embeddings (restored by the tie)
    assert len(stored) == len(unique_tensors)
    assert "lm_head.decoder.weight" not in stored


def test_weight_tie_survives_a_round_trip(tmp_path):
    saved(ReformerKoForMaskedLM, tmp_path, weight_tie=True)
    loaded = ReformerKoForMaskedLM.from_pretrained(tmp_path)
    blocks = loaded.reformer.encoder.layers.blocks
    assert blocks[0].f.net.fn.toqk.weight is blocks[1].f.net.fn.toqk.weight
    assert loaded.lm_head.decoder.weight is loaded.reformer.embeddings.word_embeddings.weight


def test_saved_directory_is_hub_ready(tmp_path):
    saved(ReformerKoForMaskedLM, tmp_path)
    files = {path.name for path in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "modeling_reformer_ko.py", "configuration_reformer_ko.py"} <= files
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {"AutoConfig": "configuration_reformer_ko.ReformerKoConfig"} | {
        auto_class_name: f"modeling_reformer_ko.{head.__name__}" for auto_class_name, head in HEADS.items()
    }


def test_saved_directory_holds_the_modules_the_model_code_imports_beside_it(tmp_path):
    saved(ReformerKoForMaskedLM, tmp_path)
    for name in ("lsh_attention.py", "lsh_cache.py", "reversible.py"):
        assert (tmp_path / name).read_text() == (Path(modeling.__file__).parent / name).read_text()


def test_every_model_class_is_registered_under_an_auto_class():
    model_classes = {
        value
        for value in vars(modeling).values()
        if isinstance(value, type) and issubclass(value, ReformerKoPreTrainedModel)
    }
    assert model_classes - {ReformerKoPreTrainedModel} == set(HEADS.values())
    for auto_class_name, head in HEADS.items():
        assert getattr(transformers, auto_class_name).from_config(tiny_config(is_decoder=True)).__class__ is head


def modules_beside_the_backbone(model):
    """The top-level modules with parameters or buffers outside `model.base_model` (none for the base model)."""
    if model.base_model is model:
        return set()
    return {name.split(".")[0] for name in model.state_dict()} - {model.base_model_prefix}


@pytest.mark.parametrize("head", list(HEADS.values()), ids=lambda cls: cls.__name__)
def test_each_head_names_the_modules_it_adds_to_the_backbone(head):
    model = head(tiny_config(is_decoder=head is ReformerKoForCausalLM))
    assert set(head.head_modules) == modules_beside_the_backbone(model)


REMOTE_LOAD = """
import json, sys, torch
sys.modules["reformer_ko"] = None  # reformer-ko is not installed here
import transformers
outputs = []
for auto_name, directory in json.loads(sys.argv[1]):
    auto_class = getattr(transformers, auto_name)
    model = auto_class.from_pretrained(directory, trust_remote_code={trust}, **json.loads(sys.argv[2])).eval()
    assert model.__class__.__module__.startswith("transformers_modules"), model.__class__.__module__
    attention = {{type(module) for module in model.modules() if type(module).__name__.endswith("LSHAttention")}}
    assert all(cls.__module__.startswith("transformers_modules") for cls in attention), attention
    with torch.no_grad():
        output = model(torch.tensor({tokens}))[0].tolist()
    outputs.append(dict(output=output, attention=sorted(cls.__name__ for cls in attention)))
print(json.dumps(outputs))
"""


def load_in_fresh_process(checkpoints, trust_remote_code=True, **load_kwargs):
    """Load (auto class, directory) pairs in a Python process where reformer_ko cannot be imported."""
    code = REMOTE_LOAD.format(trust=trust_remote_code, tokens=TOKENS)
    pairs = json.dumps([(auto_class.__name__, str(directory)) for auto_class, directory in checkpoints])
    return subprocess.run([sys.executable, "-c", code, pairs, json.dumps(load_kwargs)], capture_output=True, text=True)


def test_every_head_loads_as_remote_code_without_the_package(tmp_path):
    models, checkpoints = [], []
    for model_class, auto_class in AUTO_CLASS_OF.items():
        models.append(saved(model_class, tmp_path / model_class.__name__))
        checkpoints.append((auto_class, tmp_path / model_class.__name__))
    result = load_in_fresh_process(checkpoints)
    assert result.returncode == 0, result.stderr[-2000:]
    remote_outputs = json.loads(result.stdout.strip().splitlines()[-1])
    for model, remote in zip(models, remote_outputs):
        assert remote["attention"] == ["PaddingSafeLSHAttention"]
        # another process may pick other CPU kernels: equal up to float32 rounding
        torch.testing.assert_close(torch.tensor(remote["output"]), first_output(model), atol=1e-5, rtol=0)


def test_remote_code_runs_the_flex_attention_backend_falling_back_to_eager_on_cpu(tmp_path):
    model = saved(ReformerKoForMaskedLM, tmp_path)
    result = load_in_fresh_process([(AutoModelForMaskedLM, tmp_path)], attn_implementation="flex_attention")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cannot run on cpu" in result.stderr
    (remote,) = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["attention"] == ["FlexLSHAttention"]
    torch.testing.assert_close(torch.tensor(remote["output"]), first_output(model), atol=1e-5, rtol=0)


def test_remote_code_is_refused_without_trust_remote_code(tmp_path):
    saved(ReformerKoForMaskedLM, tmp_path)
    result = load_in_fresh_process([(AutoModelForMaskedLM, tmp_path)], trust_remote_code=False)
    assert result.returncode != 0
    assert "trust_remote_code" in result.stderr


@pytest.fixture
def hf_warnings(caplog):
    hf_logging.enable_propagation()
    caplog.set_level(logging.WARNING)
    yield caplog
    hf_logging.disable_propagation()


def test_masked_lm_checkpoint_loads_into_the_qa_head(tmp_path, hf_warnings):
    mlm = saved(ReformerKoForMaskedLM, tmp_path)
    qa, info = AutoModelForQuestionAnswering.from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["missing_keys"]) == {"qa_outputs.weight", "qa_outputs.bias"}
    assert not info["unexpected_keys"]
    for name, tensor in mlm.reformer.state_dict().items():
        assert torch.equal(tensor, qa.reformer.state_dict()[name]), name
    assert "qa_outputs.weight" in hf_warnings.text and "qa_outputs.bias" in hf_warnings.text
    assert "reformer.encoder" not in hf_warnings.text


@pytest.mark.parametrize("source", list(HEADS.values()), ids=lambda cls: cls.__name__)
def test_a_checkpoint_of_any_head_loads_into_any_other_reporting_exactly_the_new_head_keys(source, tmp_path):
    torch.manual_seed(0)
    source(tiny_config(is_decoder=True)).save_pretrained(tmp_path)  # causal, so that the causal LM head loads it
    stored = set(load_file(tmp_path / "model.safetensors"))
    for target in HEADS.values():
        model, info = target.from_pretrained(tmp_path, output_loading_info=True)
        head_keys = {name for name in model.state_dict() if name.split(".")[0] in target.head_modules}
        assert set(info["missing_keys"]) == head_keys - stored - set(model.all_tied_weights_keys), target.__name__
        assert not info["unexpected_keys"], target.__name__


def test_another_model_type_is_refused(tmp_path):
    BertForMaskedLM(
        BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'bert' model, not a 'reformer_ko'"):
        ReformerKoForMaskedLM.from_pretrained(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_weights_file_is_a_clear_error(damage, tmp_path):
    saved(ReformerKoForMaskedLM, tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a safetensors file")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ReformerKoForMaskedLM.from_pretrained(tmp_path)


@pytest.mark.parametrize("overrides", [{}, {"weight_tie": True}, {"tie_word_embeddings": False}])
def test_every_parameter_has_one_name_or_is_a_declared_tied_alias(overrides):
    model = ReformerKoForMaskedLM(tiny_config(**overrides))
    names = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    assert not any("irrev_blocks" in name for name in names)
    first_names = {name for name, _ in model.named_parameters()}
    assert set(names) - first_names == set(model.all_tied_weights_keys)
    for alias, source in model.all_tied_weights_keys.items():
        assert model.get_parameter(alias) is model.get_parameter(source), alias


def test_tie_weights_keeps_weight_tied_layers_one_module(tmp_path):
    saved(ReformerKoForMaskedLM, tmp_path, weight_tie=True)
    loaded = ReformerKoForMaskedLM.from_pretrained(tmp_path)
    loaded.tie_weights()
    blocks = loaded.reformer.encoder.layers.blocks
    assert blocks[0].f.net.fn.to_out.weight is blocks[1].f.net.fn.to_out.weight
    assert loaded.lm_head.decoder.weight is loaded.reformer.embeddings.word_embeddings.weight


@pytest.mark.parametrize("overrides", [{}, {"weight_tie": True}])
def test_a_device_map_that_offloads_layers_to_disk_gives_the_same_outputs(overrides, tmp_path):
    model = saved(ReformerKoForMaskedLM, tmp_path / "model", num_hidden_layers=4, **overrides)
    # Room on the CPU for the embeddings, the LM head and one layer (no room for any with weight_tie): the rest on disk.
    offloaded = ReformerKoForMaskedLM.from_pretrained(
        tmp_path / "model", device_map="auto", max_memory={"cpu": 120_000}, offload_folder=tmp_path / "offload"
    ).eval()
    if not overrides:
        assert set(offloaded.hf_device_map.values()) == {"cpu", "disk"}
    torch.testing.assert_close(first_output(offloaded), first_output(model))


def test_trainer_resumes_from_a_checkpoint_without_missing_keys(tmp_path, hf_warnings):
    torch.manual_seed(0)
    inputs = torch.randint(5, 120, (8, 32))
    dataset = [{"input_ids": ids, "labels": ids} for ids in inputs]

    def trainer(max_steps):
        args = transformers.TrainingArguments(
            tmp_path, per_device_train_batch_size=4, max_steps=max_steps, save_steps=1, report_to=[], use_cpu=True,
            disable_tqdm=True,
        )  # fmt: skip
        return transformers.Trainer(model=ReformerKoForMaskedLM(tiny_config()), args=args, train_dataset=dataset)

    trainer(1).train()
    hf_warnings.clear()
    resumed = trainer(2)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-1"))
    assert "missing keys" not in hf_warnings.text and "unexpected keys" not in hf_warnings.text
    model = resumed.model
    assert model.lm_head.decoder.weight is model.reformer.embeddings.word_embeddings.weight
