"""Does dynamic int8 depend on batch mates, padding and chunking? Task metric per mode.

ORT's integer kernels (``DynamicQuantizeLSTM``, ``MatMulInteger`` after
``DynamicQuantizeLinear``) take the activation scale from the whole input tensor of each
call, so the same example can give different int8 results alone, in a padded batch, fed one
token per call to the step graph, or in one chunk. For a small trained LSTM teacher of each
builtin task this measures the test-split metric and the logits in those modes:

- ``batch32``: padded, length-sorted batches of 32 (how evaluation batches; it uses 256);
- ``alone``: each example alone (batch 1, no padding);
- ``stream``: the step graph, one token (time step) per call, the state carried;
- ``chunk``: the step graph, the whole sequence in one call from the zero state;
- seq2seq: greedy decoding of padded batches of 32 vs each source alone.

Two int8 graphs are measured: ``integer`` (every LSTM/MatMul on ORT's integer kernel: what
``quantize_int8`` gives with no node weight-only) and ``weight_only`` (every such node
computing in fp32 from int8 weights: same file size), next to fp32. The LSTM latency of the
two int8 forms at batch 1 (whole sequence and one streaming step) is timed side by side on
one thread. Teachers are small (hidden 64) and trained for a few epochs with the library's
``train``; they are cached in ``--work``.

    .venv/bin/python benchmarks/int8_batching.py --work runs/int8_batching \\
        --out benchmarks/results/int8_batching
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from edgernn.bundle.manifest import read_manifest, sha256_bytes, write_manifest
from edgernn.checkpoint import checkpoint_data, load_checkpoint, save_checkpoint
from edgernn.config import TrainConfig
from edgernn.data import iterate_batches
from edgernn.data.vocab import Vocab
from edgernn.export import ExportConfig, export_bundle
from edgernn.export.int8 import integer_nodes, quantize_int8
from edgernn.export.parity import session
from edgernn.metrics import metric_drop
from edgernn.report.environment import environment
from edgernn.runtime import Runtime
from edgernn.tasks import TASKS, primary_metric
from edgernn.train import train

TASK_OF = {"sentiment": "classify", "ner": "tag", "charlm": "lm", "forecast": "regress"}
TASK_OF |= {"translate": "seq2seq"}
EPOCHS = {"sentiment": 15, "ner": 8, "charlm": 30, "forecast": 3, "translate": 5}
MODES = ("batch32", "alone", "stream", "chunk")
VARIANTS = ("fp32", "integer", "weight_only", "shipped")
SPLIT = "test"
SHIPPED_KEYS = ("integer", "weight_only", "sensitivity", "batch_dependent", "batch_max_abs_diff")


def teacher(work: Path, name: str, epochs: int | None, hidden: int):
    path = work / f"{name}-lstm.pt"
    if not path.exists():
        config = TrainConfig(epochs=epochs or EPOCHS[name], patience=100, progress=False)
        started = time.perf_counter()
        checkpoint = train(f"builtin:{name}", TASK_OF[name], config, cell="lstm", hidden=hidden)
        save_checkpoint(checkpoint, path)
        print(f"trained {name} in {time.perf_counter() - started:.0f} s", flush=True)
    return load_checkpoint(path)


def variant_bundle(bundle: Path, name: str, protos: dict[str, onnx.ModelProto]) -> Path:
    # A copy of the bundle whose int8 files are replaced (manifest hashes updated).
    target = bundle.parent / f"{bundle.name}-{name}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(bundle, target)
    manifest = read_manifest(bundle)
    files = []
    for entry in manifest["files"]:
        if entry["path"] in protos:
            data = protos[entry["path"]].SerializeToString()
            (target / entry["path"]).write_bytes(data)
            entry = entry | {"sha256": sha256_bytes(data), "size_bytes": len(data)}
        files.append(entry)
    write_manifest(target, manifest | {"files": files})
    return target


def variants(bundle: Path, shipped: Path) -> dict[str, Runtime]:
    # fp32, int8 with every LSTM/MatMul integer, int8 with every one weight-only, and the
    # int8 graphs export_bundle's defaults choose (per node, on the valid split).
    manifest = read_manifest(bundle)
    fp32 = {
        e["role"]: onnx.load(bundle / e["path"])
        for e in manifest["files"]
        if e["precision"] == "fp32"
    }
    integer, weight_only = {}, {}
    for role, proto in fp32.items():
        integer[f"{role}.int8.onnx"] = quantize_int8(proto)
        weight_only[f"{role}.int8.onnx"] = quantize_int8(proto, weight_only=integer_nodes(proto))
    return {
        "fp32": Runtime(bundle, "fp32", threads=1),
        "integer": Runtime(variant_bundle(bundle, "integer", integer), "int8", threads=1),
        "weight_only": Runtime(variant_bundle(bundle, "wo", weight_only), "int8", threads=1),
        "shipped": Runtime(shipped, "int8", threads=1),
    }


class Recorder:
    """A model for ``edgernn.tasks`` that runs one mode and keeps each row's valid output."""

    def __init__(self, runtime: Runtime, mode: str, per_step: bool):
        self.runtime, self.mode, self.per_step = runtime, mode, per_step
        self.rows: list[np.ndarray] = []
        entry = runtime._graphs.get("step", (None,))[0]
        self.states = entry["states"] if entry else []

    def __call__(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, n = inputs.numpy(), lengths.numpy()
        if self.mode in ("batch32", "alone"):
            (out,) = self.runtime.run("model", {"inputs": x, "lengths": n}).values()
        else:
            out = np.stack([self._stream(x[i : i + 1, : n[i]], x.shape[1]) for i in range(len(n))])
        for row, length in zip(out, n, strict=True):
            self.rows.append(row[:length].copy() if self.per_step else row.copy())
        return torch.from_numpy(out)

    def _stream(self, row: np.ndarray, width: int) -> np.ndarray:
        state = {s["input"]: np.zeros([1 if d == "batch" else d for d in s["shape"]], "f4")
                 for s in self.states}  # fmt: skip
        chunks = [row] if self.mode == "chunk" else [row[:, t : t + 1] for t in range(row.shape[1])]
        outs = []
        for chunk in chunks:
            lengths = np.array([chunk.shape[1]], np.int64)
            values = self.runtime.run("step", state | {"inputs": chunk, "lengths": lengths})
            state = {s["input"]: values[s["output"]] for s in self.states}
            outs.append(next(iter(values.values()))[0])
        if not self.per_step:
            return outs[-1]  # classify/regress: the result after the last step
        steps = np.concatenate(outs, axis=0)
        padded = np.zeros((width, *steps.shape[1:]), steps.dtype)
        padded[: len(steps)] = steps
        return padded


def seq2seq_mode(runtime: Runtime, examples: list, batch: int, meta) -> tuple[dict, list[str]]:
    outputs = []

    class Greedy:
        def greedy(self, src, lengths, max_len):
            ids = runtime.decode_ids(src.numpy(), lengths.numpy(), 1, max_len)
            outputs.extend(Vocab(meta.tgt_vocab).decode(row) for row in ids)
            return ids

    scores = TASKS["seq2seq"].evaluate(Greedy(), iterate_batches(examples, "seq2seq", batch), meta)
    return scores, outputs


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(max(np.abs(x - y).max() for x, y in zip(a, b, strict=True)))


def measure_task(checkpoint, runtimes: dict[str, Runtime], limit: int | None) -> dict:
    task, meta = checkpoint.spec.task, checkpoint.meta
    encoded, _ = checkpoint_data(checkpoint)
    examples = encoded.splits[SPLIT][:limit] if limit else encoded.splits[SPLIT]
    metric, higher = primary_metric(task)
    result = {"examples": len(examples), "metric": metric, "higher_is_better": higher}
    if task == "seq2seq":
        decoded = {}
        for variant, runtime in runtimes.items():
            for mode, batch in (("batch32", 32), ("alone", 1)):
                scores, out = seq2seq_mode(runtime, examples, batch, meta)
                result.setdefault("metrics", {}).setdefault(variant, {})[mode] = scores[metric]
                decoded[variant, mode] = out
        result["changed_outputs"] = {
            variant: {
                "batch32_vs_alone": _changed(decoded[v, "batch32"], decoded[v, "alone"]),
                "batch32_vs_fp32": _changed(decoded[v, "batch32"], decoded["fp32", "batch32"]),
                "alone_vs_fp32": _changed(decoded[v, "alone"], decoded["fp32", "batch32"]),
            }
            for variant in runtimes
            for v in [variant]
        }
        return result
    per_step = task in ("tag", "lm")
    rows, has_step = {}, "step" in runtimes["fp32"].roles
    for variant, runtime in runtimes.items():
        for mode in MODES if has_step else MODES[:2]:
            recorder = Recorder(runtime, mode, per_step)
            batch = 32 if mode == "batch32" else 1
            started = time.perf_counter()
            scores = TASKS[task].evaluate(recorder, iterate_batches(examples, task, batch), meta)
            result.setdefault("metrics", {}).setdefault(variant, {})[mode] = scores[metric]
            result.setdefault("seconds", {})[f"{variant}/{mode}"] = time.perf_counter() - started
            rows[variant, mode] = recorder.rows
    diffs = {}
    for variant in runtimes:
        pairs = (
            [("batch32", "alone"), ("stream", "chunk"), ("chunk", "alone")]
            if has_step
            else [("batch32", "alone")]
        )
        for a, b in pairs:
            diffs.setdefault(variant, {})[f"{a}_vs_{b}"] = max_diff(
                rows[variant, a], rows[variant, b]
            )
        if variant != "fp32":
            for mode in MODES if has_step else MODES[:2]:
                reference = rows["fp32", mode]
                diffs[variant][f"{mode}_vs_fp32"] = max_diff(rows[variant, mode], reference)
    result["max_abs_diff"] = diffs
    result["drop_vs_fp32_batch32"] = {
        variant: {
            mode: metric_drop(result["metrics"]["fp32"]["batch32"], value, metric)
            for mode, value in modes.items()
        }
        for variant, modes in result["metrics"].items()
    }
    return result


def _changed(a: list[str], b: list[str]) -> float:
    return 100.0 * sum(x != y for x, y in zip(a, b, strict=True)) / len(a)


def median_ms(call, rounds: int) -> float:
    for _ in range(5):
        call()
    times = []
    for _ in range(rounds):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return 1e3 * float(np.median(times))


def latency(bundle: Path, checkpoint, rounds: int) -> dict:
    # Batch 1, one thread: the whole first test example through the model graph, and one
    # streaming step; integer vs weight-only vs fp32 interleaved (raw ONNX Runtime sessions).
    manifest = read_manifest(bundle)
    fp32 = {
        e["role"]: onnx.load(bundle / e["path"])
        for e in manifest["files"]
        if e["precision"] == "fp32"
    }
    encoded, _ = checkpoint_data(checkpoint)
    x = encoded.splits[SPLIT][0][0].numpy()[None]
    feeds = {"model": {"inputs": x, "lengths": np.array([x.shape[1]], np.int64)}}
    if "step" in fp32:
        entry = next(e for e in manifest["files"] if e["role"] == "step")
        zero = {s["input"]: np.zeros([1 if d == "batch" else d for d in s["shape"]], "f4")
                for s in entry["states"]}  # fmt: skip
        feeds["step"] = zero | {"inputs": x[:, :1], "lengths": np.array([1], np.int64)}
    sessions = {}
    for role in feeds:
        proto = fp32[role]
        sessions[role] = {
            "fp32": session(proto),
            "integer": session(quantize_int8(proto)),
            "weight_only": session(quantize_int8(proto, weight_only=integer_nodes(proto))),
        }
    results = {}
    for role, feed in feeds.items():
        calls = {v: (lambda s=s, f=feed: s.run(None, f)) for v, s in sessions[role].items()}
        repeats = [{v: median_ms(call, rounds) for v, call in calls.items()} for _ in range(5)]
        results[role] = {v: float(np.median([r[v] for r in repeats])) for v in calls}
    results["sequence_length"] = int(x.shape[1])
    return results


def measure(work: Path, name: str, args) -> dict:
    checkpoint = teacher(work, name, args.epochs, args.hidden)
    bundle = work / f"{name}-lstm"
    if not (bundle / "manifest.json").exists():
        config = ExportConfig(evaluate=False, int8_tolerance=None)  # variants are built here
        export_bundle(checkpoint, bundle, config=config)
    shipped = work / f"{name}-lstm-shipped"
    started = time.perf_counter()
    export_bundle(checkpoint, shipped, config=ExportConfig(evaluate=False))  # the defaults
    row = {"dataset": name, "task": checkpoint.spec.task, "cell": "lstm"}
    row["hidden"], row["epochs"] = checkpoint.spec.hidden, checkpoint.training.get("epochs")
    row["shipped_export_seconds"] = round(time.perf_counter() - started, 1)
    row["shipped_quantization"] = {
        e["role"]: {key: e["quantization"].get(key) for key in SHIPPED_KEYS}
        for e in read_manifest(shipped)["files"]
        if "quantization" in e and e["role"] != "step"
    }
    started = time.perf_counter()
    row |= measure_task(checkpoint, variants(bundle, shipped), args.limit)
    if name in args.latency.split(","):
        row["latency_ms"] = latency(bundle, checkpoint, args.rounds)
    row["measure_seconds"] = round(time.perf_counter() - started, 1)
    return row


def _fmt(value: float, metric: str) -> str:
    return f"{value:.4g}" if metric in ("mse", "perplexity") else f"{value:.2f}"


def metrics_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | metric | fp32 batch32 | int8 form | batch32 | alone | stream | chunk "
        "| max abs diff batch32 vs alone | stream vs chunk | worst mode vs fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["task"] == "seq2seq":
            continue
        metric, scores = row["metric"], row["metrics"]
        for variant in (v for v in VARIANTS if v in scores):
            modes, diffs = scores[variant], row["max_abs_diff"][variant]
            cells = [_fmt(modes[m], metric) if m in modes else "-" for m in MODES]
            worst = max((d for k, d in diffs.items() if k.endswith("_vs_fp32")), default=0.0)
            lines.append(
                f"| {row['dataset']} | {metric} | {_fmt(scores['fp32']['batch32'], metric)} "
                f"| {variant} | {' | '.join(cells)} | {diffs['batch32_vs_alone']:.2g} "
                f"| {diffs.get('stream_vs_chunk', float('nan')):.2g} "
                f"| {'-' if variant == 'fp32' else f'{worst:.2g}'} |"
            )
    return "\n".join(lines)


def seq2seq_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | int8 form | exact match batch32 | alone | outputs changed batch32 vs alone "
        "| batch32 vs fp32 | alone vs fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["task"] != "seq2seq":
            continue
        for variant in (v for v in VARIANTS if v in row["metrics"]):
            scores, changed = row["metrics"][variant], row["changed_outputs"][variant]
            lines.append(
                f"| {row['dataset']} | {variant} | {scores['batch32']:.2f} | {scores['alone']:.2f} "
                f"| {changed['batch32_vs_alone']:.2f} % | {changed['batch32_vs_fp32']:.2f} % "
                f"| {changed['alone_vs_fp32']:.2f} % |"
            )
    return "\n".join(lines)


def shipped_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | export s | integer-kernel nodes | weight-only (valid cost alone, worst mode) "
        "| batch_max_abs_diff (manifest, valid) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        plans = row.get("shipped_quantization", {})
        unit = "" if row["higher_is_better"] else " %"
        integer = sum(len(p["integer"]) for p in plans.values())
        costs = {n: d for p in plans.values() for n, d in p["sensitivity"].items()}
        fallback = [
            f"{node} ({costs[node]:+.3g}{unit})"
            for p in plans.values()
            for node in p["weight_only"]
            if node in costs
        ]
        diffs = {role: p["batch_max_abs_diff"] for role, p in plans.items()}
        shown = ", ".join(f"{r} {d:.3g}" for r, d in diffs.items() if d is not None)
        lines.append(
            f"| {row['dataset']} | {row.get('shipped_export_seconds', '-')} | {integer} "
            f"| {', '.join(fallback) or '-'} | {shown or '-'} |"
        )
    return "\n".join(lines)


def latency_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | graph | T | fp32 ms | int8 integer ms | int8 weight-only ms "
        "| integer speed-up over weight-only |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lat = row.get("latency_ms")
        if not lat:
            continue
        for role in ("model", "step"):
            if role in lat:
                t = lat["sequence_length"] if role == "model" else 1
                v = lat[role]
                lines.append(
                    f"| {row['dataset']} | {role} | {t} | {v['fp32']:.4f} | {v['integer']:.4f} "
                    f"| {v['weight_only']:.4f} | {v['weight_only'] / v['integer']:.2f}x |"
                )
    return "\n".join(lines)


HEADER = """# int8 and batching: does the mode change the task metric?

Command: `{command}`
Machine: {cpu}, {cores} cores (shared with other jobs); ONNX Runtime {ort} on 1 thread;
git {sha}.

Teachers: one-layer LSTM, hidden {hidden}, embed 64, trained a few epochs with
`edgernn.train.train` (seq2seq: Bahdanau attention); exported with `export_bundle`
(dynamo). int8 forms, built from the bundle's fp32 graphs by `quantize_int8`, per tensor:
`integer` = every LSTM / MatMul on ORT's integer kernel (`DynamicQuantizeLSTM`,
`DynamicQuantizeLinear` + `MatMulInteger`); `weight_only` = every one of them computing in
fp32 from int8 weights (`Cast`+`Mul`, same file size); `shipped` = what `export_bundle`'s
defaults write (`ExportConfig()`: a node whose integer kernel alone costs more than 0.5
points / 0.5 % on the valid split, in padded batches or at batch 1, is weight-only). All run
through
`edgernn.runtime.Runtime` on the {split} split. Modes: `batch32` padded batches of 32,
length-sorted as in evaluation, `alone` each example in its own call, `stream` the step
graph one token per call (state carried), `chunk` the step graph with the whole sequence in
one call. Max abs diff: over valid outputs (logits; regress: normalized outputs) of every example.

"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="sentiment,ner,charlm,forecast,translate")
    parser.add_argument("--work", default="runs/int8_batching")
    parser.add_argument("--out", default="benchmarks/results/int8_batching")
    parser.add_argument("--epochs", type=int, default=None, help="default: per dataset")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="first N test examples")
    parser.add_argument("--latency", default="sentiment,charlm", help="datasets to time")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    saved = out.with_suffix(".json")
    previous = json.loads(saved.read_text()) if saved.exists() else {}
    rows = previous.get("rows", [])
    for name in args.datasets.split(","):
        row = measure(work, name, args)
        rows = [r for r in rows if r["dataset"] != name] + [row]
        rows.sort(key=lambda r: list(TASK_OF).index(r["dataset"]))
        env = environment()
        saved.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
        print(json.dumps(row), flush=True)
    command = ".venv/bin/python benchmarks/int8_batching.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None
    )
    header = HEADER.format(
        command=command, cpu=env["cpu"], cores=env["cores_usable"], hidden=args.hidden,
        ort=env["versions"].get("onnxruntime"), sha=env["git_sha"], split=SPLIT,
    )  # fmt: skip
    text = f"{header}{metrics_table(rows)}\n\nseq2seq (greedy decoding):\n\n{seq2seq_table(rows)}\n"
    text += f"\nWhat the default export chose:\n\n{shipped_table(rows)}\n"
    text += f"\nLatency at batch 1 (median ms per call, 1 thread):\n\n{latency_table(rows)}\n"
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
