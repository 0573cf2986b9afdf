"""A bundle client written from the README's Graph I/O contract and the manifest alone.

It stands for an app in another language: it imports no edgernn (``test_contract`` checks),
only the standard library, numpy and onnxruntime, and follows the written rules literally:
tokenize by ``manifest.input.text``, look ids up in ``manifest.vocab``, pad with 0, feed the
graphs their manifest names, decode greedily by the stated loop. Where this client and
``edgernn.runtime.Runtime`` disagree, the contract is incomplete or untrue.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path

import numpy as np
import onnxruntime as ort

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class ForeignClient:
    """One bundle's graphs of one precision, and the contract's encode / decode rules."""

    def __init__(self, directory: str | Path, precision: str):
        self.directory = Path(directory)
        self.manifest = json.loads((self.directory / "manifest.json").read_text("utf-8"))
        self.text = self.manifest["input"].get("text")
        self.stoi = {token: i for i, token in enumerate(self.manifest.get("vocab") or [])}
        self.sessions = {}
        for entry in self.manifest["files"]:
            if entry["precision"] == precision:
                self.sessions[entry["role"]] = self._session(entry)

    def _session(self, entry: dict) -> ort.InferenceSession:
        data = (self.directory / entry["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ValueError(f"{entry['path']}: sha256 differs from the manifest")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        return ort.InferenceSession(data, options, ["CPUExecutionProvider"])

    def run(self, role: str, feeds: dict) -> dict:
        session = self.sessions[role]
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(None, feeds), strict=True))

    # --- text -> ids, by manifest.input.text ---------------------------------------

    def tokens(self, text: str) -> list[str]:
        rules = self.text
        for step in rules["steps"]:
            if step == "NFC":
                text = unicodedata.normalize("NFC", text)
            elif step == "lowercase":
                text = text.lower()
        if rules["units"] == "code_points":  # char models: every code point is a token
            return list(text)
        whitespace = {chr(point) for point in rules["whitespace"]}
        words, current = [], []
        for char in text:
            if char in whitespace:
                words.append("".join(current))
                current = []
            elif "split_punctuation" in rules["steps"] and _is_punctuation(char):
                words += ["".join(current), char]
                current = []
            else:
                current.append(char)
        return [word for word in [*words, "".join(current)] if word]

    def ids(self, text: str) -> list[int]:
        return [self.stoi.get(token, UNK) for token in self.tokens(text)]

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = [self.ids(text) for text in texts]
        return _pad([np.array(row, np.int64) for row in rows])

    def join(self, ids: list[int], vocab: list[str]) -> str:
        return self.text["join"].join(vocab[i] for i in ids if i not in (PAD, BOS))

    # --- tasks ---------------------------------------------------------------------

    def outputs(self, inputs: list) -> np.ndarray:
        """The model graph's first output for a batch of texts or (T, F) feature arrays."""
        if self.manifest["input"]["type"] == "features":
            norm = self.manifest["normalization"]
            scaled = [
                ((np.asarray(x) - norm["x_mean"]) / np.asarray(norm["x_std"])).astype("f4")
                for x in inputs
            ]
            x, lengths = _pad(scaled)
        else:
            x, lengths = self.encode(inputs)
        return next(iter(self.run("model", {"inputs": x, "lengths": lengths}).values()))

    def predict(self, inputs: list) -> list:
        """classify: labels; tag: a tag per token; regress: values in the data's units."""
        task, labels = self.manifest["task"], self.manifest.get("labels")
        out = self.outputs(inputs)
        if task == "classify":
            return [labels[int(i)] for i in out.argmax(-1)]
        if task == "tag":
            return [
                [labels[int(i)] for i in row[: len(self.tokens(text))].argmax(-1)]
                for row, text in zip(out, inputs, strict=True)
            ]
        norm = self.manifest["normalization"]
        return (out * np.asarray(norm["y_std"], "f4") + np.asarray(norm["y_mean"], "f4")).tolist()

    def zero_state(self, role: str, batch: int) -> dict:
        entry = next(e for e in self.manifest["files"] if e["role"] == role)
        return {
            state["input"]: np.zeros([batch if d == "batch" else d for d in state["shape"]], "f4")
            for state in entry["states"]
        }

    def stream(self, chunks: list[str]) -> list[np.ndarray]:
        """The step graph's first output after each chunk, state fed back."""
        entry = next(e for e in self.manifest["files"] if e["role"] == "step")
        state, results = self.zero_state("step", 1), []
        for chunk in chunks:
            ids = np.array([self.ids(chunk)], np.int64)
            feeds = state | {"inputs": ids, "lengths": np.array([ids.shape[1]], np.int64)}
            out = self.run("step", feeds)
            state = {s["input"]: out[s["output"]] for s in entry["states"]}
            results.append(out[entry["outputs"][0]["name"]])
        return results

    def generate_greedy(self, prefix: str, length: int) -> str:
        """LM generation as the contract states it, at temperature 0."""
        entry = next(e for e in self.manifest["files"] if e["role"] == "step")
        # No <bos> before a prefix; an empty one starts at a document boundary ("\n") when
        # the vocabulary has one; a prefix without tokens starts from <bos>.
        start = prefix or ("\n" if "\n" in self.stoi else "")
        ids = self.ids(start) or [BOS]
        state, generated = self.zero_state("step", 1), []
        tokens = np.array([ids], np.int64)
        for _ in range(length):
            feeds = state | {"inputs": tokens, "lengths": np.array([tokens.shape[1]], np.int64)}
            out = self.run("step", feeds)
            state = {s["input"]: out[s["output"]] for s in entry["states"]}
            scores = out[entry["outputs"][0]["name"]][0, -1].copy()
            scores[:4] = -np.inf  # reserved ids are never generated
            generated.append(int(scores.argmax()))
            tokens = np.array([[generated[-1]]], np.int64)
        return self.join(generated, self.manifest["vocab"])

    def translate_greedy(self, sources: list[str]) -> list[str]:
        """Seq2seq greedy as the contract states it, each row to its own length limit."""
        entry = next(e for e in self.manifest["files"] if e["role"] == "decoder")
        src, lengths = self.encode(sources)
        encoded = self.run("encoder", {"src": src, "src_lengths": lengths})
        state = {s["input"]: encoded[s["input"]] for s in entry["states"]}
        limits = [2 * int(n) + 10 for n in lengths]
        tokens = np.full(len(sources), BOS, np.int64)
        outputs, done = [[] for _ in sources], [False] * len(sources)
        for _ in range(max(limits)):
            feeds = state | {"tokens": tokens, "memory": encoded["memory"]}
            out = self.run("decoder", feeds | {"mask": encoded["mask"]})
            state = {s["input"]: out[s["output"]] for s in entry["states"]}
            tokens = out["logits"].argmax(-1).astype(np.int64)
            for row, token in enumerate(tokens.tolist()):
                if done[row]:
                    continue
                done[row] = token == EOS or len(outputs[row]) >= limits[row]
                if not done[row]:
                    outputs[row].append(token)
            if all(done):
                break
        return [self.join(row, self.manifest["target_vocab"]) for row in outputs]


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def _pad(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(row) for row in rows], np.int64)
    padded = np.zeros((len(rows), int(lengths.max()), *rows[0].shape[1:]), rows[0].dtype)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = row
    return padded, lengths
