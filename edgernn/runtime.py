"""Torch-free inference on an edgernn bundle, for device apps: numpy and onnxruntime only.

This module and the ones it imports (``edgernn.bundle``, ``edgernn.runtime_codec``,
``edgernn.runtime_search``) must never import torch, not even through ``edgernn.data``: a
device has no room for it. A test runs ``import edgernn.runtime`` in a fresh interpreter and
checks that torch stays out of ``sys.modules``.

Example::

    from edgernn.runtime import Runtime

    rt = Runtime("runs/bundle")                       # verifies every file's sha256
    rt.predict(["a truly great film", "dull"])        # classify: label + probabilities
    logits, state = rt.step("the ")                   # streaming: feed chunks, keep state
    rt.generate("the ", length=50, temperature=0.7)   # char LM
    rt.translate(["12 March 2021"], beam=4)           # seq2seq
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgernn.bundle import check_feeds, read_file, read_manifest
from edgernn.errors import EdgeRNNError
from edgernn.runtime_codec import BundleCodec
from edgernn.runtime_search import BOS_ID, beam_search, greedy, sample_next

ROLES = ("model", "step", "encoder", "decoder")
PRECISIONS = ("auto", "int8", "fp32")  # auto: int8 when the bundle has it
TOKEN_INPUTS = {"inputs", "src", "tokens"}
SPECIAL_COUNT = 4  # ids 0-3 (<pad>, <unk>, <bos>, <eos>) are never generated, as in training
DECODE_MARGIN = 10  # translate decodes at most 2 * source length + this many tokens
BATCH = 256


class Runtime:
    """A loaded bundle: verified ONNX sessions plus the vocabularies and scaling they need.

    Args:
        bundle_dir: directory holding ``manifest.json`` and the ONNX files it names.
        precision: ``auto`` (int8 when present), ``int8`` or ``fp32``.
        threads: ONNX Runtime intra-op threads.
        unknown: what an input token missing from the vocabulary becomes: ``unk`` (the
            ``<unk>`` id, as in training) or ``error``.
        manifest: an already parsed manifest (the exporter scores a bundle before writing it).
    """

    def __init__(
        self,
        bundle_dir: str | os.PathLike,
        precision: str = "auto",
        threads: int = 1,
        unknown: str = "unk",
        manifest: dict | None = None,
    ):
        if precision not in PRECISIONS:
            raise EdgeRNNError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.directory = Path(bundle_dir)
        self.manifest = manifest or read_manifest(self.directory)
        self.task: str = self.manifest["task"]
        self.codec = BundleCodec(self.manifest, unknown)
        has_int8 = any(entry.get("precision") == "int8" for entry in self.manifest["files"])
        self.precision = ("int8" if has_int8 else "fp32") if precision == "auto" else precision
        self._graphs = self._load(threads)

    def _load(self, threads: int) -> dict[str, tuple[dict, ort.InferenceSession]]:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        graphs = {}
        # Every file is verified, not only those loaded: a tampered bundle is refused whole.
        contents = [(entry, read_file(self.directory, entry)) for entry in self.manifest["files"]]
        for entry, data in contents:
            if entry.get("precision") != self.precision or entry.get("role") not in ROLES:
                continue
            role = entry["role"]
            try:
                graphs[role] = entry, ort.InferenceSession(data, options, ["CPUExecutionProvider"])
            except Exception as error:  # ORT reports a bad graph in several exception types
                message = f"{entry['path']}: ONNX Runtime cannot load it ({error})"
                raise EdgeRNNError(message) from None
        if not graphs:
            raise EdgeRNNError(f"{self.directory}: the bundle has no {self.precision} graphs")
        return graphs

    @property
    def roles(self) -> list[str]:
        """The graphs loaded: ``model``, ``step``, ``encoder``, ``decoder``."""
        return list(self._graphs)

    def run(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph on already encoded inputs, after checking names, dtypes and shapes.

        Args:
            role: which graph (see ``roles``).
            feeds: input name -> array, as the manifest's ``inputs`` describe.

        Returns:
            Output name -> array.
        """
        if role not in self._graphs:
            raise EdgeRNNError(f"this bundle has no {self.precision} {role!r} graph ({self.roles})")
        entry, sess = self._graphs[role]
        check_feeds(entry, feeds)
        self._check_values(feeds)
        try:
            values = sess.run(None, feeds)
        except Exception as error:  # keep ORT's message, drop its traceback
            message = str(error).splitlines()[0]
            raise EdgeRNNError(f"{entry['path']}: ONNX Runtime failed: {message}") from None
        return {spec["name"]: value for spec, value in zip(entry["outputs"], values, strict=True)}

    def _check_values(self, feeds: dict[str, np.ndarray]) -> None:
        for name, value in feeds.items():
            if name in TOKEN_INPUTS and value.dtype == np.int64 and value.size:
                limit = self._id_limit(name)
                if value.min() < 0 or value.max() >= limit:
                    bad = int(value[(value < 0) | (value >= limit)][0])
                    raise EdgeRNNError(
                        f"{name}: token id {bad} is unknown (ids are 0..{limit - 1})"
                    )
            if name.endswith("lengths") and value.size:
                steps = feeds["src" if name == "src_lengths" else "inputs"].shape[1]
                if value.min() < 1 or value.max() > steps:
                    raise EdgeRNNError(f"{name} must lie in 1..{steps} (the padded length)")

    def _id_limit(self, name: str) -> int:
        vocab = self.manifest["target_vocab"] if name == "tokens" else self.manifest["vocab"]
        return len(vocab)

    # --- tasks ----------------------------------------------------------------------

    def predict(self, inputs: list) -> list[dict]:
        """One result per input, in order.

        Args:
            inputs: texts (or token lists) for token models, raw (T, F) arrays for numeric.

        Returns:
            classify ``{"label", "probabilities"}``; tag ``{"tokens", "tags"}``; regress
            ``{"values"}`` (in the data's units); lm ``{"text"}`` (greedy continuation);
            seq2seq ``{"translation"}`` (greedy).
        """
        if self.task == "lm":
            return [{"text": self.generate(text, temperature=0)} for text in inputs]
        if self.task == "seq2seq":
            return [{"translation": text} for text in self.translate(inputs)] if inputs else []
        results = []
        for start in range(0, len(inputs), BATCH):
            chunk = inputs[start : start + BATCH]
            x, lengths = self.codec.encode_any(chunk)
            (out,) = self.run("model", {"inputs": x, "lengths": lengths}).values()
            results += [
                self.codec.answer(self.task, row, item)
                for row, item in zip(out, chunk, strict=True)
            ]
        return results

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Zero state for the step graph (or the seq2seq decoder), ``batch`` streams."""
        entry = self._graphs["step" if "step" in self._graphs else "decoder"][0]
        return {
            state["input"]: np.zeros([batch if d == "batch" else d for d in state["shape"]], "f4")
            for state in entry["states"]
        }

    def step(
        self, chunk: str | np.ndarray, state: dict[str, np.ndarray] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Streaming: advance by one chunk (one or more steps) from ``state``.

        Args:
            chunk: text (one stream), token ids (B, T) int64, or raw features (B, T, F).
            state: from the previous call; None starts from zeros.

        Returns:
            ``(result, state)``: per-step logits (B, T, V) for tag/lm, the result so far
            (B, C) for classify/regress (regress in the data's units), and the new state.
        """
        if "step" not in self._graphs:
            raise EdgeRNNError("this bundle has no streaming graph (bidirectional or pooled)")
        x = self._chunk(chunk)
        state = state if state is not None else self.initial_state(x.shape[0])
        lengths = np.full(x.shape[0], x.shape[1], dtype=np.int64)
        outputs = self.run("step", {"inputs": x, "lengths": lengths} | state)
        entry = self._graphs["step"][0]
        new_state = {item["input"]: outputs[item["output"]] for item in entry["states"]}
        result = outputs[entry["outputs"][0]["name"]]
        return (self.codec.denormalize(result) if self.task == "regress" else result), new_state

    def _chunk(self, chunk: str | np.ndarray) -> np.ndarray:
        if isinstance(chunk, str):
            return self.codec.encode([chunk])[0]
        chunk = np.asarray(chunk)
        if self.manifest["input"]["type"] == "features" and chunk.ndim == 3:
            return self.codec.scale(chunk)
        return chunk

    def generate(
        self,
        prefix: str = "",
        length: int = 200,
        temperature: float = 0.8,
        top_k: int | None = None,
        seed: int = 0,
    ) -> str:
        """Sample ``length`` tokens continuing ``prefix`` from a language model.

        Temperature 0 (or top_k 1) is greedy and then equals the PyTorch model's output.
        """
        if self.task != "lm":
            raise EdgeRNNError(f"generate needs a language model; this bundle is {self.task}")
        if length < 0 or temperature < 0 or (top_k is not None and top_k < 1):
            raise EdgeRNNError("need length >= 0, temperature >= 0 and top_k >= 1")
        rng = np.random.default_rng(seed)
        # As edgernn.generate: an empty prefix starts at a document boundary when there is one.
        start = prefix or ("\n" if "\n" in self.codec.stoi else "")
        ids = np.array([self.codec.ids(start) if start else [BOS_ID]], dtype=np.int64)
        generated, state = [], None
        for _ in range(length):
            logits, state = self.step(ids, state)
            scores = logits[0, -1].copy()
            scores[:SPECIAL_COUNT] = -np.inf  # reserved symbols are never targets
            generated.append(sample_next(scores, temperature, top_k, rng))
            ids = np.array([[generated[-1]]], dtype=np.int64)
        return self.codec.text(generated, "vocab")

    def translate(self, sources: list, beam: int = 1, max_len: int | None = None) -> list[str]:
        """Decode each source with greedy (beam 1) or beam search; returns target texts."""
        src, lengths = self.codec.encode(sources)
        limit = max_len or 2 * int(lengths.max()) + DECODE_MARGIN
        return [self.codec.text(ids) for ids in self.decode_ids(src, lengths, beam, limit)]

    def decode_ids(
        self, src: np.ndarray, src_lengths: np.ndarray, beam: int, max_len: int
    ) -> list[list[int]]:
        """Target ids per source row (EOS excluded), from encoded sources."""
        if self.task != "seq2seq":
            raise EdgeRNNError(f"translate needs a seq2seq model; this bundle is {self.task}")
        if beam < 1:
            raise EdgeRNNError(f"beam must be at least 1, got {beam}")
        encoded = self.run("encoder", {"src": src, "src_lengths": src_lengths})
        names = [item["input"] for item in self._graphs["decoder"][0]["states"]]
        state = tuple(encoded[name] for name in names)
        if beam == 1:
            return greedy(self._decoder(encoded["memory"], encoded["mask"], names), state, max_len)
        results = []
        for row in range(src.shape[0]):
            memory, mask = encoded["memory"][row : row + 1], encoded["mask"][row : row + 1]
            row_state = tuple(np.ascontiguousarray(part[:, row : row + 1]) for part in state)
            results.append(
                beam_search(self._decoder(memory, mask, names), row_state, beam, max_len)
            )
        return results

    def _decoder(self, memory: np.ndarray, mask: np.ndarray, names: list[str]):
        def step(tokens, state):
            # Beam search grows and shrinks the batch: repeat the one source row to match.
            reps = len(tokens) // memory.shape[0]
            feeds = {"tokens": tokens, "memory": np.repeat(memory, reps, axis=0)}
            feeds |= {"mask": np.repeat(mask, reps, axis=0)} | dict(zip(names, state, strict=True))
            out = self.run("decoder", feeds)
            return out["logits"], tuple(out[f"{name}_out"] for name in names)

        return step
