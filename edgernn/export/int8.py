"""int8 ONNX: ONNX Runtime dynamic quantization, plus weight-only int8 where ORT has no kernel.

``quantize_dynamic`` turns LSTM nodes into ``DynamicQuantizeLSTM`` (int8 weights, integer
gate matmuls), MatMul with a constant weight into ``DynamicQuantizeMatMul``/``MatMulInteger``
and embedding ``Gather`` into an int8 table plus ``DequantizeLinear``. What is added here:

- ``Gemm`` is not in ORT's dynamic registry, and the exporters emit it for every Linear on
  2-D input (classifier heads, seq2seq decoder projections); such a Gemm is rewritten as
  MatMul + Add first (same arithmetic, same node name).
- *Weight-only* int8: W and R of GRU and RNN nodes (ORT has no quantized kernel for them),
  and of any LSTM or MatMul named in ``weight_only``, are stored as int8 initializers
  (symmetric, one scale per output row) and turned back into float by ``Cast`` + ``Mul``
  feeding the unchanged node, so the file holds 1 byte per weight and the node computes in
  fp32. The integer kernels also quantize their *input* per call (one uint8 scale per
  tensor); where that costs accuracy (measured: a forecasting LSTM fed raw numeric
  features, +7% MSE), weight-only keeps the size and drops the activation error.
  ``export_bundle`` picks those nodes by measuring each integer node alone on the valid
  split. Measured (``benchmarks/export_int8.py``, 1 thread): the ``Cast``+``Mul`` form is
  constant-folded by ORT when the session starts and runs as fast as fp32; the QDQ form
  (``DequantizeLinear``) is *not* folded by default, so it dequantizes on every call: 6-20%
  slower than fp32 for GRU, 0-10% for RNN (it matches fp32 only when the app sets the
  session option ``session.disable_quant_qdq=1``). Both give the same file size.
- Integer kernels make results depend on the call: ``DynamicQuantizeLSTM`` quantizes its
  whole input tensor (every row and step, padding included) with one uint8 scale, and
  ``DynamicQuantizeLinear`` does the same before ``MatMulInteger``, so batch mates, padding
  and how a stream is chunked move an example's int8 logits. Measured on trained LSTM
  teachers (``benchmarks/int8_batching.py``): 0.21-0.27 batch of 32 vs alone, 0.25-0.34
  one token per call vs one chunk; between those modes the test metric moved 0.1 point
  (sentiment), 0.05 % (char LM), 0.2 % of seq2seq outputs, but 0.19 F1 (NER) and 1.2 % MSE
  (forecast with an integer LSTM on raw features). fp32 and weight-only int8 are exactly
  batch-independent. So ``export_bundle`` scores each integer node in padded batches *and*
  at batch 1 (the worse decides; it makes the forecast LSTM weight-only), records per int8
  file whether it is batch-dependent and how much it measured (``batch_dependence``), and
  ``ExportConfig(int8_batch_independent=True)`` makes every node weight-only. The integer
  kernels' gain is on whole sequences (batch 1: 1.2x at hidden 64, 1.6-2x at hidden 128);
  a one-token streaming step is no faster than weight-only.
- Integer kernels get 7-bit weights (``reduce_range``). On x86 CPUs without VNNI (AVX2
  only) ORT multiplies uint8 activations by int8 weights with ``vpmaddubsw``, which adds
  pairs of products in int16 and saturates: with full-range weights (up to 127) a pair
  reaches 2 * 255 * 127 = 64770 > 32767. Measured on such a CPU (ORT 1.32): a MatMul
  output off by a third of its range, int8 logits off by 0.09 where 7-bit weights give
  0.005. 7 bits (at most 64) cannot saturate (2 * 255 * 64 < 32767); a bundle runs on
  whatever CPU the app has, so the file is made safe for all of them.
- Graphs of users' own modules (``edgernn.export.own``, or a graph exported by hand) may
  hold weights computed from constants instead of stored ones; ``edgernn.export.fold``
  stores them first, since ORT quantizes only stored weights. A graph whose recurrent
  weights are not constants cannot be made int8: one ``EdgeRNNError`` says so.
- ``embed_bits=4`` stores embedding tables as 4-bit blocks (``edgernn.export.int4``): their
  Gathers are kept out of ORT's quantizer, then rewritten to ``GatherBlockQuantized``.
- The torch exporter's ``ExportedProgram`` signature (graph metadata) is dropped: it
  describes the fp32 program, not the int8 graph, and on a tiny model it is 3% of the file.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections import Counter
from collections.abc import Collection
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgernn.errors import EdgeRNNError
from edgernn.export.fold import (
    KEEP_FP32,
    check_recurrent_weights,
    fold_weights,
    one_line,
    unshare_lstm_weights,
)
from edgernn.export.int4 import four_bit_tables, table_plan, tensor_uses

INTEGER_OPS = ("LSTM", "MatMul")  # ORT runs these on int8 weights *and* activations
WEIGHT_ONLY_OPS = ("GRU", "RNN")  # no integer kernel in ORT: always weight-only
BATCH = 32  # rows per padded, length-sorted batch in batch_dependence


def quantize_int8(
    model: onnx.ModelProto,
    per_channel: bool = False,
    recurrent_form: str = "cast",
    weight_only: Collection[str] = (),
    embed_bits: int = 8,
) -> onnx.ModelProto:
    """Dynamic int8 version of an exported fp32 graph (inputs and outputs unchanged).

    Args:
        model: a checked fp32 graph from ``to_onnx``.
        per_channel: one scale per output channel instead of one per weight tensor.
        recurrent_form: how weight-only int8 weights become float: ``cast`` (Cast + Mul) or
            ``dequantize_linear``; see the module docstring for why ``cast`` is the default.
        weight_only: names of LSTM / MatMul nodes (``integer_nodes``) that compute in fp32
            from int8 weights instead of running ORT's integer kernel (GRU/RNN nodes may be
            named too; they always do).
        embed_bits: 4: embedding tables as 4-bit blocks where ``embedding_tables`` allows
            (``edgernn.export.int4``); 8: int8 like every other weight.

    Returns:
        The int8 model; weights are int8 everywhere (4-bit tables where asked),
        activations stay float between nodes.

    Raises:
        EdgeRNNError: ``weight_only`` names an unknown node, ``embed_bits`` is not 4 or 8,
            or the graph cannot be made int8 (a recurrent weight the graph computes from
            its inputs, a quantizer failure); the fp32 graph is still good.

    Example::

        int8 = quantize_int8(fp32_model, weight_only={"node_rnn_layer__2"})
    """
    source = _prepare(model)
    check_recurrent_weights(source)
    always = {node.name for node in source.graph.node if node.op_type in WEIGHT_ONLY_OPS}
    unknown = set(weight_only) - set(_candidates(source)) - always
    if unknown:
        raise EdgeRNNError(f"weight_only names no LSTM/MatMul/GRU/RNN node: {sorted(unknown)}")
    # 4-bit tables skip ORT's quantizer: re-quantizing its int8 table would add its error.
    plan = table_plan(source, embed_bits)
    tables = [name for name, entry in plan.items() if entry["bits"] == 4]
    rows = _row_tables(source, plan) if per_channel else []
    quantized = _ort_dynamic(source, per_channel, exclude=[*weight_only, *tables, *rows])
    _int8_weights(quantized, recurrent_form, set(weight_only))
    _row_scaled_tables(quantized, set(rows))
    four_bit_tables(quantized, only=tables)
    _strip(quantized)
    _audit(model, quantized, set(weight_only))
    return quantized


def quantize_node(model: onnx.ModelProto, node: str, per_channel: bool = False) -> onnx.ModelProto:
    """The fp32 graph with only ``node`` on ORT's integer kernel: its sensitivity, alone.

    Example::

        alone = quantize_node(fp32_model, "node_rnn_layer__2")
    """
    source = _prepare(model)
    if node not in _candidates(source):
        raise EdgeRNNError(f"{node!r} is not an LSTM/MatMul node with a constant weight")
    quantized = _ort_dynamic(source, per_channel, only=[node])
    _strip(quantized)
    return quantized


def integer_nodes(model: onnx.ModelProto) -> dict[str, str]:
    """Node name -> op of the nodes ``quantize_int8`` runs on ORT's integer kernels.

    LSTM nodes and MatMul (or Gemm, which becomes MatMul) with a constant float weight; the
    names are those ``quantize_int8(weight_only=...)`` accepts.
    """
    return _candidates(_prepare(model))


def embedding_tables(model: onnx.ModelProto, embed_bits: int = 8) -> dict[str, dict]:
    """Embedding Gather name -> its bits in ``quantize_int8(model, embed_bits=...)``'s graph.

    ``{"bits": 4, "block_size": 32}``, or ``{"bits": 8}`` with a ``"why"`` where 4 bits were
    asked for and the table cannot take them (``edgernn.export.int4.table_plan``); the
    manifest records it per int8 file.
    """
    return table_plan(_prepare(model), embed_bits)


def batch_dependence(
    sessions: dict, examples: list, states: list[dict] = (), batch: int = BATCH
) -> float:
    """Max abs difference of a graph set's outputs in padded batches vs each example alone.

    What the integer kernels' per-call activation scale does (module docstring): 0.0 exactly
    for fp32 and weight-only int8 graphs. ``model``: its output on valid steps (tag, lm) or
    per example; ``encoder`` + ``decoder``: the decoder's logits, teacher-forced on the
    targets, both graphs in the given precision.

    Args:
        sessions: role -> ONNX Runtime session: ``model``, or ``encoder`` and ``decoder``.
        examples: encoded ``(inputs, target)`` pairs (tensors or arrays).
        states: the decoder's state inputs and outputs (the manifest's ``states``).
        batch: rows per padded batch.

    Example::

        batch_dependence({"model": session(int8)}, examples)   # 0.011
    """
    if "decoder" in sessions:
        run = functools.partial(_teacher_forced, states={s["input"]: s["output"] for s in states})
    else:
        run = _model_rows
    rows = [(np.asarray(x), np.asarray(y)) for x, y in examples]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # as evaluation batches
    worst = 0.0
    for start in range(0, len(order), batch):
        group = [rows[i] for i in order[start : start + batch]]
        together = run(sessions, group)
        for index, example in enumerate(group):
            alone = run(sessions, [example])[0]
            worst = max(worst, float(np.abs(together[index] - alone).max()))
    return worst


def _padded(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(row) for row in sequences], np.int64)
    padded = np.zeros((len(sequences), int(lengths.max()), *sequences[0].shape[1:]))
    for index, row in enumerate(sequences):
        padded[index, : len(row)] = row
    return padded.astype(sequences[0].dtype), lengths


def _model_rows(sessions: dict, group: list) -> list[np.ndarray]:
    inputs, lengths = _padded([x for x, _ in group])
    out = sessions["model"].run(None, {"inputs": inputs, "lengths": lengths})[0]
    per_step = out.ndim == 3 and out.shape[1] == inputs.shape[1]  # tag, lm: (B, T, V)
    return [row[:length] if per_step else row for row, length in zip(out, lengths, strict=True)]


def _teacher_forced(sessions: dict, group: list, states: dict[str, str]) -> list[np.ndarray]:
    src, src_lengths = _padded([x for x, _ in group])
    targets, target_lengths = _padded([y for _, y in group])  # <bos> ... <eos>
    encoder, decoder = sessions["encoder"], sessions["decoder"]
    encoded = dict(
        zip([o.name for o in encoder.get_outputs()], encoder.run(None, {"src": src,
            "src_lengths": src_lengths}), strict=True)
    )  # fmt: skip
    names = [value.name for value in decoder.get_inputs()]
    feeds = {name: encoded[name] for name in names if name in encoded}
    outputs = [value.name for value in decoder.get_outputs()]
    steps = []
    for t in range(targets.shape[1] - 1):
        values = dict(
            zip(outputs, decoder.run(None, feeds | {"tokens": targets[:, t]}), strict=True)
        )
        steps.append(values[outputs[0]])
        feeds |= {name: values[output] for name, output in states.items()}
    logits = np.stack(steps, axis=1)
    return [row[: n - 1] for row, n in zip(logits, target_lengths, strict=True)]


def _candidates(source: onnx.ModelProto) -> dict[str, str]:
    weights = _initializers(source)
    return {node.name: node.op_type for node in source.graph.node if _integer(node, weights)}


def _integer(node: onnx.NodeProto, weights: dict[str, onnx.TensorProto]) -> bool:
    weight = weights.get(node.input[1]) if len(node.input) > 1 else None
    float_weight = weight is not None and weight.data_type == onnx.TensorProto.FLOAT
    return node.op_type in INTEGER_OPS and float_weight


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {tensor.name: tensor for tensor in model.graph.initializer}


def _prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    # A copy with computed weights stored (fold.py), Gemm as MatMul + Add, one W/R per LSTM
    # and every integer candidate named (ORT selects and excludes nodes by name); the names
    # stay stable across a step graph and its model graph. Gathers too: 4-bit tables are
    # kept out of ORT's quantizer by name.
    model = _gemm_to_matmul(fold_weights(model))
    unshare_lstm_weights(model)
    weights = _initializers(model)
    for node in model.graph.node:
        if not node.name and (_integer(node, weights) or node.op_type == "Gather"):
            node.name = f"{node.op_type}_{node.output[0]}"
    return model


def _gemm_to_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights, nodes = _initializers(model), []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA")
        if node.op_type != "Gemm" or node.input[1] not in weights or not plain:
            nodes.append(node)
            continue
        matrix = numpy_helper.to_array(weights[node.input[1]])
        name = f"{node.input[1]}_matmul"
        model.graph.initializer.append(
            numpy_helper.from_array(matrix.T.copy() if attrs.get("transB") else matrix, name)
        )
        product = f"{node.output[0]}_product" if len(node.input) > 2 else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], node.name))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_initializers(model)
    return model


def _ort_dynamic(
    source: onnx.ModelProto, per_channel: bool, exclude: list[str] = (), only: list[str] = ()
) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as temp:
        output = Path(temp) / "int8.onnx"
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # "consider pre-processing" advice for image models
        try:
            quantize_dynamic(
                source, output, per_channel=per_channel, weight_type=QuantType.QInt8,
                reduce_range=True,  # 7-bit weights: no int16 saturation (module docstring)
                nodes_to_quantize=list(only), nodes_to_exclude=list(exclude),
            )  # fmt: skip
        except Exception as error:  # ORT's quantizer asserts and raises in many ways
            raise EdgeRNNError(
                f"int8: ONNX Runtime's quantizer failed ({one_line(error)}); {KEEP_FP32}"
            ) from None
        finally:
            logging.disable(previous)
        return onnx.load(output)


def _symmetric_int8(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Symmetric (zero point 0) so the dequantized zero is exact, one scale per output row
    # (axis 1): the gate/unit row of a (directions, rows, inputs) W/R, the column of a
    # MatMul weight.
    reduce = tuple(axis for axis in range(weight.ndim) if axis != 1)
    scale = np.abs(weight).max(axis=reduce) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    shaped = _channel_shape(scale, weight.ndim)
    return np.clip(np.round(weight / shaped), -127, 127).astype(np.int8), scale


def _channel_shape(scale: np.ndarray, ndim: int) -> np.ndarray:
    return scale.reshape([-1 if axis == 1 else 1 for axis in range(ndim)])


def _int8_weights(model: onnx.ModelProto, form: str, names: set[str]) -> None:
    # Weight-only int8 for GRU/RNN and for the named LSTM/MatMul nodes ORT left in float,
    # one scale per output row whatever per_channel says (per_channel is ORT's choice for its
    # integer kernels): 4 bytes a row, and a small recurrent layer needs it. Measured on the
    # seqsum_rnn recipe's student (hidden 30): one scale per tensor took the test MSE from
    # 0.0562 (fp32) to 0.0744, one per row to 0.0576.
    weights, added, done = _initializers(model), [], set()
    for node in model.graph.node:
        if node.op_type in WEIGHT_ONLY_OPS or node.name in names:
            slots = (1, 2) if node.op_type in ("LSTM", *WEIGHT_ONLY_OPS) else (1,)
            for slot in slots:  # W and R (or the MatMul weight); biases stay fp32 (tiny)
                name = node.input[slot]
                node.input[slot] = f"{name}_dequantized"
                if name in done:  # a layer called twice: its nodes share one int8 copy
                    continue
                done.add(name)
                weight = numpy_helper.to_array(weights[name])
                quantized, scale = _symmetric_int8(weight)
                added += _DEQUANTIZE[form](model, name, quantized, scale)
    # Constant-input nodes first keeps the graph topologically sorted.
    nodes = added + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_initializers(model)


def _row_tables(source: onnx.ModelProto, plan: dict) -> list[str]:
    # ORT quantizes an embedding table per tensor whatever per_channel says; these 8-bit
    # tables (one Gather along rows reads each) get one scale per row (token) here instead,
    # the int8 the C target computes too. A shared (tied) table is left to ORT.
    uses = tensor_uses(source)
    return [
        node.name
        for node in source.graph.node
        if plan.get(node.name, {}).get("bits") == 8
        and uses[node.input[0]] == 1
        and _gather_axis(node) in (0, -2)
    ]


def _gather_axis(node: onnx.NodeProto) -> int:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)


def _row_scaled_tables(model: onnx.ModelProto, names: set[str]) -> None:
    # Gather the int8 rows and their scales by id, then Cast + Mul: the table stays int8 in
    # memory and only the rows looked up become float.
    weights, nodes = _initializers(model), []
    for node in model.graph.node:
        nodes.append(node)
        if node.name not in names:
            continue
        table, ids, output = node.input[0], node.input[1], node.output[0]
        to_float = {"to": onnx.TensorProto.FLOAT}
        # Transposed, a (V, E) table's rows are axis 1: _symmetric_int8's output rows.
        quantized, scale = _symmetric_int8(numpy_helper.to_array(weights[table]).T)
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(np.ascontiguousarray(quantized.T), f"{table}_int8"),
                numpy_helper.from_array(scale[:, None], f"{table}_row_scale"),
            ]
        )
        node.input[:] = [f"{table}_int8", ids]
        node.output[:] = [f"{output}_int8"]
        nodes += [
            helper.make_node("Gather", [f"{table}_row_scale", ids], [f"{output}_scale"]),
            helper.make_node("Cast", [f"{output}_int8"], [f"{output}_float"], **to_float),
            helper.make_node("Mul", [f"{output}_float", f"{output}_scale"], [output]),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_initializers(model)


def _cast_and_scale(model, name, quantized, scale) -> list[onnx.NodeProto]:
    # Plain Cast + Mul on initializers: every ORT build constant-folds it at session start.
    shaped = _channel_shape(scale, quantized.ndim)
    names = [f"{name}_int8", f"{name}_scale", f"{name}_float"]
    model.graph.initializer.extend(
        [numpy_helper.from_array(quantized, names[0]), numpy_helper.from_array(shaped, names[1])]
    )
    return [
        helper.make_node("Cast", [names[0]], [names[2]], to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", [names[2], names[1]], [f"{name}_dequantized"]),
    ]


def _dequantize_linear(model, name, quantized, scale) -> list[onnx.NodeProto]:
    # The QDQ form; ORT keeps DequantizeLinear unfolded (it runs on every call) unless the
    # session sets "session.disable_quant_qdq" to "1".
    names = [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"]
    values = (quantized, scale, np.zeros(scale.shape, np.int8))
    for value, tensor_name in zip(values, names, strict=True):
        model.graph.initializer.append(numpy_helper.from_array(value, tensor_name))
    return [helper.make_node("DequantizeLinear", names, [f"{name}_dequantized"], axis=1)]


_DEQUANTIZE = {"cast": _cast_and_scale, "dequantize_linear": _dequantize_linear}
RECURRENT_FORMS = tuple(_DEQUANTIZE)


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input}
    keep = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def _strip(model: onnx.ModelProto) -> None:
    # Inferred shapes the quantizer stored (ORT re-infers them), its marker, and the torch
    # exporter's program signature, which the int8 graph no longer is.
    del model.graph.value_info[:]
    del model.metadata_props[:]
    del model.graph.metadata_props[:]


def _audit(fp32: onnx.ModelProto, int8: onnx.ModelProto, weight_only: set[str]) -> None:
    before = Counter(node.op_type for node in fp32.graph.node)
    after = Counter(node.op_type for node in int8.graph.node)
    float_lstm = sum(node.op_type == "LSTM" for node in int8.graph.node if node.name in weight_only)
    kept = (after["GRU"], after["RNN"]) == (before["GRU"], before["RNN"])
    integer_lstm = before["LSTM"] - float_lstm
    if after["LSTM"] != float_lstm or after["DynamicQuantizeLSTM"] != integer_lstm or not kept:
        raise EdgeRNNError(
            f"int8 quantization changed the recurrent nodes unexpectedly ({dict(after)}); "
            f"{KEEP_FP32}, and please report it"
        )
    try:
        onnx.checker.check_model(int8)
    except onnx.checker.ValidationError as error:
        raise EdgeRNNError(
            f"int8: the quantized graph is not valid ONNX ({one_line(error)}); {KEEP_FP32}, "
            "and please report it"
        ) from None
