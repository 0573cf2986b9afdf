"""One recurrent layer as a custom op that exports to exactly one ONNX LSTM/GRU/RNN node.

Why a custom op: neither exporter handles the zoo's encoder as it stands (torch 2.13,
onnxscript 0.7). ``torch.export`` cannot trace ``pack_padded_sequence`` (data-dependent
sizes), and the TorchScript exporter crashes in its ONNX peephole pass on the packed
``enforce_sorted=False`` graph. Without packing, torchlib maps ``aten.lstm``/``aten.gru`` to
ONNX nodes but drops the lengths, and has no ``aten.rnn_tanh`` at all. ONNX's own recurrent
ops take ``sequence_lens``, which is what packing means: padded steps are skipped, ``Y_h`` is
each sequence's state at its last valid step, and the reverse direction starts at that
step. So every layer becomes ``edgernn::rnn_layer`` whose ONNX translation is one node with
``sequence_lens``; the weights are stored once, already in ONNX gate order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# PyTorch gate order -> ONNX gate order: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
CELL_OF = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}
ONNX_RECURRENT = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _reorder(tensor: Tensor, order: tuple[int, ...]) -> Tensor:
    chunks = tensor.chunk(len(order))
    return torch.cat([chunks[index] for index in order])


def onnx_weights(rnn: nn.RNNBase, layer: int) -> tuple[Tensor, Tensor, Tensor]:
    """One layer's weights in ONNX layout: W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H).

    Args:
        rnn: a PyTorch LSTM, GRU or (tanh) RNN.
        layer: which stacked layer.

    Returns:
        ``(W, R, B)`` with gates in ONNX order, directions forward first.
    """
    order = GATE_ORDER[CELL_OF[type(rnn)]]
    suffixes = ["", "_reverse"] if rnn.bidirectional else [""]
    w, r, b = [], [], []
    for suffix in suffixes:
        name = f"l{layer}{suffix}"
        w.append(_reorder(getattr(rnn, f"weight_ih_{name}"), order))
        r.append(_reorder(getattr(rnn, f"weight_hh_{name}"), order))
        b_ih, b_hh = (getattr(rnn, f"bias_{kind}_{name}") for kind in ("ih", "hh"))
        b.append(torch.cat([_reorder(b_ih, order), _reorder(b_hh, order)]))
    return tuple(torch.stack(part).detach().clone() for part in (w, r, b))


def _inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(range(len(order)), key=lambda index: order[index]))


@torch.library.custom_op("edgernn::rnn_layer", mutates_args=())
def rnn_layer(
    x: Tensor,
    lengths: Tensor | None,
    w: Tensor,
    r: Tensor,
    b: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    cell: str,
    hidden: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """ONNX recurrent-op semantics in PyTorch (eager runs are for tracing and tests).

    Args:
        x: (T, B, I) time-major input.
        lengths: (B,) int64 valid lengths, or None when every sequence fills T.
        w, r, b: ONNX-layout weights from ``onnx_weights``.
        h0: (D, B, H) initial hidden state; c0 likewise for LSTM, else None.
        cell: lstm, gru or rnn.
        hidden: H.

    Returns:
        ``(Y, Y_h, Y_c)``: Y (T, D, B, H) zero at padded steps, Y_h and Y_c (D, B, H);
        Y_c repeats Y_h for cells without a cell state.
    """
    directions, steps, batch = w.size(0), x.size(0), x.size(1)
    module = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](
        w.size(2), hidden, bidirectional=directions == 2
    )
    back = _inverse(GATE_ORDER[cell])
    state = {}
    for direction, suffix in enumerate(["", "_reverse"][:directions]):
        b_ih, b_hh = b[direction].chunk(2)
        state |= {
            f"weight_ih_l0{suffix}": _reorder(w[direction], back),
            f"weight_hh_l0{suffix}": _reorder(r[direction], back),
            f"bias_ih_l0{suffix}": _reorder(b_ih, back),
            f"bias_hh_l0{suffix}": _reorder(b_hh, back),
        }
    module.load_state_dict(state)
    if lengths is None:
        lengths = torch.full((batch,), steps, dtype=torch.long)
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    out, final = module(packed, (h0, c0) if cell == "lstm" else h0)
    y, _ = pad_packed_sequence(out, total_length=steps)
    y = y.view(steps, batch, directions, hidden).permute(0, 2, 1, 3).contiguous()
    h_n, c_n = final if cell == "lstm" else (final, final)
    return y, h_n, c_n.clone()


@rnn_layer.register_fake
def _rnn_layer_fake(x, lengths, w, r, b, h0, c0, cell, hidden):
    directions = w.size(0)
    state = x.new_empty(directions, x.size(1), hidden)
    return x.new_empty(x.size(0), directions, x.size(1), hidden), state, state.clone()


def _attributes(bidirectional: bool, cell: str, hidden: int) -> dict:
    direction = "bidirectional" if bidirectional else "forward"
    attributes = {"hidden_size": hidden, "direction": direction}
    if cell == "gru":
        attributes["linear_before_reset"] = 1  # PyTorch's GRU formula applies r after W_hn h
    return attributes


def onnx_rnn_layer(x, lengths, w, r, b, h0, c0, cell: str, hidden: int):
    """Translation of ``edgernn::rnn_layer`` for the dynamo exporter (onnxscript, opset 18)."""
    from onnxscript import opset18 as op

    seq_lens = None if lengths is None else op.Cast(lengths, to=6)  # ONNX wants int32
    attributes = _attributes(w.shape[0] == 2, cell, hidden)
    if cell == "lstm":
        return op.LSTM(x, w, r, b, seq_lens, h0, c0, **attributes)
    node = op.GRU if cell == "gru" else op.RNN
    y, y_h = node(x, w, r, b, seq_lens, h0, **attributes)
    return y, y_h, op.Identity(y_h)


def torchscript_rnn_layer(g, x, lengths, w, r, b, h0, c0, cell, hidden):
    """Symbolic of ``edgernn::rnn_layer`` for the TorchScript exporter (the fallback path)."""
    from torch.onnx import symbolic_helper

    cell = symbolic_helper._maybe_get_const(cell, "s")
    hidden = symbolic_helper._maybe_get_const(hidden, "i")
    if symbolic_helper._is_none(lengths):
        seq_lens = g.op("prim::Constant").setType(torch._C.OptionalType.ofTensor())
    else:
        seq_lens = g.op("Cast", lengths, to_i=6)
    attributes = _attributes(w.type().sizes()[0] == 2, cell, hidden)
    suffixed = {f"{k}_{'s' if isinstance(v, str) else 'i'}": v for k, v in attributes.items()}
    inputs = [x, w, r, b, seq_lens, h0] + ([c0] if cell == "lstm" else [])
    outputs = g.op(ONNX_RECURRENT[cell], *inputs, outputs=3 if cell == "lstm" else 2, **suffixed)
    return outputs if cell == "lstm" else (outputs[0], outputs[1], outputs[1])
