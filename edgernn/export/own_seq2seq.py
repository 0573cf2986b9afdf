"""``export_own_seq2seq``: a user's seq2seq model, exported by parts into a ``seq2seq`` bundle.

The encoder and the one-step decoder (``edgernn.own.seq2seq``) are each traced with
``torch.onnx.export`` and verified with ONNX Runtime against PyTorch on batch sizes and source
lengths they were not traced with, exactly as ``export_own`` verifies a whole module (same
exporters, checks and tolerance). The graphs keep edgernn's seq2seq I/O contract, so the
runtime's greedy and beam search, ``Runtime.translate`` and ``edgernn predict`` decode them as
they decode edgernn's own; the manifest's ``model.parts`` says how each graph tensor maps to
the user's arguments, the source layout, and which user id each edgernn id stands for.

The user's encoder may not take lengths (the tutorial's does not), so padding would change
its outputs: the manifest says ``input.padded_batches: false`` and the runtime decodes
sources of equal length together, never padded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgernn.bundle.manifest import (
    FORMAT,
    MANIFEST,
    VERSION,
    check_bundle_manifest,
    write_manifest,
)
from edgernn.data.vocab import SPECIALS
from edgernn.errors import EdgeRNNError
from edgernn.export.graphs import Graph
from edgernn.export.int8 import quantize_int8
from edgernn.export.own import (
    check_dtypes,
    compare_with_pytorch,
    export_verified,
    int8_record,
    recurrent_layers,
    write_graphs,
)
from edgernn.export.requirements import bundle_min_onnxruntime
from edgernn.export.trace import OPSET
from edgernn.export.writer import ExportConfig, GraphFile, versions
from edgernn.own.load import OwnModel
from edgernn.own.seq2seq import (
    STATE_NAMES,
    DecoderPart,
    EncoderPart,
    Layout,
    Parts,
    probe,
    source_ends,
    token_maps,
    user_ids,
    vocabularies,
)
from edgernn.own.vocab import TokenMap
from edgernn.text import TextRules

MAX_LEN = 256  # longest source the runtime takes (the user's model records none)
TRACED = (3, 6)  # (batch, source length) traced: no dynamic axis of size 1
CHECKED = ((2, 5), (1, 3), (4, 8))  # batch and length sequences differ, so dims get named
NOTE = (
    "exported by parts (encoder + one-step decoder); accuracy not measured: export does not "
    "score a user's seq2seq (compress --data distills a student from it, and scores both)"
)


def export_own_seq2seq(
    model: OwnModel,
    parts: Parts,
    out_dir: str | Path,
    config: ExportConfig | None = None,
    vocab: dict | list | None = None,
    tokens: str | None = None,
) -> Path:
    """Export a user's seq2seq by parts to a bundle that ``Runtime.translate`` decodes.

    Args:
        model: the user's whole model (for its class, source and checkpoint keys).
        parts: from ``find_parts``.
        out_dir: the bundle directory; created if needed, files in it are replaced.
        config: exporter, int8, per-channel scales and the fp32 tolerance.
        vocab: ``--vocab``'s JSON ``{"src": ..., "trg": ...}``; None: the checkpoint's keys.
        tokens: ``char`` or ``word`` source tokens; None: char if every token is one.

    Returns:
        The bundle directory.

    Raises:
        EdgeRNNError: the parts break the step contract, a vocabulary is missing, or a graph
            cannot be exported or differs from PyTorch past the tolerance.

    Example::

        model = load_with_example("s2s.pt", True, "inputs.npz")
        export_own_seq2seq(model, find_parts(model.module), "runs/s2s", vocab=vocab)
    """
    config = config or ExportConfig()
    layout = probe(parts)
    src_vocab, trg_vocab, wrap = vocabularies(vocab, model.extras)
    src_map, trg_map = token_maps(parts, layout, src_vocab, trg_vocab)
    ends = source_ends(src_map, wrap)
    encoder = EncoderPart(parts, layout, user_ids(src_map)[0], ends).eval()
    decoder = DecoderPart(parts, layout, *user_ids(trg_map)).eval()
    graphs = [
        _encoder_graph(encoder, len(src_map.vocab), layout),
        _decoder_graph(decoder, len(trg_map.vocab), layout),
    ]
    files, notes = [], [NOTE]
    for graph, checks in graphs:
        proto, exporter, diff = export_verified(graph, graph.module, checks, config)
        check_dtypes(proto)
        files.append(GraphFile(graph.role, "fp32", proto, exporter, graph.states, diff))
    if config.int8:
        files += _int8_files(files, graphs, config, notes)
    out_dir, entries = write_graphs(out_dir, files, config)
    manifest = _manifest(model, parts, layout, (src_map, trg_map), entries, tokens)
    manifest["model"]["parts"]["wrap_source"] = wrap
    manifest["metrics"] = {"note": " ".join(notes)}
    check_bundle_manifest(manifest, out_dir / MANIFEST)  # what the runtime will require
    write_manifest(out_dir, manifest)
    return out_dir


def _encoder_graph(module: EncoderPart, vocab_size: int, layout: Layout) -> tuple[Graph, list]:
    def arrays(batch: int, steps: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        src = rng.integers(len(SPECIALS), vocab_size, (batch, steps), dtype=np.int64)
        return {"src": src, "src_lengths": np.full(batch, steps, dtype=np.int64)}

    traced = arrays(*TRACED, seed=0)
    names = STATE_NAMES[: len(layout.state_ranks)]
    graph = Graph(
        role="encoder",
        module=module,
        args=tuple(torch.tensor(a) for a in traced.values()),
        inputs=list(traced),
        outputs=["memory", "mask", *names],
        dynamic={"src": {0: "batch", 1: "src_time"}, "src_lengths": {0: "batch"}},
        recurrent_nodes=recurrent_layers(module, traced),
    )
    return graph, [arrays(b, s, seed=i + 1) for i, (b, s) in enumerate(CHECKED)]


def _decoder_graph(module: DecoderPart, vocab_size: int, layout: Layout) -> tuple[Graph, list]:
    names = STATE_NAMES[: len(layout.state_ranks)]

    def arrays(batch: int, steps: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        memory = np.tanh(rng.normal(size=(batch, steps, layout.memory_size))).astype(np.float32)
        feeds = {"tokens": rng.integers(len(SPECIALS), vocab_size, batch, dtype=np.int64)}
        feeds |= {"memory": memory, "mask": np.ones((batch, steps), dtype=bool)}
        for name, (layers, hidden) in zip(names, layout.state_shapes, strict=True):
            feeds[name] = np.tanh(rng.normal(size=(layers, batch, hidden))).astype(np.float32)
        return feeds

    traced = arrays(*TRACED, seed=10)
    states = [
        {"input": name, "output": f"{name}_out", "shape": [layers, "batch", hidden]}
        for name, (layers, hidden) in zip(names, layout.state_shapes, strict=True)
    ]
    dynamic = {"tokens": {0: "batch"}, "memory": {0: "batch", 1: "src_time"}}
    dynamic |= {"mask": {0: "batch", 1: "src_time"}} | {name: {1: "batch"} for name in names}
    graph = Graph(
        role="decoder",
        module=module,
        args=tuple(torch.tensor(a) for a in traced.values()),
        inputs=list(traced),
        outputs=["logits", *(s["output"] for s in states)] + ["attention"] * layout.attention,
        dynamic=dynamic,
        recurrent_nodes=recurrent_layers(module, traced),
        states=states,
    )
    return graph, [arrays(b, s, seed=11 + i) for i, (b, s) in enumerate(CHECKED)]


def _int8_files(files: list[GraphFile], graphs: list, config: ExportConfig, notes: list) -> list:
    # Both parts or neither: a bundle's int8 graphs must hold an encoder and a decoder.
    int8 = []
    for item, (graph, checks) in zip(files, graphs, strict=True):
        try:
            proto = quantize_int8(item.proto, config.per_channel, embed_bits=config.embed_bits)
        except EdgeRNNError as error:
            notes.append(f"int8 skipped, the fp32 graphs are kept: {error}")
            return []
        # Recorded; no metric judges it.
        loose, _ = compare_with_pytorch(graph.module, proto, checks)
        record = int8_record(item.proto)
        states = item.states
        int8.append(GraphFile(item.role, "int8", proto, item.exporter, states, loose, None, record))
    return int8


def _manifest(
    model: OwnModel,
    parts: Parts,
    layout: Layout,
    maps: tuple[TokenMap, TokenMap],
    entries: list[dict],
    tokens: str | None,
) -> dict:
    src, trg = maps
    words = [token for token in src.vocab[len(SPECIALS) :] if not token.startswith("<id ")]
    kind = tokens or ("char" if words and all(len(w) == 1 for w in words) else "word")
    params = sum(p.numel() for p in model.module.parameters())
    return {
        "format": FORMAT,
        "version": VERSION,
        "task": "seq2seq",
        "model": {
            "class": model.class_name,
            "source": Path(model.source).name,
            "params": params,
            "parts": _parts_record(parts, layout, maps),
        },
        "input": {
            "type": "tokens",
            "tokenization": kind,
            # The user's own tokenizer is unknown: text is only cut at whitespace (or into
            # code points), as for adopted models (edgernn.own.adopt).
            "text": TextRules(kind).to_manifest(),
            "features": 0,
            "max_len": MAX_LEN,
            "padded_batches": False,  # the runtime decodes equal-length sources together
        },
        "special_tokens": {token: index for index, token in enumerate(SPECIALS)},
        "vocab": src.vocab,
        "target_vocab": trg.vocab,
        "labels": None,
        "normalization": None,
        "files": entries,
        "opset": OPSET,
        "versions": versions(),
        "min_onnxruntime": bundle_min_onnxruntime(entries),
    }


def _parts_record(parts: Parts, layout: Layout, maps: tuple[TokenMap, TokenMap]) -> dict:
    # How the graphs' tensors map to the user's modules: the step contract, for the record.
    token, *states, memory = parts.decoder_args[: 2 + parts.states]
    names = STATE_NAMES[: parts.states]
    inputs = {"tokens": token, "memory": memory} | dict(zip(names, states, strict=True))
    outputs = {"logits": "prediction"} | {f"{n}_out": s for n, s in zip(names, states, strict=True)}
    return {
        "encoder": parts.names[0],
        "decoder": parts.names[1],
        # The user's src (src_len, batch) and encoder_outputs (src_len, batch, D), or
        # batch-first; the graphs take and give batch-first memory either way.
        "layout": "time_major" if layout.time_major else "batch_first",
        "encoder_takes_lengths": parts.takes_lengths,
        "decoder_inputs": inputs | ({"mask": parts.decoder_args[-1]} if parts.takes_mask else {}),
        "decoder_outputs": outputs | ({"attention": "attention"} if layout.attention else {}),
        # 2: the user's state is (batch, hidden), the graphs' (1, batch, hidden).
        "state_ranks": dict(zip(names, layout.state_ranks, strict=True)),
        # Per edgernn id, the user's id (null: a token the user's vocabulary has not).
        "source_ids": maps[0].source_ids,
        "target_ids": maps[1].source_ids,
    }
