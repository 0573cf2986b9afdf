"""4-bit embedding tables: ``Gather`` on a V x E table -> ``com.microsoft::GatherBlockQuantized``.

A text model keeps most of its bytes in the embedding table; ``quantize_int8`` stores it as
int8 (1 byte per weight). With ``ExportConfig(embed_bits=4)`` each table row is cut into
blocks of ``block_size`` values along E, and each block stored as 4-bit codes with its own
fp32 scale and 4-bit zero point; ONNX Runtime's contrib op gathers the rows and dequantizes
only those, so the output is the same float tensor the Gather gave.

ONNX Runtime facts (the op schema in ORT 1.32, ``onnxruntime.capi`` ``get_all_operator_schema``,
and runs on ORT 1.19.2 / 1.20.1 / 1.32.0):

- Inputs ``data, indices, scales, zero_points``; attributes ``gather_axis`` (default 0),
  ``quantize_axis`` (default 1), ``block_size`` (default 128; a power of 2, at least 16).
  ``scales`` is ``(V, ceil(E / block_size))``: the last block of a row may be partial, so E
  need not be a multiple of the block (E = 10, 33, 48 run exactly). An out-of-range index
  gives a zero row instead of an error.
- ``data`` and ``zero_points`` are ONNX ``UINT4`` here (packed two per byte, the standard
  layout, IR version 10). The CPU kernel came with microsoft/onnxruntime#21630 (int4/uint4
  only) and first shipped in 1.20: 1.19.2 answers "not a registered function/op", 1.20.1 runs
  these graphs bit-exactly. ``uint8`` data with a ``bits`` attribute came later
  (#24239, #25214) and 1.20 rejects the attribute, so neither is used.
- Asymmetric codes (zero points) are used: on N(0, 1) rows at block 32 they give 8-20 %
  lower mean error than symmetric int4 for 4 more bits per block. Every block spans zero,
  so an all-zero row (the padding token's) stays exactly zero.

Measured once (ORT 1.32, 1 thread, 2-core x86 box): a 20000 x 64 table takes 1,280,328
bytes as int8 + ``DequantizeLinear`` and 820,365 (64 %) as 4-bit blocks of 32 (fp32:
5,120,138). The kernel dequantizes value by value (about 20 ns each): a lookup of 1 id takes
15 us (int8 17 us), of 1 x 50 ids 68 us (int8 22 us), of 32 x 50 ids 1.9 ms (int8 49 us);
more threads made it slower. In a whole classifier (LSTM 128, that table) batch 1 x 50 runs
as fast as with int8 tables (within noise, about 0.3 ms), batch 32 x 50 takes 8.1-8.9 ms
instead of 5.6-6.1 ms: 4 bits pay off for size and streaming, less for big batches.

A table shared with another node (a tied output layer reads it too) is left to int8: a
4-bit copy for the Gather plus the float table for the other node would be larger. So is a
table whose blocks' scales and zero points would make it larger than int8 (narrow rows:
E < 10 at any block size).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgernn.errors import EdgeRNNError
from edgernn.export.config import EMBED_BITS

BLOCK = 32  # values per block along a row; ORT wants a power of 2, at least 16
DOMAIN = "com.microsoft"
OP = "GatherBlockQuantized"
LEVELS = 15  # uint4 codes 0..15
UINT4_IR = 10  # the first ONNX IR version with 4-bit tensor types


def table_plan(model: onnx.ModelProto, embed_bits: int = 4, block_size: int = BLOCK) -> dict:
    """Each embedding Gather's bits in the int8 graph, and why a table stays int8.

    An embedding Gather reads a float32 rank-2 initializer along axis 0 with indices the
    graph computes (token ids); other Gathers are not listed. Nodes must be named
    (``quantize_int8`` names them first).

    Args:
        model: an fp32 graph (or one whose tables are still float).
        embed_bits: 4 or 8 (``ExportConfig.embed_bits``).
        block_size: values per 4-bit block.

    Returns:
        Node name -> ``{"bits": 4, "block_size": 32}`` or ``{"bits": 8}``, plus ``"why"``
        where 4 bits were asked for and the table stays int8.

    Raises:
        EdgeRNNError: ``embed_bits`` is not 4 or 8, or ORT does not take ``block_size``.

    Example::

        table_plan(fp32)   # {"node_embedding": {"bits": 4, "block_size": 32}}
    """
    if embed_bits not in EMBED_BITS:
        raise EdgeRNNError(f"embed_bits must be one of {EMBED_BITS}, got {embed_bits!r}")
    check_block_size(block_size)
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    uses = tensor_uses(model)
    plan = {}
    for node in model.graph.node:
        table = _table(node, weights)
        if table is None:
            continue
        why = _refusal(node, table, uses, block_size) if embed_bits == 4 else None
        if embed_bits == 4 and why is None:
            plan[node.name] = {"bits": 4, "block_size": block_size}
        else:
            plan[node.name] = {"bits": 8} | ({"why": why} if why else {})
    return plan


def four_bit_tables(
    model: onnx.ModelProto, block_size: int = BLOCK, only: Collection[str] | None = None
) -> list[str]:
    """Rewrite, in place, each embedding Gather ``table_plan`` allows into 4-bit blocks.

    Tables already int8 (ORT's quantizer ran on them) are not float and are left alone, so
    on an int8 graph this only changes the Gathers ``quantize_int8`` kept in float for it.

    Args:
        model: the graph to change; gains the ``com.microsoft`` opset and IR version 10.
        block_size: values per block along a row (a power of 2, at least 16).
        only: Gather node names to consider; None: every embedding Gather.

    Returns:
        The names of the Gathers now ``GatherBlockQuantized``.

    Example::

        four_bit_tables(fp32, block_size=32)   # ["node_embedding"]
    """
    plan = table_plan(model, 4, block_size)
    chosen = [name for name, entry in plan.items() if entry["bits"] == 4]
    chosen = [name for name in chosen if only is None or name in only]
    if not chosen:
        return []
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.name in chosen:
            _rewrite(model, node, numpy_helper.to_array(weights[node.input[0]]), block_size)
    _drop_unused(model)
    if DOMAIN not in {entry.domain for entry in model.opset_import}:
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    model.ir_version = max(model.ir_version, UINT4_IR)
    return chosen


def quantize_rows(table: np.ndarray, block_size: int) -> tuple[np.ndarray, ...]:
    """Asymmetric 4-bit blocks along each row of a (V, E) table.

    Args:
        table: float32 (V, E).
        block_size: values per block; the last block of a row may be partial.

    Returns:
        ``(codes, scales, zero_points)``: uint8 codes 0..15 (V, E), float32 scales and uint8
        zero points 0..15, both (V, ceil(E / block_size)).
    """
    rows, width = table.shape
    blocks = -(-width // block_size)
    padded = np.zeros((rows, blocks * block_size), np.float32)  # padding cannot widen a range
    padded[:, :width] = table
    padded = padded.reshape(rows, blocks, block_size)
    # Each block spans zero, so the zero point is a code and 0.0 dequantizes exactly.
    low, high = np.minimum(padded.min(-1), 0), np.maximum(padded.max(-1), 0)
    scales = ((high - low) / LEVELS).astype(np.float32)
    scales = np.where(scales > 0, scales, np.float32(1))  # all-zero block: any scale works
    zero_points = np.clip(np.round(-low / scales), 0, LEVELS)
    codes = np.clip(np.round(padded / scales[..., None]) + zero_points[..., None], 0, LEVELS)
    codes = codes.reshape(rows, -1)[:, :width]
    return codes.astype(np.uint8), scales, zero_points.astype(np.uint8)


def dequantize_rows(
    codes: np.ndarray, scales: np.ndarray, zero_points: np.ndarray, block_size: int
) -> np.ndarray:
    """The float32 table ``GatherBlockQuantized`` computes from ``quantize_rows``' output."""
    width = codes.shape[1]
    spread = np.repeat(scales, block_size, axis=1)[:, :width]
    zero = np.repeat(zero_points, block_size, axis=1)[:, :width].astype(np.float32)
    return ((codes.astype(np.float32) - zero) * spread).astype(np.float32)


def check_block_size(block_size: int) -> None:
    """Raise ``EdgeRNNError`` unless ORT accepts the block size (a power of 2, >= 16)."""
    power_of_2 = isinstance(block_size, int) and block_size & (block_size - 1) == 0
    if not (power_of_2 and block_size >= 16):
        raise EdgeRNNError(
            f"4-bit block size must be a power of 2 and at least 16 (ONNX Runtime's "
            f"GatherBlockQuantized), got {block_size!r}"
        )


def four_bit_bytes(rows: int, width: int, block_size: int) -> int:
    """Bytes of a (rows, width) table as 4-bit codes, fp32 scales and 4-bit zero points."""
    blocks = rows * -(-width // block_size)
    return -(-rows * width // 2) + 4 * blocks + -(-blocks // 2)


def _table(node: onnx.NodeProto, weights: dict) -> onnx.TensorProto | None:
    # The float32 rank-2 initializer an embedding Gather reads; None for any other node.
    if node.op_type != "Gather" or node.domain not in ("", "ai.onnx"):
        return None
    table = weights.get(node.input[0])
    float_table = table is not None and table.data_type == onnx.TensorProto.FLOAT
    if not float_table or len(table.dims) != 2 or node.input[1] in weights:
        return None  # constant indices: constant arithmetic, not a lookup by token ids
    return table


def _refusal(node: onnx.NodeProto, table: onnx.TensorProto, uses: Counter, block: int):
    # Why this table stays int8 under embed_bits=4; None: it can be 4-bit.
    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
    if axis not in (0, -2):
        return "it gathers along the embedding width (axis 1), not rows"
    if uses[node.input[0]] > 1:
        return "the table is shared with another node (a tied layer); a 4-bit copy would add bytes"
    rows, width = table.dims
    if four_bit_bytes(rows, width, block) >= rows * width:
        return f"rows of {width} values: 4-bit blocks with scales would not be smaller than int8"
    return None


def tensor_uses(model: onnx.ModelProto) -> Counter:
    # How many node inputs (subgraph bodies included) and graph outputs name each tensor.
    uses, pending = Counter(output.name for output in model.graph.output), [model.graph]
    while pending:
        graph = pending.pop()
        for node in graph.node:
            uses.update(node.input)
            for attr in node.attribute:
                pending += [attr.g] if attr.HasField("g") else []
                pending += list(attr.graphs)
    return uses


def _rewrite(model: onnx.ModelProto, node: onnx.NodeProto, table: np.ndarray, block: int) -> None:
    codes, scales, zero_points = quantize_rows(table, block)
    names = [f"{node.input[0]}_uint4", f"{node.input[0]}_scale4", f"{node.input[0]}_zero4"]
    model.graph.initializer.extend(
        [_uint4(codes, names[0]), numpy_helper.from_array(scales, names[1])]
        + [_uint4(zero_points, names[2])]
    )
    indices = node.input[1]
    del node.input[:]
    node.input.extend([names[0], indices, names[1], names[2]])
    del node.attribute[:]
    # No "bits" attribute: 4 is its default, and ORT 1.20 (the first to run the op) rejects it.
    node.attribute.extend(
        [
            helper.make_attribute("gather_axis", 0),
            helper.make_attribute("quantize_axis", 1),
            helper.make_attribute("block_size", block),
        ]
    )
    node.op_type, node.domain = OP, DOMAIN


def _uint4(codes: np.ndarray, name: str) -> onnx.TensorProto:
    # ONNX's 4-bit layout: the flattened values two per byte, the first in the low nibble.
    flat = np.zeros(codes.size + codes.size % 2, np.uint8)
    flat[: codes.size] = codes.ravel()
    packed = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)
    return helper.make_tensor(name, onnx.TensorProto.UINT4, codes.shape, packed.tobytes(), True)


def _drop_unused(model: onnx.ModelProto) -> None:
    uses = tensor_uses(model)
    keep = [tensor for tensor in model.graph.initializer if uses[tensor.name]]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
