"""The reversible layer stack: reformer-pytorch's `ReversibleSequence` with a backward pass that re-enters the
forward's autocast state (under bf16/fp16 it recomputes the blocks in the forward's precision rather than in fp32),
with each layer's output on the irreversible path, and with the generation cache (one `LSHLayerCache` per layer).

A sibling of the modeling file that travels with it to the Hub as remote code: it imports installed packages only.
"""

import contextlib

import torch
from reformer_pytorch.reversible import ReversibleSequence


def autocast_states(device_type):
    """The autocast settings in force for the CPU and `device_type`, to re-enter them later."""
    device_types = ["cpu"] if device_type == "cpu" else ["cpu", device_type]
    return [
        dict(device_type=kind, enabled=torch.is_autocast_enabled(kind), dtype=torch.get_autocast_dtype(kind))
        for kind in device_types
    ]


class _AutocastReversibleFunction(torch.autograd.Function):
    """reformer-pytorch's `_ReversibleFunction`, with the backward pass run under the forward's autocast state
    (as `torch.utils.checkpoint` does): the recomputed activations then match the forward's."""

    @staticmethod
    def forward(ctx, x, blocks, kwargs):
        ctx.autocast_states = autocast_states(x.device.type)
        for block in blocks:
            x = block(x, **kwargs)
        ctx.y = x.detach()
        ctx.blocks = blocks
        ctx.kwargs = kwargs
        return x

    @staticmethod
    def backward(ctx, dy):
        y = ctx.y
        with contextlib.ExitStack() as stack:
            for state in ctx.autocast_states:
                stack.enter_context(torch.autocast(**state))
            for block in ctx.blocks[::-1]:
                # An eval-mode forward records no RNG state for the recomputation to replay (reformer-pytorch then
                # fails on None); nothing is random in eval mode, so any state will do.
                for function in (block.f, block.g):
                    if function.cpu_state is None:
                        function.record_rng(y)
                y, dy = block.backward_pass(y, dy.to(y.dtype), **ctx.kwargs)
        return dy, None, None


class _ThroughState(torch.autograd.Function):
    """`x`, its value unchanged, computed through `state`, the mean of x's halves over its first positions, so that
    gradients of anything computed from the output reach `state`. `state` receives the derivative with respect to
    that mean with the rest of `x` held fixed (the halves' difference, the later positions), and `x` the remainder,
    so that x's gradient, directly and through `state`, is the one it has without this function."""

    @staticmethod
    def forward(ctx, x, state):
        ctx.halves, ctx.length = x.shape[-1] // state.shape[-1], state.shape[1]
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        grad_state = torch.stack(grad[:, : ctx.length].chunk(ctx.halves, dim=-1)).sum(dim=0)
        grad_x = grad.clone()
        grad_x[:, : ctx.length] -= torch.cat([grad_state / ctx.halves] * ctx.halves, dim=-1)
        return grad_x, grad_state


def with_hidden_state(x, length, halves):
    """`x` (batch, positions, halves x width) on the way to the output, and its hidden state: the mean of its halves
    (both halves of the reversible stream, as reformer-pytorch averages them for the output) over the first `length`
    positions (the real tokens, before internal padding). The returned `x` has the same values and is computed
    through the state, so the state is on the output's gradient path."""
    state = torch.stack(x[:, :length].chunk(halves, dim=-1)).mean(dim=0)
    return _ThroughState.apply(x, state), state


class ReformerKoReversibleSequence(ReversibleSequence):
    """reformer-pytorch's `ReversibleSequence` with an autocast-aware backward, per-layer hidden states, layer
    dropout that picks from the irreversible blocks on the irreversible path, and the generation cache."""

    def __init__(self, blocks, **kwargs):
        super().__init__(blocks, **kwargs)
        # reformer-pytorch registers every layer twice: in `blocks` (reversible wrappers) and in `irrev_blocks`
        # (irreversible wrappers of the same modules). Registered once, each parameter has one name, so state dicts,
        # checkpoints, device maps and offloading see each layer once; the irreversible wrappers hold no parameters
        # of their own and stay a plain tuple.
        irrev_blocks = tuple(self.irrev_blocks)
        del self.irrev_blocks
        self.irrev_blocks = irrev_blocks

    def forward(self, x, output_hidden_states=False, cache=None, hidden_state_length=None, **kwargs):
        """`x` through the layers (both halves of the reversible stream); with `cache` (a `ReformerKoCache`) each
        layer's attention reads and extends its layer of the cache. Returns the output and, with
        `output_hidden_states`, each layer's hidden state over the first `hidden_state_length` positions (all by
        default), on the output's gradient path (`with_hidden_state`)."""
        indices = list(range(len(self.blocks)))
        if self.training and self.layer_dropout > 0:
            keep = torch.empty(len(indices)).uniform_(0, 1) >= self.layer_dropout
            indices = [index for index in indices if keep[index]] or indices[:1]

        # Hidden states are asked for rarely (analysis, feature extraction): take the irreversible path, which
        # computes the same function and lets gradients reach every returned state. So does the cache, which is for
        # generation: each layer gets its own layer of the cache, and a step of one token has nothing to save.
        if x.shape[1] > self.reverse_thres and not output_hidden_states and cache is None:
            if torch.is_grad_enabled():
                kwargs["_bucket_cache"] = {}
            blocks = [self.blocks[index] for index in indices]
            return _AutocastReversibleFunction.apply(x, blocks, {"f_args": kwargs, "g_args": {}}), ()

        layer_states = []
        for index in indices:
            f_args = kwargs if cache is None else {**kwargs, "cache_layer": cache.layers[index]}
            x = self.irrev_blocks[index](x, f_args=f_args, g_args={})
            if output_hidden_states:
                x, state = with_hidden_state(x, hidden_state_length or x.shape[1], halves=2)
                layer_states.append(state)
        return x, tuple(layer_states)
