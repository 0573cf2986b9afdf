"""Torch-free inference on an edgernn bundle, for device apps: numpy and onnxruntime only.

This module and the ones it imports (``edgernn.bundle.manifest``, ``edgernn.runtime.checks``,
``codec``, ``search``, ``sessions``) must never import torch, not even
through ``edgernn.data``: a device has no room for it. A test runs ``import edgernn.runtime``
in a fresh interpreter and checks that torch stays out of ``sys.modules``.

Example::

    from edgernn.runtime import Runtime

    rt = Runtime("runs/bundle")                       # verifies every file's sha256
    rt.predict(["a truly great film", "dull"])        # classify: label + probabilities
    logits, state = rt.step("the ")                   # streaming: feed chunks, keep state
    rt.generate("the ", length=50, temperature=0.7)   # char LM
    rt.translate(["12 March 2021"], beam=4)           # seq2seq

Every input is checked before it reaches ONNX Runtime, and every call has bounds
(``RuntimeLimits``: batch, sequence length, generated tokens, decode length, beam); anything
outside them raises ``EdgeRNNError`` with a one-line message, never another exception.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from edgernn.bundle.manifest import (
    MANIFEST,
    check_bundle_manifest,
    complete_bundle,
    read_manifest,
)
from edgernn.errors import EdgeRNNError
from edgernn.runtime.checks import (
    LENGTHS_OF,
    RuntimeLimits,
    as_list,
    check_decoding,
    check_feeds,
    check_sampling,
    check_token_values,
    is_count,
    over_limit,
    text_input,
)
from edgernn.runtime.codec import UNK, BundleCodec
from edgernn.runtime.search import (
    BOS_ID,
    beam_search,
    decode_limits,
    decoder_step,
    greedy,
    sample_next,
)
from edgernn.runtime.sessions import load_sessions

PRECISIONS = ("auto", "int8", "fp32")  # auto: int8 when the bundle has it
SPECIAL_COUNT = 4  # ids 0-3 (<pad>, <unk>, <bos>, <eos>) are never generated, as in training
__all__ = ["Runtime", "RuntimeLimits"]

BATCH = 256  # rows per graph call when predict and translate split a long list of inputs
NO_STEP_GRAPH = "this bundle has no streaming graph (a bidirectional model needs the whole input)"
CUSTOM = "custom"  # a user's own model: only run() applies


class Runtime:
    """A loaded bundle: verified ONNX sessions plus the vocabularies and scaling they need.

    Args:
        bundle_dir: directory holding ``manifest.json`` and the ONNX files it names.
        precision: ``auto`` (int8 when present), ``int8`` or ``fp32``.
        threads: ONNX Runtime intra-op threads (0: ONNX Runtime's default).
        unknown: what an input token missing from the vocabulary becomes: ``unk`` (the
            ``<unk>`` id, as in training) or ``error``.
        manifest: an already parsed manifest (the exporter scores a bundle before writing it).
        limits: bounds on each call's inputs; default ``RuntimeLimits()``.
    """

    def __init__(
        self,
        bundle_dir: str | os.PathLike,
        precision: str = "auto",
        threads: int = 1,
        unknown: str = "unk",
        manifest: dict | None = None,
        limits: RuntimeLimits | None = None,
    ):
        if precision not in PRECISIONS:
            raise EdgeRNNError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if unknown not in UNK:
            raise EdgeRNNError(f"unknown tokens: choose unk or error, not {unknown!r}")
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
            raise EdgeRNNError(f"threads must be an integer >= 0, got {threads!r}")
        self.limits = RuntimeLimits() if limits is None else limits
        if not isinstance(self.limits, RuntimeLimits):
            raise EdgeRNNError(f"limits must be a RuntimeLimits, got {type(limits).__name__}")
        self.directory = Path(bundle_dir)
        if manifest is None:
            self.directory = complete_bundle(self.directory)  # one folder for manifest and files
            manifest = read_manifest(self.directory)
        else:
            check_bundle_manifest(manifest, self.directory / MANIFEST)
        self.manifest = manifest
        self.task: str = manifest["task"]
        custom = self.task == CUSTOM
        self.max_len = self.limits.max_len or (None if custom else manifest["input"]["max_len"])
        self.codec = None if custom else BundleCodec(manifest, unknown, self.max_len)
        self._id_limits = {} if custom or not manifest.get("vocab") else self._vocab_sizes()
        self._lengths_of = {} if custom else LENGTHS_OF
        has_int8 = any(entry["precision"] == "int8" for entry in manifest["files"])
        self.precision = ("int8" if has_int8 else "fp32") if precision == "auto" else precision
        self._graphs = load_sessions(
            self.directory, manifest, self.precision, threads, check_all=precision == "auto"
        )

    def _vocab_sizes(self) -> dict[str, int]:
        sizes = {"inputs": len(self.manifest["vocab"]), "src": len(self.manifest["vocab"])}
        if self.manifest.get("target_vocab"):
            sizes["tokens"] = len(self.manifest["target_vocab"])
        return sizes

    @property
    def roles(self) -> list[str]:
        """The graphs loaded: ``model``, ``step``, ``encoder``, ``decoder``."""
        return list(self._graphs)

    def run(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph on already encoded inputs, after checking them.

        Names, dtypes and shapes must be those the manifest's ``inputs`` list, batch and
        sequence sizes within ``limits``, floats finite, token ids within the vocabulary.

        Args:
            role: which graph (see ``roles``).
            feeds: input name -> array, as the manifest's ``inputs`` describe.

        Returns:
            Output name -> array.
        """
        if not isinstance(role, str) or role not in self._graphs:
            raise EdgeRNNError(f"this bundle has no {self.precision} {role!r} graph ({self.roles})")
        entry, sess = self._graphs[role]
        check_feeds(entry, feeds, self.limits, self.max_len)
        check_token_values(feeds, self._id_limits, self._lengths_of)
        try:
            values = sess.run(None, feeds)
        except Exception as error:  # keep ORT's message, drop its traceback
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise EdgeRNNError(f"{entry['path']}: ONNX Runtime failed: {message}") from None
        return {spec["name"]: value for spec, value in zip(entry["outputs"], values, strict=True)}

    def _require(self, action: str, task: str | None = None, needs: str = "") -> None:
        if self.task == CUSTOM:
            raise EdgeRNNError(
                f"{action} does not apply to a custom model (task 'custom'); call "
                "run('model', feeds) with the arrays its manifest lists"
            )
        if task is not None and self.task != task:
            raise EdgeRNNError(f"{action} needs {needs}; this bundle is {self.task}")

    # --- tasks ----------------------------------------------------------------------

    def predict(self, inputs: list) -> list[dict]:
        """One result per input, in order.

        Args:
            inputs: a list of texts (or token lists) for token models, of raw (T, F) arrays
                for numeric ones. Empty or blank texts are refused (lm: any prefix goes).

        Returns:
            classify ``{"label", "probabilities"}``; tag ``{"tokens", "tags"}``; regress
            ``{"values"}`` (in the data's units); lm ``{"text"}`` (greedy continuation);
            seq2seq ``{"translation"}`` (greedy).
        """
        self._require("predict")
        items = as_list(inputs)
        if self.task == "lm":
            return [
                {"text": self.generate(text_input(item, i), temperature=0)}
                for i, item in enumerate(items)
            ]
        if self.task == "seq2seq":
            return [{"translation": text} for text in self.translate(items)]
        results = []
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            x, lengths = self.codec.encode_any(chunk, start)
            (out,) = self.run("model", {"inputs": x, "lengths": lengths}).values()
            results += [
                self.codec.answer(self.task, row, item)
                for row, item in zip(out, chunk, strict=True)
            ]
        return results

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Zero state for the step graph (or the seq2seq decoder), ``batch`` streams."""
        self._require("initial_state")
        if not is_count(batch) or batch < 1:
            raise EdgeRNNError(f"batch must be an integer >= 1, got {batch!r}")
        if batch > self.limits.max_batch:
            raise over_limit("the batch", batch, "max_batch", self.limits.max_batch)
        if "step" not in self._graphs and "decoder" not in self._graphs:
            raise EdgeRNNError(NO_STEP_GRAPH)
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
            chunk: text (one stream; blank text goes), token ids (B, T) int64, or raw
                features (B, T, F).
            state: from the previous call; None starts from zeros.

        Returns:
            ``(result, state)``: per-step logits (B, T, V) for tag/lm, the result so far
            (B, C) for classify/regress (regress in the data's units), and the new state.
        """
        self._require("step")
        if "step" not in self._graphs:
            raise EdgeRNNError(NO_STEP_GRAPH)
        x = self.codec.encode_chunk(chunk)
        if x.shape[0] > self.limits.max_batch:  # before a zero state of that many rows
            raise over_limit("the batch", x.shape[0], "max_batch", self.limits.max_batch)
        if state is None:
            state = self.initial_state(x.shape[0])
        elif not isinstance(state, dict):
            raise EdgeRNNError(f"state must be the dict step returned, got {type(state).__name__}")
        lengths = np.full(x.shape[0], x.shape[1], dtype=np.int64)
        outputs = self.run("step", state | {"inputs": x, "lengths": lengths})
        entry = self._graphs["step"][0]
        new_state = {item["input"]: outputs[item["output"]] for item in entry["states"]}
        result = outputs[entry["outputs"][0]["name"]]
        return (self.codec.denormalize(result) if self.task == "regress" else result), new_state

    def generate(
        self,
        prefix: str = "",
        length: int = 200,
        temperature: float = 0.8,
        top_k: int | None = None,
        seed: int = 0,
    ) -> str:
        """Sample exactly ``length`` tokens continuing ``prefix`` from a language model.

        The rules of ``edgernn.generate.generate_text``: the ``step`` graph reads the prefix's
        tokens, no ``<bos>`` added (an empty prefix is a newline when the vocabulary has one;
        no tokens at all: ``<bos>``), then each chosen token with the carried state. Ids 0-3
        are never chosen (no ``<eos>``, no early stop). Temperature 0 or top_k 1 is argmax:
        the PyTorch model's tokens. Sampling draws from numpy's ``default_rng(seed)``: the
        same seed gives the same text here, not in PyTorch (a torch generator) or other apps.
        ``length`` is at most ``limits.max_generate``.
        """
        self._require("generate", "lm", "a language model")
        check_sampling(prefix, length, temperature, top_k, seed)
        if length > self.limits.max_generate:
            raise over_limit("length", length, "max_generate", self.limits.max_generate)
        rng = np.random.default_rng(seed)
        # As edgernn.generate: an empty prefix starts at a document boundary when there is one,
        # and a prefix that has no tokens (blank text for word models) starts from <bos>.
        start = prefix or ("\n" if "\n" in self.codec.stoi else "")
        has_tokens = bool(self.codec.tokenize(start))
        ids = np.array([self.codec.ids(start, blank_ok=True) if has_tokens else [BOS_ID]], "i8")
        generated, state = [], None
        for _ in range(length):
            logits, state = self.step(ids, state)
            scores = logits[0, -1].copy()
            scores[:SPECIAL_COUNT] = -np.inf  # reserved symbols are never targets
            generated.append(sample_next(scores, float(temperature), top_k, rng))
            ids = np.array([[generated[-1]]], dtype=np.int64)
        return self.codec.text(generated, "vocab")

    def translate(self, sources: list, beam: int = 1, max_len: int | None = None) -> list[str]:
        """Decode each source with greedy (beam 1) or beam search; returns target texts.

        Each source decodes exactly as it would alone (fp32; int8 quantizes activations per
        batch). The source is its tokens, no ``<bos>``/``<eos>`` added; decoding starts from
        ``<bos>`` (2) and stops at ``<eos>`` (3, not returned) or after the row's limit of
        decoder steps (``<eos>`` counts as one). Beam ranks by total log-probability / length,
        ``<eos>`` counted. Tokens are joined by ``""`` (char) or ``" "`` (word).

        Args:
            sources: a list of texts (or token lists); empty or blank ones are refused.
            beam: 1 (greedy) to ``limits.max_beam``.
            max_len: the limit for every source, 1 to ``limits.max_decode``; default per
                source ``min(2 * its token count + 10, limits.max_decode)``.
        """
        self._require("translate", "seq2seq", "a seq2seq model")
        sources = as_list(sources)
        check_decoding(beam, max_len, self.limits)
        results = []
        for start in range(0, len(sources), BATCH):
            src, lengths = self.codec.encode(sources[start : start + BATCH], start)
            results += [
                self.codec.text(ids) for ids in self.decode_ids(src, lengths, beam, max_len)
            ]
        return results

    def decode_ids(
        self, src: np.ndarray, src_lengths: np.ndarray, beam: int = 1, max_len: int | None = None
    ) -> list[list[int]]:
        """Target ids per source row (EOS excluded), from encoded sources; as ``translate``."""
        self._require("translate", "seq2seq", "a seq2seq model")
        check_decoding(beam, max_len, self.limits)
        if self.manifest["input"].get("padded_batches") is False and _padded(src, src_lengths):
            return self._decode_by_length(src, src_lengths, beam, max_len)
        encoded = self.run("encoder", {"src": src, "src_lengths": src_lengths})  # checks lengths
        limits = decode_limits(src_lengths.tolist(), max_len, self.limits.max_decode)
        states = self._graphs["decoder"][0]["states"]
        names = [item["input"] for item in states]
        outputs = [item["output"] for item in states]
        state = tuple(encoded[name] for name in names)
        run = functools.partial(self.run, "decoder")
        if beam == 1:
            step = decoder_step(run, encoded["memory"], encoded["mask"], names, outputs)
            return greedy(step, state, limits)
        results = []
        for row in range(src.shape[0]):
            memory, mask = encoded["memory"][row : row + 1], encoded["mask"][row : row + 1]
            row_state = tuple(np.ascontiguousarray(part[:, row : row + 1]) for part in state)
            step = decoder_step(run, memory, mask, names, outputs)
            results.append(beam_search(step, row_state, beam, limits[row]))
        return results

    def _decode_by_length(self, src, src_lengths, beam: int, max_len: int | None) -> list:
        # A user's seq2seq exported by parts may not take lengths: padding would change its
        # outputs, so sources of one length decode together, unpadded (edgernn.export.own_seq2seq).
        results: list = [None] * len(src_lengths)
        lengths = np.asarray(src_lengths)
        for length in np.unique(lengths).tolist():
            rows = np.flatnonzero(lengths == length)
            group = np.ascontiguousarray(src[rows, :length])
            ids = self.decode_ids(group, lengths[rows], beam, max_len)
            for row, item in zip(rows.tolist(), ids, strict=True):
                results[row] = item
        return results


def _padded(src: np.ndarray, src_lengths: np.ndarray) -> bool:
    # Valid lengths only: anything else goes on to the encoder run, whose checks refuse it.
    lengths = np.asarray(src_lengths)
    if getattr(src, "ndim", 0) != 2 or lengths.dtype.kind not in "iu":
        return False
    if lengths.shape != src.shape[:1] or not ((lengths >= 1) & (lengths <= src.shape[1])).all():
        return False
    return bool((lengths != src.shape[1]).any())
