"""The flex_attention LSH backend computes the eager function; where it cannot run, it falls back to eager.

On CPU, compiled FlexAttention has no log-sum-exp output and no backward, so the backend runs the eager attention
there. These tests check its arithmetic on CPU with FlexAttention's uncompiled (unfused) forward; the compiled
kernels and the backward are checked on a GPU by benchmarks/gpu_flex_check.py.
"""

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_config

from reformer_ko import ReformerKoConfig, ReformerKoForCausalLM, ReformerKoForMaskedLM
from reformer_ko import lsh_attention
from reformer_ko.lsh_attention import FlexBackend, FlexLSHAttention, PaddingSafeLSHAttention

pytestmark = [
    pytest.mark.skipif(lsh_attention.flex_attention is None, reason="this torch has no FlexAttention"),
    pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile"),
]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_backend_state(monkeypatch):
    """Each test starts as a new process would: nothing disabled, compiled, checked or logged yet."""
    monkeypatch.setattr(lsh_attention, "flex_backend", FlexBackend())


@pytest.fixture
def uncompiled_flex_on_cpu(monkeypatch):
    """Run the flex backend's arithmetic on CPU: FlexAttention's unfused forward instead of the compiled kernel."""
    monkeypatch.setattr(lsh_attention.flex_backend, "kernel", lambda device_type: lsh_attention.flex_lsh_attention)


@pytest.fixture
def flex_on_cpu(uncompiled_flex_on_cpu):
    """As `uncompiled_flex_on_cpu`, and the test fails if the backend fell back to the eager attention."""
    yield
    assert not lsh_attention.flex_backend.unavailable and not lsh_attention.flex_backend.fallbacks_logged


@pytest.fixture
def fallback_log():
    """The warnings of the LSH attention module's logger, as a list of messages."""

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    handler = Collect()
    lsh_attention.logger.addHandler(handler)
    yield handler.messages
    lsh_attention.logger.removeHandler(handler)


def attention_pair(**kwargs):
    kwargs = dict(num_buckets=8, hash_seed=0, bucket_size=16, n_hashes=2, causal=False) | kwargs
    return PaddingSafeLSHAttention(**kwargs).eval(), FlexLSHAttention(**kwargs).eval()


def random_inputs(batch, length, dim=16, padded_rows=True, seed=0):
    """Queries/keys, values and an input mask with rows of several real lengths (a few tokens up to all)."""
    generator = torch.Generator().manual_seed(seed)
    qk = torch.randn(batch, length, dim, generator=generator)
    v = torch.randn(batch, length, dim, generator=generator)
    if not padded_rows:
        return qk, v, None
    real = torch.linspace(3, length, batch).long()
    mask = torch.arange(length)[None, :] < real[:, None]
    return qk, v, mask


def run(attention, qk, v, mask, bucket_cache, reuse=False):
    """The attention output; the first call of a pair hashes and records the buckets, the second reuses them (as
    the reversible backward does), so both see the same buckets even in another precision."""
    kwargs = dict(_bucket_cache=bucket_cache, _depth=0, _reverse=reuse)
    with torch.no_grad():
        return attention(qk, v, input_mask=mask, **kwargs)[0]


def real_tokens(out, mask):
    return out if mask is None else out[mask]


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("n_hashes", [1, 4])
@pytest.mark.parametrize("length,padded_rows", [(64, False), (64, True), (160, True), (512, True)])
def test_flex_equals_eager_in_float64(flex_on_cpu, causal, n_hashes, length, padded_rows):
    eager, flex = attention_pair(causal=causal, n_hashes=n_hashes)
    qk, v, mask = random_inputs(4, length, padded_rows=padded_rows, seed=length + n_hashes)
    cache = {}
    ours = run(flex, qk, v, mask, cache)
    reference = run(eager, qk.double(), v.double(), mask, cache, reuse=True)
    difference = (real_tokens(ours, mask).double() - real_tokens(reference, mask)).abs().max().item()
    assert difference < 1e-5


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_flex_equals_eager_in_float32(flex_on_cpu, causal):
    eager, flex = attention_pair(causal=causal, n_hashes=4)
    qk, v, mask = random_inputs(4, 256)
    with torch.no_grad():
        ours, reference = flex(qk, v, input_mask=mask)[0], eager(qk, v, input_mask=mask)[0]
    torch.testing.assert_close(real_tokens(ours, mask), real_tokens(reference, mask), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bucket_size", [32, 64, 128, 256])
def test_flex_equals_eager_for_buckets_smaller_and_larger_than_a_kernel_tile(flex_on_cpu, bucket_size):
    eager, flex = attention_pair(causal=True, bucket_size=bucket_size, n_hashes=2)
    qk, v, mask = random_inputs(2, 4 * bucket_size, seed=bucket_size)
    cache = {}
    ours = run(flex, qk, v, mask, cache)
    reference = run(eager, qk.double(), v.double(), mask, cache, reuse=True)
    assert (real_tokens(ours, mask).double() - real_tokens(reference, mask)).abs().max().item() < 1e-5


def test_padding_outputs_are_zero_and_finite(flex_on_cpu):
    _, flex = attention_pair(causal=True, n_hashes=4)
    qk, v, mask = random_inputs(4, 128)
    with torch.no_grad():
        out = flex(qk, v, input_mask=mask)[0]
    assert torch.isfinite(out).all()
    assert (out[~mask] == 0).all()


@pytest.mark.parametrize("bucket_size", [16, 32, 48, 64, 96, 128, 256])
def test_block_mask_covers_every_allowed_pair_and_no_empty_tile(bucket_size):
    # FlexAttention's kernels skip the tiles the block mask leaves out; its unfused CPU path does not, so the
    # equality tests above cannot see a tile missing from the block mask.
    tile = lsh_attention.FLEX_BLOCK_SIZE
    for seqlen in (2 * bucket_size, 10 * bucket_size, 2 * tile + 4 * bucket_size):
        seqlen -= seqlen % (2 * bucket_size)
        counts, indices = lsh_attention.flex_block_structure(seqlen, bucket_size, "cpu")
        n_tiles = -(-seqlen // tile)
        marked = torch.zeros(n_tiles, n_tiles, dtype=torch.bool)
        for row in range(n_tiles):
            marked[row, indices[0, 0, row, : counts[0, 0, row]].long()] = True
        chunk = torch.arange(seqlen) // bucket_size
        window = (chunk[None, :] == chunk[:, None]) | (chunk[None, :] == chunk[:, None] - 1)
        tiles = torch.arange(seqlen) // tile
        needed = torch.zeros(n_tiles, n_tiles, dtype=torch.bool)
        needed[tiles[:, None].expand_as(window)[window], tiles[None, :].expand_as(window)[window]] = True
        assert torch.equal(marked, needed), (bucket_size, seqlen)


def test_flex_log_sum_exp_is_the_natural_log():
    # FlexAttention's kernels work in base 2; the log-sum-exp it returns must be in base e to weight the rounds.
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 3, 64, 16, generator=generator)
    key = torch.nn.functional.normalize(query, dim=-1)
    value = torch.randn(2, 3, 64, 16, generator=generator)
    positions = torch.arange(64).expand(2, 3, 64)
    n_real = torch.tensor([64, 64])
    structure = lsh_attention.flex_block_structure(64, 64, "cpu")
    with torch.no_grad():
        _, lse = lsh_attention.flex_lsh_attention(query, key, value, positions, n_real, *structure, 64, False)
    scores = query @ key.transpose(-1, -2) / 4.0
    scores.diagonal(dim1=-2, dim2=-1).fill_(lsh_attention.TOKEN_SELF_ATTN_VALUE)
    torch.testing.assert_close(lse, torch.logsumexp(scores, dim=-1), atol=1e-5, rtol=0)


def kernel_inputs(seed, length=256, batch=2, n_hashes=2):
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, n_hashes, length, 16, generator=generator)
    value = torch.randn(batch, n_hashes, length, 16, generator=generator)
    positions = torch.stack([torch.randperm(length, generator=generator) for _ in range(batch * n_hashes)])
    n_real = torch.tensor([length, length // 2, length // 3])[:batch]
    structure = lsh_attention.flex_block_structure(length, 16, "cpu")
    key = torch.nn.functional.normalize(query, dim=-1)
    return query, key, value, positions.view(batch, n_hashes, length), n_real, *structure


def test_the_kernel_compiles_as_one_graph_that_new_values_reuse():
    # On a GPU the kernel runs under torch.compile(fullgraph=True): a graph break would fail (and fall back), and a
    # recompilation per call (e.g. guards on the closures) would be ruinous. Dynamo's part is the same on CPU.
    graphs = []

    def count_graphs(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    kernel = torch.compile(lsh_attention.flex_lsh_attention, backend=count_graphs, fullgraph=True)
    with torch.no_grad():
        for seed in range(3):
            compiled = kernel(*kernel_inputs(seed), 16, True)
            for ours, reference in zip(compiled, lsh_attention.flex_lsh_attention(*kernel_inputs(seed), 16, True)):
                assert torch.equal(ours, reference)
    assert len(graphs) == 1


def save_and_load_with_both_backends(tmp_path, head, config):
    torch.manual_seed(0)
    head(config).save_pretrained(tmp_path)
    eager = head.from_pretrained(tmp_path).eval()
    flex = head.from_pretrained(tmp_path, attn_implementation="flex_attention").eval()
    return eager, flex


@pytest.mark.parametrize("head", [ReformerKoForMaskedLM, ReformerKoForCausalLM], ids=lambda cls: cls.__name__)
def test_a_checkpoint_gives_the_same_logits_with_either_backend(flex_on_cpu, tmp_path, head):
    config = tiny_config(is_decoder=head is ReformerKoForCausalLM, num_hashes=4)
    eager, flex = save_and_load_with_both_backends(tmp_path, head, config)
    assert eager.config._attn_implementation == "eager"
    assert flex.config._attn_implementation == "flex_attention"
    tokens = torch.randint(5, config.vocab_size, (3, 150))
    mask = torch.ones_like(tokens)
    mask[1, 100:] = 0
    mask[2, 20:] = 0
    with torch.no_grad():
        expected = eager(tokens, attention_mask=mask).logits
        logits = flex(tokens, attention_mask=mask).logits
    real = mask.bool()
    torch.testing.assert_close(logits[real], expected[real], atol=1e-5, rtol=0)


def test_a_bfloat16_model_gets_bfloat16_outputs_close_to_float32(flex_on_cpu):
    # FlexAttention's log-sum-exp is fp32 whatever the inputs: the attention output must still be bf16.
    eager, flex = eager_and_flex_models()
    tokens = torch.randint(5, 120, (2, 100))
    with torch.no_grad():
        reference = eager(tokens).logits
        logits = flex.to(torch.bfloat16)(tokens).logits
    assert logits.dtype == torch.bfloat16
    assert (logits.float() - reference).norm() / reference.norm() < 1e-2


def test_checkpoints_are_interchangeable(tmp_path):
    config = tiny_config(attn_implementation="flex_attention")
    torch.manual_seed(0)
    flex = ReformerKoForMaskedLM(config)
    assert flex.state_dict().keys() == ReformerKoForMaskedLM(tiny_config()).state_dict().keys()
    flex.save_pretrained(tmp_path)
    assert "flex" not in (tmp_path / "config.json").read_text()  # chosen when loading, as in transformers
    eager, loading_info = ReformerKoForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(loading_info.values())
    assert all(torch.equal(eager.state_dict()[name], tensor) for name, tensor in flex.state_dict().items())


def lsh_attention_classes(model):
    return {type(module) for module in model.modules() if isinstance(module, PaddingSafeLSHAttention)}


def test_the_backend_is_a_config_field_as_in_transformers():
    assert lsh_attention_classes(ReformerKoForMaskedLM(tiny_config())) == {PaddingSafeLSHAttention}
    config = ReformerKoConfig.from_preset("mlm-small", num_hidden_layers=1, attn_implementation="flex_attention")
    assert lsh_attention_classes(ReformerKoForMaskedLM(config)) == {FlexLSHAttention}
    config = tiny_config()
    config._attn_implementation = "flex_attention"
    assert lsh_attention_classes(ReformerKoForMaskedLM(config)) == {FlexLSHAttention}


def test_set_attn_implementation_switches_every_layer_and_keeps_the_mode():
    model = ReformerKoForMaskedLM(tiny_config(weight_tie=False)).eval()
    model.set_attn_implementation("flex_attention")
    assert lsh_attention_classes(model) == {FlexLSHAttention}
    assert not any(module.training for module in model.modules())
    model.train().set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"
    assert lsh_attention_classes(model) == {PaddingSafeLSHAttention}
    assert all(module.training for module in model.modules())


@pytest.mark.parametrize(
    "name,message",
    [("flash", "flex_attention"), ("sdpa", "scaled_dot_product_attention"), ("flash_attention_2", "Flash Attention")],
)
def test_an_unknown_backend_is_a_value_error(name, message):
    with pytest.raises(ValueError, match=message):
        ReformerKoForMaskedLM(tiny_config(attn_implementation=name))


def forward_twice(model, tokens):
    with torch.no_grad():
        return model(tokens).logits, model(tokens).logits


def eager_and_flex_models(**overrides):
    torch.manual_seed(0)
    eager = ReformerKoForMaskedLM(tiny_config(**overrides)).eval()
    flex = ReformerKoForMaskedLM(tiny_config(attn_implementation="flex_attention", **overrides)).eval()
    flex.load_state_dict(eager.state_dict())
    return eager, flex


def test_on_cpu_the_flex_backend_runs_eager_and_says_so_once(fallback_log):
    eager, flex = eager_and_flex_models()
    tokens = torch.randint(5, 120, (2, 100))
    for logits in forward_twice(flex, tokens):
        assert torch.equal(logits, eager(tokens).logits)
    assert len(fallback_log) == 1
    assert "cannot run on cpu" in fallback_log[0] and "eager LSH attention" in fallback_log[0]


def test_a_torch_without_flex_attention_falls_back_to_eager(monkeypatch, fallback_log):
    monkeypatch.setattr(lsh_attention, "flex_attention", None)
    eager, flex = eager_and_flex_models()
    tokens = torch.randint(5, 120, (2, 100))
    for logits in forward_twice(flex, tokens):
        assert torch.equal(logits, eager(tokens).logits)
    assert len(fallback_log) == 1 and "has no FlexAttention" in fallback_log[0]


def test_a_kernel_that_fails_to_compile_falls_back_to_eager(monkeypatch, fallback_log):
    def failing_kernel(*args):
        raise RuntimeError("no kernel for this GPU")

    monkeypatch.setattr(lsh_attention.flex_backend, "kernel", lambda device_type: failing_kernel)
    eager, flex = eager_and_flex_models()
    tokens = torch.randint(5, 120, (2, 100))
    for logits in forward_twice(flex, tokens):
        assert torch.equal(logits, eager(tokens).logits)
    assert len(fallback_log) == 1 and "no kernel for this GPU" in fallback_log[0]


def test_a_kernel_without_a_backward_falls_back_to_eager_before_training(uncompiled_flex_on_cpu, fallback_log):
    # FlexAttention's unfused CPU path has no backward: the check before the first training use catches it.
    _, flex = eager_and_flex_models()
    tokens = torch.randint(5, 120, (2, 100))
    flex.train()
    for _ in range(2):
        flex(tokens, labels=tokens).loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in flex.parameters() if p.grad is not None)
    assert len(fallback_log) == 1 and "backward" in fallback_log[0]


def test_attention_dropout_in_training_runs_eager(uncompiled_flex_on_cpu, fallback_log):
    _, flex = eager_and_flex_models(lsh_dropout=0.1)
    flex.train()
    with torch.no_grad():
        flex(torch.randint(5, 120, (2, 100)))
    assert len(fallback_log) == 1 and "dropout" in fallback_log[0]


def test_the_gpu_check_script_passes_its_cpu_dry_mode(tmp_path):
    script = REPO / "benchmarks" / "gpu_flex_check.py"
    result = subprocess.run(
        [sys.executable, str(script), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = (tmp_path / "gpu_flex_check.json").read_text()
    assert '"dry_run": true' in report and '"passed": true' in report
