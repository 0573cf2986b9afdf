"""Your own model at realistic sizes: four tutorial-style models through ``edgernn compress``.

``benchmarks/own_models/train_user_models.py`` trains, the way a user would, a vanilla-RNN
regressor (pickled whole from ``__main__``), a character LM and a bi-LSTM tagger (state dicts)
and a 2-layer bi-LSTM sentiment classifier (a ``model_info`` dict with ``word_to_idx`` and
``config``), each with ``example.npz``, ``vocab.json`` and ``labels.json`` where they apply.
Then each runs through the CLI exactly as a user would type it, single-threaded:

    OMP_NUM_THREADS=1 edgernn compress MODEL.pt [--trust-pickle] --model-file FILE.py \\
        [--model-class NAME --model-args JSON] --example example.npz --task TASK \\
        [--vocab vocab.json] [--labels labels.json] --data builtin:NAME --quiet --json -o OUT
    edgernn predict OUT INPUT...

and is recorded: the user model's parameters and .pt size, the bundle's ``model.int8.onnx``
size and the ratio (target >= 10x), the user model's test metric (from the training script,
every test input alone) against the bundle's int8 test metric (target: within 1 point, or
2 % relative for perplexity/MSE), the adoption line compress prints, and wall times. A failed
compress is recorded as ``fails: <its error line>`` and the others carry on.

    .venv/bin/python benchmarks/own_models.py --out benchmarks/results/own_models
    .venv/bin/python benchmarks/own_models.py --quick   # tiny models, one epoch: a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from edgernn.metrics import HIGHER_IS_BETTER, metric_drop
from edgernn.report.environment import environment, git_sha

ROOT = Path(__file__).resolve().parent.parent
EDGERNN = str(Path(sys.executable).with_name("edgernn"))
SOURCE = Path(__file__).resolve().parent / "own_models"
TRAIN_SCRIPT = SOURCE / "train_user_models.py"
MODELS_FILE = SOURCE / "tutorial_models.py"
BUDGET = {True: 1.0, False: 2.0}  # points, or percent relative (perplexity, MSE)
SIZE_TARGET = 10.0
PERCENT = ("accuracy", "macro_f1", "entity_f1", "token_accuracy")

# name -> how the user saved it and what compress is told. model_args: pass the constructor
# keywords the user trained with (user.json) as --model-args; the sentiment dict carries its
# own config.
MODELS = {
    "forecast": {
        "task": "regress",
        "metric": "mse",
        "saved": "torch.save(model) from __main__",
        "flags": ["--trust-pickle", "--model-file", TRAIN_SCRIPT],
        "predict": ["example.npz"],
    },
    "charlm": {
        "task": "lm",
        "metric": "perplexity",
        "saved": "state_dict",
        "class": "CharLM",
        "model_args": True,
        "vocab": True,
        "predict": ["--length", "60", "the weaver "],
    },
    "ner": {
        "task": "tag",
        "metric": "entity_f1",
        "saved": "state_dict",
        "class": "LSTMTagger",
        "model_args": True,
        "vocab": True,
        "labels": True,
        "predict": ["John Rossi met the family in Austin on monday .", "Chelsea came up in 2019 ."],
    },
    "sentiment": {
        "task": "classify",
        "metric": "accuracy",
        "saved": "{state_dict, word_to_idx, config}",
        "class": "SentimentLSTM",
        "vocab": True,
        "labels": True,
        "predict": ["the plot was not bad at all .", "the humor looked messy ."],
    },
    # Not edgernn's shapes (a CRF on top, a conv front end): distilled from as black boxes.
    "ner-crf": {
        "task": "tag",
        "metric": "entity_f1",
        "saved": "state_dict",
        "class": "BiLSTM_CRF",
        "model_args": True,
        "vocab": True,
        "labels": True,
        "data": "builtin:ner",
        "predict": ["John Rossi met the family in Austin on monday ."],
    },
    "kws": {
        "task": "classify",
        "metric": "accuracy",
        "saved": "state_dict",
        "class": "KeywordSpotter",
        "model_args": True,
        "labels": True,
        "data": "data",  # the clips the training script wrote, in the model's folder
        "predict": ["example.npz"],
    },
    # Also exported by parts: its greedy translations against the user's, one by one.
    "translate": {
        "task": "seq2seq",
        "metric": "exact_match",
        "saved": "torch.save(model): Seq2Seq(Encoder, Decoder)",
        "flags": ["--trust-pickle", "--model-file", MODELS_FILE, "--tokens", "char"],
        "no_task_flag": True,  # its parts say it is a seq2seq
        "vocab": True,
        "parts": True,
        "predict": ["the 27th of aug., 1969", "tuesday, 19 oct 82"],
    },
}
MAX_DECODE = 20  # translate_sentence's max_len in the training script


def train(work: Path, quick: bool, names: str) -> float:
    """Train the user models ``names`` into ``work`` (the user's script, run as a script)."""
    command = [sys.executable, str(TRAIN_SCRIPT), "--out", str(work), "--only", names]
    command += ["--quick"] * quick
    started = time.perf_counter()
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"training failed:\n{done.stdout}\n{done.stderr}")
    return round(time.perf_counter() - started, 1)


def compress_command(name: str, folder: Path, quick: bool) -> list[str]:
    spec, user = MODELS[name], json.loads((folder / "user.json").read_text())
    flags = list(spec.get("flags", ["--model-file", MODELS_FILE]))
    if "class" in spec:
        flags += ["--model-class", spec["class"]]
    if spec.get("model_args"):  # the constructor keywords the user trained with
        flags += ["--model-args", json.dumps(user["model_args"])]
    flags += ["--example", folder / "example.npz"]
    flags += [] if spec.get("no_task_flag") else ["--task", spec["task"]]
    flags += ["--vocab", folder / "vocab.json"] if spec.get("vocab") else []
    flags += ["--labels", folder / "labels.json"] if spec.get("labels") else []
    data = spec.get("data", f"builtin:{name}")
    data = folder / data if not data.startswith("builtin:") else data
    flags += ["--data", data] + (["--epochs", "1"] * quick)
    out = folder / "bundle"
    return [EDGERNN, "compress", folder / "model.pt", *flags, "--quiet", "--json", "-o", out]


def measure(name: str, folder: Path, quick: bool) -> dict:
    spec, user = MODELS[name], json.loads((folder / "user.json").read_text())
    command = [str(part) for part in compress_command(name, folder, quick)]
    metric = spec["metric"]
    row = {
        "model": name,
        "task": spec["task"],
        "saved_as": spec["saved"],
        "metric": metric,
        "user_params": user["params"],
        "user_pt_bytes": (folder / "model.pt").stat().st_size,
        "user_metric": user["test"][metric],
        "user_metrics": user["test"],
        "user_reference": {k: v for k, v in user.items() if k.endswith(("variance", "perplexity"))},
        "train_s": user["train_s"],
        "command": _shown(command),
        # Others edit the tree while this runs: which code measured this row.
        "git_sha": git_sha() or "?",
        "edgernn_tree": tree_hash(),
    }
    started = time.perf_counter()
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    row["compress_s"] = round(time.perf_counter() - started, 1)
    lines = done.stdout.strip().splitlines()
    row["adoption"] = next((line for line in lines if "adopted" in line), None)
    if done.returncode:
        errors = done.stderr.strip().splitlines() or lines or ["(no output)"]
        return row | {"fails": errors[-1], "stdout_tail": lines[-5:]}
    summary = json.loads(lines[-1])
    bundle = Path(summary["bundle"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    scored = manifest.get("metrics", {}).get("results", {})
    final = scored.get("onnx_int8", {}).get(metric)
    row |= {
        "summary": summary,
        "stdout": lines[:-1],
        "int8_onnx_bytes": shipped_int8_bytes(bundle),
        # edgernn's own score of the adopted user model: a cross-check of the user's number
        "adopted_metric": (summary.get("teacher_metrics") or {}).get(metric),
        "final_metric": final,
        "final_metrics": scored.get("onnx_int8"),
        "bundle_scores": {key: value.get(metric) for key, value in scored.items()},
    }
    if row["int8_onnx_bytes"]:
        row["size_ratio"] = row["user_pt_bytes"] / row["int8_onnx_bytes"]
        row["size_ok"] = row["size_ratio"] >= SIZE_TARGET
    if final is not None:
        drop = metric_drop(row["user_metric"], final, metric)
        row |= {"drop": drop, "within_budget": drop <= BUDGET[HIGHER_IS_BETTER[metric]]}
    row["predict"] = predict(bundle, folder, spec["predict"])
    if spec.get("parts"):
        row["parts"] = parts_parity(folder, compress_command(name, folder, quick), user)
    return row


def shipped_int8_bytes(bundle: Path) -> int | None:
    """The int8 graphs an app ships: ``model.int8.onnx`` (its step graph is the same weights
    again), or a seq2seq's encoder and decoder."""
    graphs = ["model.int8.onnx"] if (bundle / "model.int8.onnx").exists() else []
    graphs = graphs or ["encoder.int8.onnx", "decoder.int8.onnx"]
    sizes = [(bundle / name).stat().st_size for name in graphs if (bundle / name).exists()]
    return sum(sizes) if len(sizes) == len(graphs) else None


def parts_parity(folder: Path, compress: list, user: dict) -> dict:
    """Export the user's seq2seq by parts (fp32) and decode the sources the training script
    decoded greedily: how many translations equal the user's, character for character."""
    from edgernn.runtime import Runtime

    flags = compress[3 : compress.index("--data")]  # the model's own flags, not compress's
    out = folder / "parts"
    command = [EDGERNN, "export", str(folder / "model.pt"), *map(str, flags), "-o", str(out)]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    if done.returncode:
        return {"command": _shown(command), "fails": done.stderr.strip().splitlines()[-1:]}
    sources = [item["source"] for item in user["greedy"]]
    got = Runtime(out, precision="fp32").translate(sources, max_len=MAX_DECODE)
    want = [item["greedy"] for item in user["greedy"]]
    differ = [(s, w, g) for s, w, g in zip(sources, want, got, strict=True) if w != g]
    return {
        "command": _shown(command),
        "inputs": len(sources),
        "equal": len(sources) - len(differ),
        "first_differences": differ[:5],
    }


def predict(bundle: Path, folder: Path, inputs: list[str]) -> dict:
    given = [str(folder / i) if i.endswith(".npz") else i for i in inputs]
    command = [EDGERNN, "predict", str(bundle), *given]
    started = time.perf_counter()
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    return {
        "command": _shown(command),
        "rc": done.returncode,
        "output": (done.stdout if done.returncode == 0 else done.stderr).strip().splitlines(),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def tree_hash() -> str:
    """A hash of every edgernn source file as it is on disk now (committed or not)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "edgernn").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _env() -> dict:
    return os.environ | {"OMP_NUM_THREADS": "1"}


def _shown(command: list[str]) -> str:
    """The command as typed from the repository root."""
    shown = [os.path.relpath(p, ROOT) if p.startswith(str(ROOT)) else p for p in command]
    shown[0] = "edgernn" if shown[0].endswith("edgernn") else shown[0]
    return shlex.join(shown)


def _number(value: float | None, metric: str) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if metric in PERCENT else f"{value:.4g}"


def markdown(rows: list[dict], env: dict, meta: dict) -> str:
    lines = [
        "# Your own model at realistic sizes (`edgernn compress MODEL.pt --model-file ...`)",
        "",
        f"Machine: {env.get('cpu')}, {env.get('cores')} cores (shared with other jobs), "
        f"1 thread (`OMP_NUM_THREADS=1`); {meta['date']}, commit {env.get('git_sha')}, "
        f"torch {env['versions'].get('torch')}, onnxruntime {env['versions'].get('onnxruntime')}."
        f" Command: `{meta['command']}` ("
        + (f"training: {meta['train_s']} s)." if meta["train_s"] else "models reused).")
        + (" **--quick: tiny models, one epoch.**" if meta["quick"] else ""),
        "",
        "User models: `benchmarks/own_models/tutorial_models.py` and `train_user_models.py` "
        "(hidden 128, Adam, a plain loop). The user's test metric is scored by the training "
        "script with edgernn's metric code on every test input alone; adopted: compress's "
        "own score of the adopted user model (its teacher row); final: the bundle's "
        "`model.int8.onnx` on the same test split (the manifest's scores). "
        "Size ratio: the user's fp32 `.pt` file over `model.int8.onnx` (a seq2seq: its encoder "
        "and decoder int8 graphs together; target >= 10x); "
        "metric budget: 1 point, or 2 % relative for perplexity/MSE; drop: how much worse "
        "final is than user (negative: better).",
        "",
        "| model | saved as | params | .pt KiB | int8 ONNX KiB | ratio | metric | user "
        "| adopted | final | drop | train s | compress s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = (
            f"| {r['model']} ({r['task']}) | {r['saved_as']} | {r['user_params']:,} | "
            f"{r['user_pt_bytes'] / 1024:.1f} | "
        )
        if "fails" in r:
            lines.append(
                head + f"fails: {r['fails']} | | {r['metric']} | "
                f"{_number(r['user_metric'], r['metric'])} | | | | {r['train_s']} | "
                f"{r['compress_s']} |"
            )
            continue
        kib = r["int8_onnx_bytes"] / 1024 if r["int8_onnx_bytes"] else None
        ratio = "–"
        if "size_ratio" in r:
            ratio = f"{r['size_ratio']:.1f}×" + (" ok" if r["size_ok"] else " **under**")
        drop = "–" if "drop" not in r else f"{r['drop']:+.2f}{_unit(r['metric'])}"
        drop += "" if "drop" not in r else (" ok" if r["within_budget"] else " **over**")
        lines.append(
            head + f"{'–' if kib is None else f'{kib:.1f}'} | {ratio} | {r['metric']} | "
            f"{_number(r['user_metric'], r['metric'])} | "
            f"{_number(r['adopted_metric'], r['metric'])} | "
            f"{_number(r['final_metric'], r['metric'])} | {drop} | {r['train_s']} | "
            f"{r['compress_s']} |"
        )
    lines += ["", "Reference points: " + _references(rows), "", "Every metric, user → final:"]
    lines += [""] + [f"- {r['model']}: {_all_metrics(r)}" for r in rows]
    trees = {r["edgernn_tree"] for r in rows}  # HEAD may move (commits) with the files unchanged
    lines += ["", "edgernn code per row (HEAD, hash of edgernn/**/*.py on disk): "]
    lines[-1] += ", ".join(f"{r['model']} {r['git_sha'][:8]} {r['edgernn_tree']}" for r in rows)
    lines[-1] += " (one tree for all)" if len(trees) == 1 else " (**the tree changed mid-run**)"
    parted = [r for r in rows if "parts" in r]
    if parted:
        lines += ["", "## Seq2seq by parts: greedy translations, bundle (fp32) vs your model", ""]
    for r in parted:
        parts = r["parts"]
        if "fails" in parts:
            lines += [f"- {r['model']}: export fails: {parts['fails']}"]
            continue
        lines += [
            f"- {r['model']}: {parts['equal']} of {parts['inputs']} test sources decode to the "
            f"same text as the training script's own greedy loop (`{parts['command']}`)"
        ]
        lines += [f"  - {src!r}: yours {want!r}, bundle {got!r}" for src, want, got in
                  parts["first_differences"]]  # fmt: skip
    lines += ["", "## Adoption", ""]
    lines += [f"- {r['model']}: {r.get('adoption') or '(no adoption line)'}" for r in rows]
    lines += ["", "## Commands", ""]
    for r in rows:
        lines += [f"{r['model']}:", "", "```", r["command"]]
        if "predict" in r:
            lines += [r["predict"]["command"], *[f"  {o}" for o in r["predict"]["output"]]]
        lines += ["```", ""]
    return "\n".join(lines)


def _all_metrics(row: dict) -> str:
    final = row.get("final_metrics") or {}
    return ", ".join(
        f"{name} {_number(value, name)} → {_number(final.get(name), name)}"
        for name, value in row["user_metrics"].items()
    )


def _unit(metric: str) -> str:
    return " %" if metric in ("mse", "perplexity") else " pt"


def _references(rows: list[dict]) -> str:
    parts = []
    for r in rows:
        for key, value in r["user_reference"].items():
            parts.append(f"{r['model']} {key.replace('_', ' ')} {value:.4g}")
    return "; ".join(parts) or "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="results path without suffix [benchmarks/results/own_models]")
    parser.add_argument("--work", help="where models and bundles go [runs/own_models]")
    parser.add_argument("--quick", action="store_true", help="tiny models, one epoch: a smoke run")
    parser.add_argument("--only", default=",".join(MODELS), help="comma-separated model names")
    parser.add_argument("--no-train", action="store_true", help="reuse the models in --work")
    args = parser.parse_args()
    suffix = "_quick" if args.quick else ""
    work = Path(args.work or ROOT / f"runs/own_models{suffix}")
    out = args.out or (
        work / "own_models" if args.quick else ROOT / "benchmarks/results/own_models"
    )
    train_s = None if args.no_train else train(work, args.quick, args.only)
    rows = []
    for name in args.only.split(","):
        rows.append(measure(name, work / name, args.quick))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "stdout"}), flush=True)
    env = environment("cpu")
    meta = {
        "date": datetime.date.today().isoformat(),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/own_models.py"
        + (" --quick" if args.quick else "")
        + (f" --only {args.only}" if args.only != ",".join(MODELS) else "")
        + (f" --out {os.path.relpath(out, ROOT)}" if args.out else ""),
        "train_s": train_s,
        "quick": args.quick,
    }
    Path(f"{out}.json").write_text(
        json.dumps({"environment": env, "meta": meta, "rows": rows}, indent=1)
    )
    Path(f"{out}.md").write_text(markdown(rows, env, meta))


if __name__ == "__main__":
    main()
