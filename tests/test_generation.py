"""Generation with the LSH cache: what a cached step computes (against a plain reference of its definition in
docs/models.md), position ids and left padding, the cache in generate() and the pipeline, and its memory."""

import json

import pytest
import torch
import torch.nn.functional as F
from pretraining_fixtures import run_python, small_tokenizer
from tiny_models import tiny_config
from transformers import AutoTokenizer, DynamicCache, pipeline

from reformer_ko import ReformerKoForCausalLM, ReformerKoForMaskedLM
from reformer_ko.lsh_attention import PaddingSafeLSHAttention
from reformer_ko.lsh_cache import ReformerKoCache
from reformer_ko.modeling_reformer_ko import CACHE_FIELD

POSITIONS = ["rotary", "absolute", "axial"]


def causal_lm(**overrides):
    torch.manual_seed(0)
    return ReformerKoForCausalLM(tiny_config(is_decoder=True, **overrides)).eval()


def many_chunks_lm(position_embedding_type="rotary"):
    """Buckets of 4 tokens in 4 hash buckets: a 40-token sequence spans many chunks in every round."""
    return causal_lm(
        position_embedding_type=position_embedding_type, bucket_size=4, num_buckets=4, max_position_embeddings=64
    )


def tokens(batch, length, seed=1):
    return torch.randint(5, 120, (batch, length), generator=torch.Generator().manual_seed(seed))


def cache_of(output):
    return getattr(output, CACHE_FIELD)


def use_reference_attention(model, monkeypatch, prompt_length):
    """Replace every LSH attention of `model` by a plain reference of what the cache computes: the prompt's rows as
    the full forward over the prompt computes them, and each later row t as the full forward over rows 0..t
    computes its last row (the cached tokens' keys and values are those of the earlier rows)."""
    for module in model.modules():
        if isinstance(module, PaddingSafeLSHAttention):
            reference = reference_attention(module.forward, module.bucket_size, prompt_length)
            monkeypatch.setattr(module, "forward", reference)


def reference_attention(full_forward, bucket_size, prompt_length):
    def forward(qk, v, input_mask=None, pos_emb=None, **kwargs):
        rows, length, _ = qk.shape
        mask = torch.ones(rows, length, dtype=torch.bool) if input_mask is None else input_mask

        def over_first(end):  # the full forward over rows 0..end-1, padded to whole buckets
            padding = -end % bucket_size
            positions = None if pos_emb is None else F.pad(pos_emb[:, :end], (0, 0, 0, padding))
            return full_forward(
                F.pad(qk[:, :end], (0, 0, 0, padding)),
                F.pad(v[:, :end], (0, 0, 0, padding)),
                input_mask=F.pad(mask[:, :end], (0, padding), value=False),
                pos_emb=positions,
            )[0]

        out = torch.zeros_like(v)
        out[:, :prompt_length] = over_first(prompt_length)[:, :prompt_length]
        for row in range(prompt_length, length):
            out[:, row] = over_first(row + 1)[:, row]
        return out, None, torch.zeros(rows, 0, dtype=torch.long)

    return forward


def logits_through_the_cache(model, inputs, prompt_length, **kwargs):
    """The prompt in one forward that fills a new cache, then every later token alone against the cache."""
    with torch.no_grad():
        output = model(inputs[:, :prompt_length], use_cache=True, **kwargs)
        logits, cache = [output.logits], cache_of(output)
        for index in range(prompt_length, inputs.shape[1]):
            logits.append(model(inputs[:, index : index + 1], past_key_values=cache).logits)
    return torch.cat(logits, dim=1)


# What a cached step computes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("position_embedding_type", POSITIONS)
def test_cached_steps_equal_the_full_forward_over_the_tokens_so_far(position_embedding_type, monkeypatch):
    model = many_chunks_lm(position_embedding_type)
    inputs = tokens(batch=2, length=40)
    cached = logits_through_the_cache(model, inputs, prompt_length=7)
    use_reference_attention(model, monkeypatch, prompt_length=7)
    with torch.no_grad():
        reference = model(inputs).logits
    torch.testing.assert_close(cached, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "overrides",
    [{"weight_tie": True}, {"attn_chunks": 2}, {"embedding_size": 16, "type_vocab_size": 0}],
    ids=["shared layers", "attention in chunks", "projected embeddings"],
)
def test_cached_steps_equal_the_reference_with_every_layer_option(overrides, monkeypatch):
    model = causal_lm(bucket_size=4, num_buckets=4, max_position_embeddings=64, **overrides)
    inputs = tokens(batch=2, length=24)
    cached = logits_through_the_cache(model, inputs, prompt_length=5)
    use_reference_attention(model, monkeypatch, prompt_length=5)
    with torch.no_grad():
        reference = model(inputs).logits
    torch.testing.assert_close(cached, reference, atol=1e-5, rtol=0)


def test_the_reference_is_not_one_full_forward_over_the_whole_sequence(monkeypatch):
    # In one forward over the whole sequence, later tokens in lower buckets move earlier tokens' chunks, which a
    # cache cannot know: the cached steps compute something else (measured in docs/benchmarks.md).
    model = many_chunks_lm()
    inputs = tokens(batch=2, length=40)
    with torch.no_grad():
        full, prompt_alone = model(inputs).logits, model(inputs[:, :7]).logits
    use_reference_attention(model, monkeypatch, prompt_length=7)
    with torch.no_grad():
        reference = model(inputs).logits
    torch.testing.assert_close(reference[:, :7], prompt_alone, atol=1e-5, rtol=0)
    assert not torch.allclose(reference, full, atol=1e-3)


def test_several_tokens_after_the_cache_run_one_at_a_time():
    model = many_chunks_lm()
    inputs = tokens(batch=2, length=30)
    with torch.no_grad():
        prompt = model(inputs[:, :9], use_cache=True)
        rest = model(inputs[:, 9:], past_key_values=cache_of(prompt))
    together = torch.cat([prompt.logits, rest.logits], dim=1)
    torch.testing.assert_close(together, logits_through_the_cache(model, inputs, prompt_length=9), atol=0, rtol=0)


def test_an_attention_mask_over_the_cached_tokens_too_is_accepted():
    model = many_chunks_lm()
    inputs = tokens(batch=1, length=12)
    with torch.no_grad():
        prompt = model(inputs[:, :10], use_cache=True)
        whole_mask = torch.ones(1, 12, dtype=torch.long)
        step = model(inputs[:, 10:], attention_mask=whole_mask, past_key_values=cache_of(prompt))
    torch.testing.assert_close(step.logits, logits_through_the_cache(model, inputs, prompt_length=10)[:, 10:])


def test_greedy_generation_picks_the_reference_argmax_at_every_step(monkeypatch):
    model = many_chunks_lm("axial")
    prompt = tokens(batch=1, length=6)
    generated = model.generate(prompt, max_new_tokens=24, do_sample=False, pad_token_id=0)
    use_reference_attention(model, monkeypatch, prompt_length=6)
    with torch.no_grad():
        reference = model(generated).logits
    assert torch.equal(generated[0, 6:], reference[0, 5:-1].argmax(dim=-1))


@pytest.mark.parametrize(
    "strategy",
    [{"do_sample": False}, {"do_sample": True, "top_k": 20}, {"num_beams": 3}, {"num_beams": 2, "do_sample": True}],
    ids=["greedy", "sampling", "beam search", "beam sampling"],
)
def test_the_cache_gives_what_recomputing_gives_while_every_token_sees_every_other(strategy):
    # Up to bucket_size tokens, every round's chunk holds them all: cached steps and recomputing the prefix then
    # compute the same function, so the cache (and its reordering between beams) must not change the tokens.
    model = causal_lm(bucket_size=32, max_position_embeddings=128)
    prompt = tokens(batch=2, length=8)
    outputs = []
    for use_cache in (True, False):
        torch.manual_seed(0)
        outputs.append(model.generate(prompt, max_new_tokens=20, pad_token_id=0, use_cache=use_cache, **strategy))
    assert outputs[0].shape == (2, 28)
    assert torch.equal(outputs[0], outputs[1])


def record_input_lengths(model):
    """The number of tokens of every forward of `model`'s backbone, in a list that grows as it runs."""
    seen = []
    model.reformer.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    return seen


@pytest.mark.parametrize("use_cache, lengths", [(True, [10, 1, 1, 1]), (False, [10, 11, 12, 13])])
def test_generate_runs_the_prompt_once_then_one_token_per_step(use_cache, lengths):
    model = causal_lm()
    seen = record_input_lengths(model)
    model.generate(tokens(batch=1, length=10), max_new_tokens=4, do_sample=False, pad_token_id=0, use_cache=use_cache)
    assert seen == lengths


# Positions and left padding ----------------------------------------------------------------------------------------


def left_padded(rows, length):
    """`rows` (1-row tensors) left-padded with 0 to `length`, and the attention mask."""
    batch = torch.zeros(len(rows), length, dtype=torch.long)
    for index, row in enumerate(rows):
        batch[index, length - row.shape[1] :] = row[0]
    return batch, (batch != 0).long()


@pytest.mark.parametrize("position_embedding_type", POSITIONS)
def test_a_left_padded_row_gives_the_logits_of_the_row_alone(position_embedding_type):
    model = causal_lm(position_embedding_type=position_embedding_type)
    short, long = tokens(1, 12, seed=1), tokens(1, 30, seed=2)
    batch, mask = left_padded([short, long], 30)
    position_ids = (mask.cumsum(dim=-1) - 1).clamp(min=0)
    with torch.no_grad():
        padded = model(batch, attention_mask=mask, position_ids=position_ids).logits
        torch.testing.assert_close(padded[0, 18:], model(short).logits[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(padded[1], model(long).logits[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no cache"])
@pytest.mark.parametrize("position_embedding_type", POSITIONS)
def test_a_left_padded_batch_generates_what_each_row_generates_alone(position_embedding_type, use_cache):
    model = causal_lm(position_embedding_type=position_embedding_type)
    short, long = tokens(1, 12, seed=1), tokens(1, 30, seed=2)
    batch, mask = left_padded([short, long], 30)
    options = dict(max_new_tokens=20, do_sample=False, pad_token_id=0, use_cache=use_cache)
    together = model.generate(batch, attention_mask=mask, **options)
    assert torch.equal(together[0, 18:], model.generate(short, **options)[0])
    assert torch.equal(together[1], model.generate(long, **options)[0])


def test_inputs_embeds_equal_to_the_embedding_of_input_ids_give_the_same_outputs():
    model = causal_lm(position_embedding_type="absolute")
    inputs = tokens(batch=2, length=20)
    embeds = model.get_input_embeddings()(inputs)
    with torch.no_grad():
        torch.testing.assert_close(model(inputs_embeds=embeds).logits, model(inputs).logits, atol=0, rtol=0)
    generated = model.generate(inputs_embeds=embeds, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(generated, model.generate(inputs, max_new_tokens=5, do_sample=False, pad_token_id=0)[:, 20:])


def test_position_ids_outside_the_context_are_refused():
    model = causal_lm(position_embedding_type="absolute")
    with pytest.raises(ValueError, match=r"position_ids must be in \[0, 256\) \(max_position_embeddings\), got 256"):
        model(tokens(1, 4), position_ids=torch.tensor([[253, 254, 255, 256]]))


# generate() around the cache -----------------------------------------------------------------------------------------


def test_generate_returns_the_hidden_states_of_every_step():
    model = causal_lm()
    output = model.generate(
        tokens(batch=2, length=10),
        max_new_tokens=3,
        do_sample=False,
        pad_token_id=0,
        output_hidden_states=True,
        return_dict_in_generate=True,
    )
    assert len(output.hidden_states) == 3
    assert [len(step) for step in output.hidden_states] == [3, 3, 3]  # embeddings, layer 1, the final output
    assert [step[-1].shape for step in output.hidden_states] == [(2, 10, 32), (2, 1, 32), (2, 1, 32)]


def test_generate_stops_at_the_context_and_says_so(caplog):
    model = causal_lm(max_position_embeddings=64)
    generated = model.generate(tokens(batch=1, length=60), max_new_tokens=20, do_sample=False, pad_token_id=0)
    assert generated.shape[1] == 64
    assert "asked for 80 tokens with a 60-token prompt" in caplog.text
    assert "max_position_embeddings (64)" in caplog.text and "max_new_tokens=4" in caplog.text


def test_a_subclass_under_another_name_generates_with_the_cache():
    # transformers decides by the class name whether generate() builds a DynamicCache for the model.
    class KoreanLM(ReformerKoForCausalLM):
        pass

    model = causal_lm()
    renamed = KoreanLM(model.config).eval()
    renamed.load_state_dict(model.state_dict())
    prompt = tokens(batch=2, length=10)
    options = dict(max_new_tokens=5, do_sample=False, pad_token_id=0, return_dict_in_generate=True)
    output = renamed.generate(prompt, **options)
    assert isinstance(cache_of(output), ReformerKoCache)
    assert torch.equal(output.sequences, model.generate(prompt, **options).sequences)


def test_a_cache_of_another_kind_is_refused():
    model = causal_lm()
    with pytest.raises(ValueError, match=r"^past_key_values must be a ReformerKoCache .*, got DynamicCache: [^\n]*$"):
        model(tokens(1, 8), past_key_values=DynamicCache())


def test_early_initialization_leaves_the_cache_to_the_first_tokens():
    model = causal_lm()
    cache = ReformerKoCache(model.config)
    cache.early_initialization(batch_size=1, num_heads=2, head_dim=16, dtype=torch.float32, device="cpu")
    assert not cache.is_initialized
    prompt = tokens(1, 8)
    with torch.no_grad():
        logits = model(prompt, past_key_values=cache).logits
    assert cache.is_initialized and cache.get_seq_length() == 8
    torch.testing.assert_close(logits, logits_through_the_cache(model, prompt, prompt_length=8), atol=0, rtol=0)


def test_a_cache_full_to_the_context_refuses_more_tokens():
    model = causal_lm(max_position_embeddings=64)
    with torch.no_grad():
        cache = cache_of(model(tokens(1, 64), use_cache=True))
        with pytest.raises(ValueError, match=r"Input of 1 tokens after the 64 in the cache is longer than"):
            model(tokens(1, 1), past_key_values=cache)


def test_the_cache_needs_eval_mode():
    model = causal_lm().train()
    with pytest.raises(ValueError, match=r"needs eval mode: .* model.eval\(\)"):
        model(tokens(1, 8), use_cache=True)


def test_a_bidirectional_model_has_no_cache():
    model = ReformerKoForMaskedLM(tiny_config()).eval()
    with pytest.raises(ValueError, match="for causal models"):
        model.reformer(tokens(1, 8), use_cache=True)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return AutoTokenizer.from_pretrained(small_tokenizer(tmp_path_factory.mktemp("tokenizer")))


def test_the_text_generation_pipeline_runs_the_cache(tokenizer):
    model = causal_lm(vocab_size=len(tokenizer))
    seen = record_input_lengths(model)
    generate = pipeline("text-generation", model=model, tokenizer=tokenizer)
    text = generate("김치는 배추나 무 같은", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert text.startswith("김치는 배추나 무 같은")
    assert seen[1:] == [1] * (len(seen) - 1) and len(seen) > 1


def test_a_saved_causal_lm_generates_with_the_cache_as_remote_code(tmp_path):
    model = many_chunks_lm()
    model.save_pretrained(tmp_path / "model")
    prompt = tokens(batch=1, length=6)
    local = model.generate(prompt, max_new_tokens=20, do_sample=False, pad_token_id=0)
    code = """
import json, sys, torch
sys.modules["reformer_ko"] = None  # reformer-ko is not installed here
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
assert model.__class__.__module__.startswith("transformers_modules"), model.__class__.__module__
output = model.generate(torch.tensor(json.loads(sys.argv[2])), max_new_tokens=20, do_sample=False, pad_token_id=0,
                        return_dict_in_generate=True)
cache = getattr(output, "cache", None) or output.past_key_values
print(json.dumps({"tokens": output.sequences.tolist(), "cache": type(cache).__name__}))
"""
    result = run_python(["-c", code, tmp_path / "model", json.dumps(prompt.tolist())], tmp_path)
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["cache"] == "ReformerKoCache"
    assert remote["tokens"] == local.tolist()


# The cache's memory ----------------------------------------------------------------------------------------------


def test_the_cache_grows_by_doubling_so_a_step_copies_nothing_in_the_common_case():
    model = causal_lm(max_position_embeddings=1024)
    with torch.no_grad():
        cache = cache_of(model(tokens(1, 20), use_cache=True))
        layer = cache.layers[0]
        capacities, storage = [layer.capacity], {layer.keys.data_ptr()}
        for _ in range(200):
            model(tokens(1, 1), past_key_values=cache)
            capacities.append(layer.capacity)
            storage.add(layer.keys.data_ptr())
    assert layer.get_seq_length() == 220
    assert sorted(set(capacities)) == [32, 64, 128, 256]  # the prompt's 32 (whole pairs of buckets), then doubling
    assert len(storage) == 4
    assert cache.memory_bytes() == sum(layer.memory_bytes() for layer in cache.layers)


def test_cropping_the_cache_forgets_the_last_tokens_exactly():
    model = many_chunks_lm()
    inputs = tokens(batch=2, length=30)
    with torch.no_grad():
        cache = cache_of(model(inputs[:, :12], use_cache=True))
        model(tokens(2, 8, seed=7), past_key_values=cache)
        cache.crop(-8)
        after_crop = model(inputs[:, 12:], past_key_values=cache).logits
    assert cache.get_seq_length() == 30
    torch.testing.assert_close(after_crop, logits_through_the_cache(model, inputs, prompt_length=12)[:, 12:])


def test_a_cache_repeated_or_selected_by_rows_continues_each_row_as_before():
    model = many_chunks_lm()
    inputs = tokens(batch=2, length=20)
    with torch.no_grad():
        cache = cache_of(model(inputs[:, :12], use_cache=True))
        expected = model(inputs[:, 12:], past_key_values=cache).logits
        cache.crop(-8)
        cache.batch_repeat_interleave(2)
        repeated = model(inputs[:, 12:].repeat_interleave(2, dim=0), past_key_values=cache).logits
        cache.crop(-8)
        cache.batch_select_indices(torch.tensor([3]))
        selected = model(inputs[1:, 12:], past_key_values=cache).logits
    torch.testing.assert_close(repeated, expected.repeat_interleave(2, dim=0), atol=1e-6, rtol=0)
    torch.testing.assert_close(selected, expected[1:], atol=1e-6, rtol=0)


def test_a_new_cache_is_a_transformers_cache_of_one_layer_per_layer():
    model = causal_lm(num_hidden_layers=3, weight_tie=True)
    with torch.no_grad():
        cache = cache_of(model(tokens(2, 10), use_cache=True))
    assert isinstance(cache, ReformerKoCache) and len(cache.layers) == 3
    assert cache.get_seq_length() == 10
    assert [layer.keys.shape[:2] for layer in cache.layers] == [(2, 2)] * 3
