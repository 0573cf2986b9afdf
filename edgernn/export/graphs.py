"""The graphs a bundle holds, as traceable modules with example inputs and symbolic axes.

A zoo model is first made *exportable*: a copy whose recurrent layers run through
``edgernn::rnn_layer`` (one ONNX node per layer, padding handled by ``sequence_lens``). The
task code (pooling, heads, attention, bridge) is the model's own, so there is one definition
of the maths and the parity check compares the graph against the untouched original.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from edgernn.config import ModelSpec
from edgernn.export.ops import CELL_OF, onnx_weights
from edgernn.export.streaming import PooledStepGraph, StepGraph
from edgernn.models.encoder import RecurrentEncoder, RecurrentState

EXAMPLE_LENGTHS = (6, 4, 2)  # traced batch and lengths; parity checks use other shapes
STATE_NAMES = ("state_h", "state_c")
POOL_STATE_NAMES = ("pool", "pool_steps")  # mean/max pooling streams (edgernn.export.streaming)


class ExportableRNN(nn.Module):
    """Stand-in for a batch-first ``nn.LSTM/GRU/RNN``: same call, one custom op per layer.

    Example::

        rnn = ExportableRNN(nn.GRU(4, 8, num_layers=2, batch_first=True))
        output, h_n = rnn(x, None, lengths)   # (B, T, 8), (2, B, 8)
    """

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        assert rnn.batch_first and rnn.bias, "the zoo builds batch-first RNNs with biases"
        assert getattr(rnn, "nonlinearity", "tanh") == "tanh", "ONNX RNN is exported as tanh"
        self.cell, self.hidden = CELL_OF[type(rnn)], rnn.hidden_size
        self.layers, self.directions = rnn.num_layers, 2 if rnn.bidirectional else 1
        for layer in range(self.layers):
            for name, tensor in zip("wrb", onnx_weights(rnn, layer), strict=True):
                self.register_buffer(f"{name}{layer}", tensor)

    def forward(
        self, x: Tensor, hx: RecurrentState | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, RecurrentState]:
        steps, batch = x.size(1), x.size(0)
        if hx is None:
            zeros = x.new_zeros(self.layers * self.directions, batch, self.hidden)
            hx = (zeros, zeros) if self.cell == "lstm" else zeros
        h_all, c_all = hx if self.cell == "lstm" else (hx, None)
        layer_input, finals_h, finals_c = x.transpose(0, 1), [], []
        for layer in range(self.layers):
            rows = slice(layer * self.directions, (layer + 1) * self.directions)
            c0 = None if c_all is None else c_all[rows]
            y, h_n, c_n = torch.ops.edgernn.rnn_layer(
                layer_input, lengths, *self._weights(layer), h_all[rows], c0, self.cell, self.hidden
            )
            layer_input = y.permute(0, 2, 1, 3).reshape(steps, batch, -1)
            finals_h.append(h_n)
            finals_c.append(c_n)
        h_n = torch.cat(finals_h)
        final = (h_n, torch.cat(finals_c)) if self.cell == "lstm" else h_n
        return layer_input.transpose(0, 1), final

    def _weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(getattr(self, f"{name}{layer}") for name in "wrb")


class ExportableEncoder(nn.Module):
    """``RecurrentEncoder`` with the same call, without ``pack_padded_sequence``."""

    def __init__(self, encoder: RecurrentEncoder):
        super().__init__()
        self.spec = encoder.spec
        self.embedding = encoder.embedding
        self.rnn = ExportableRNN(encoder.rnn)
        self.output_size = encoder.output_size

    def forward(
        self, inputs: Tensor, lengths: Tensor, state: RecurrentState | None = None
    ) -> tuple[Tensor, RecurrentState]:
        embedded = self.embedding(inputs) if self.embedding is not None else inputs
        return self.rnn(embedded, state, lengths)


def exportable(model: nn.Module) -> nn.Module:
    """A copy of a zoo model, in eval mode, whose recurrent layers export to ONNX nodes.

    Args:
        model: any model ``build_model`` makes; it is not modified.

    Returns:
        The copy; same forward methods and outputs (up to float rounding).
    """
    model = copy.deepcopy(model).eval()
    model.encoder = ExportableEncoder(model.encoder)
    if model.spec.task == "seq2seq":
        model.decoder = ExportableRNN(model.decoder)
    return model


class EncoderGraph(nn.Module):
    """Seq2seq source side: memory, its mask and the decoder's initial state."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, src, src_lengths):
        memory, mask, state = self.model.encode(src, src_lengths)
        return (memory, mask, *state)


class DecoderGraph(nn.Module):
    """Seq2seq target side: one ``decode_step``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens, memory, mask, state_h, state_c=None):
        state = (state_h,) if state_c is None else (state_h, state_c)
        logits, new_state = self.model.decode_step(tokens, state, memory, mask)
        return (logits, *new_state)


@dataclass
class Graph:
    """One ONNX file to write: the module, how to trace it, and what its tensors mean."""

    role: str  # model | step | encoder | decoder
    module: nn.Module
    args: tuple[Tensor, ...]  # example inputs, in forward order
    inputs: list[str]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]]  # input name -> axis -> symbolic dim name
    recurrent_nodes: int  # ONNX LSTM/GRU/RNN nodes the graph must hold
    states: list[dict] = field(default_factory=list)  # streaming state tensors, for the manifest
    derive: str | None = None  # made from this role's ONNX graph instead of traced (surgery.py)


def build_graphs(model: nn.Module) -> list[Graph]:
    """Every graph a bundle for ``model`` holds: the full model, plus streaming graphs.

    Args:
        model: a zoo model (not modified).

    Returns:
        ``model``, or for unidirectional models whose result can be streamed ``step`` and a
        ``model`` derived from it; ``encoder`` and ``decoder`` for seq2seq. A graph comes
        after the one it derives from.

    Example::

        roles = [graph.role for graph in build_graphs(model)]   # ["step", "model"]
    """
    spec, ready = model.spec, exportable(model)
    if spec.task == "seq2seq":
        return [_encoder_graph(ready), _decoder_graph(ready)]
    if streamable(spec):
        full = _model_graph(ready)
        full.derive = "step"
        return [_step_graph(ready), full]
    return [_model_graph(ready)]


def streamable(spec: ModelSpec) -> bool:
    """Whether a step graph exists: every one-directional model but seq2seq (which has its own
    encoder and one-step decoder graphs). A backward direction needs the whole sequence."""
    return spec.task != "seq2seq" and not spec.bidirectional


def example_inputs(spec: ModelSpec, lengths: tuple[int, ...], seed: int = 0) -> Tensor:
    """Padded random inputs: token ids (B, T) or features (B, T, F), zero at padding."""
    gen = torch.Generator().manual_seed(seed)
    shape = (len(lengths), max(lengths))
    if spec.input_size:
        values = torch.randn(*shape, spec.input_size, generator=gen)
    else:
        values = torch.randint(1, spec.vocab_size, shape, generator=gen)
    mask = torch.arange(shape[1]).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return values * (mask.unsqueeze(-1) if spec.input_size else mask)


SEQUENCE_AXES = {"inputs": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}


def _state_names(spec: ModelSpec) -> list[str]:
    return list(STATE_NAMES[: 2 if spec.cell == "lstm" else 1])


def _result_name(spec: ModelSpec) -> str:
    return "outputs" if spec.task == "regress" else "logits"


def _states(
    spec: ModelSpec, seed: int, pooled: bool = False
) -> tuple[list[dict], tuple[Tensor, ...], dict]:
    # Streaming and decoder state: (layers, batch, hidden) per recurrent tensor; both graphs
    # are unidirectional, so layers * directions is just layers. Pooled streaming first adds
    # the running pool (1, batch, hidden) and its step count (1, batch, 1).
    shapes = {}
    if pooled:
        pool, steps = POOL_STATE_NAMES
        shapes = {pool: [1, "batch", spec.hidden], steps: [1, "batch", 1]}
    shapes |= {name: [spec.layers, "batch", spec.hidden] for name in _state_names(spec)}
    states = [
        {"input": name, "output": f"{name}_out", "shape": shape} for name, shape in shapes.items()
    ]
    gen, batch = torch.Generator().manual_seed(seed), len(EXAMPLE_LENGTHS)
    values = {
        name: torch.randn([batch if d == "batch" else d for d in shape], generator=gen)
        for name, shape in shapes.items()
    }
    if pooled:  # a state some steps into the sequence: a positive count of steps
        values[POOL_STATE_NAMES[1]] = torch.full((1, batch, 1), 3.0)
    return states, tuple(values.values()), {name: {1: "batch"} for name in shapes}


def _model_graph(model: nn.Module) -> Graph:
    spec = model.spec
    args = (example_inputs(spec, EXAMPLE_LENGTHS), torch.tensor(EXAMPLE_LENGTHS))
    return Graph(
        "model", model, args, ["inputs", "lengths"], [_result_name(spec)], SEQUENCE_AXES,
        spec.layers,
    )  # fmt: skip


def _step_graph(model: nn.Module) -> Graph:
    spec = model.spec
    pooled = spec.task in ("classify", "regress") and spec.pooling != "last"
    states, values, state_axes = _states(spec, seed=1, pooled=pooled)
    names = [state["input"] for state in states]
    args = (example_inputs(spec, EXAMPLE_LENGTHS), torch.tensor(EXAMPLE_LENGTHS), *values)
    outputs = [_result_name(spec)] + [state["output"] for state in states]
    module = PooledStepGraph(model) if pooled else StepGraph(model)
    return Graph(
        "step", module, args, ["inputs", "lengths", *names], outputs,
        SEQUENCE_AXES | state_axes, spec.layers, states,
    )  # fmt: skip


def _encoder_graph(model: nn.Module) -> Graph:
    spec = model.spec
    args = (example_inputs(spec, EXAMPLE_LENGTHS), torch.tensor(EXAMPLE_LENGTHS))
    dynamic = {"src": {0: "batch", 1: "src_time"}, "src_lengths": {0: "batch"}}
    outputs = ["memory", "mask", *_state_names(spec)]
    return Graph(
        "encoder", EncoderGraph(model), args, ["src", "src_lengths"], outputs, dynamic,
        spec.layers,
    )  # fmt: skip


def _decoder_graph(model: nn.Module) -> Graph:
    spec = model.spec
    states, values, state_axes = _states(spec, seed=2)
    names = [state["input"] for state in states]
    gen = torch.Generator().manual_seed(3)
    src_len = max(EXAMPLE_LENGTHS)
    memory = torch.randn(len(EXAMPLE_LENGTHS), src_len, model.encoder.output_size, generator=gen)
    mask = torch.arange(src_len).unsqueeze(0) < torch.tensor(EXAMPLE_LENGTHS).unsqueeze(1)
    tokens = torch.randint(4, spec.num_outputs, (len(EXAMPLE_LENGTHS),), generator=gen)
    dynamic = {"tokens": {0: "batch"}, "memory": {0: "batch", 1: "src_time"}}
    dynamic |= {"mask": {0: "batch", 1: "src_time"}} | state_axes
    outputs = ["logits"] + [state["output"] for state in states]
    return Graph(
        "decoder", DecoderGraph(model), (tokens, memory, mask, *values),
        ["tokens", "memory", "mask", *names], outputs, dynamic, spec.layers, states,
    )  # fmt: skip
