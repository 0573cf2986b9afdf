"""Peer comparison (issue 5): the edgernn result against the teacher and two int8 peers.

For each family (RNN, LSTM, GRU, bidirectional LSTM, seq2seq LSTM + Bahdanau attention) one
``bench`` run measures side by side, in the same process tree, batch 1, one thread, lengths
16 and 64:

1. the fp32 PyTorch teacher (``edgernn train --task T --data builtin:NAME --cell C``),
2. the same checkpoint with PyTorch dynamic int8 (bench's ``.pt`` int8 candidate),
3. the teacher exported and quantized by ONNX Runtime alone (``edgernn export TEACHER``,
   its ``*.int8.onnx`` full-sequence graphs),
4. the edgernn result (``edgernn compress TEACHER``: distill, prune, int8, export), its
   final int8 ONNX graphs.

Work files go under ``runs/peer_suite`` (trained, exported and compressed once, then reused).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peer_suite.py \\
        --out benchmarks/results/peer_suite
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from edgernn.bench import BenchConfig, TimingConfig, bench, candidates_from_paths
from edgernn.bench.discover import read_bundle
from edgernn.metrics import drop_unit, metric_drop
from edgernn.report import write_report
from edgernn.report.environment import environment

EDGERNN = str(Path(sys.executable).with_name("edgernn"))
SEQ_LENS = (16, 64)
# Issue 5's target for the edgernn result against the fp32 PyTorch teacher.
TARGET_SIZE_X, TARGET_P50_X = 10.0, 5.0
BUDGET = {True: 1.0, False: 2.0}  # metric: points, or percent relative (MSE, perplexity)
# key: (family label, dataset, task, cell, bidirectional); in the order they are run.
FAMILIES = {
    "lstm": ("LSTM", "sentiment", "classify", "lstm", False),
    "bilstm": ("bidirectional LSTM", "ner", "tag", "lstm", True),
    "gru": ("GRU", "forecast", "regress", "gru", False),
    "rnn": ("RNN", "seqsum", "regress", "rnn", False),
    "seq2seq": ("seq2seq LSTM + Bahdanau", "translate", "seq2seq", "lstm", False),
}
ROLE_ORDER = ("teacher fp32", "torch int8", "ORT int8", "edgernn")


def run(args: list[str], log: list[str]) -> None:
    log.append(f"OMP_NUM_THREADS=1 edgernn {' '.join(args)}")
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([EDGERNN, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"edgernn {' '.join(args)} failed:\n{done.stderr}")


def build(key: str, work: Path, log: list[str]) -> tuple[Path, Path, Path]:
    """The teacher checkpoint, its plain export and the compressed bundle (made if missing)."""
    _, name, task, cell, bidirectional = FAMILIES[key]
    tag = "bi" + cell if bidirectional else cell
    teacher = work / f"{name}_{tag}.pt"
    exported = work / f"{name}_teacher_bundle"
    compressed = work / f"{name}_bundle"
    train = ["train", "--task", task, "--data", f"builtin:{name}", "--cell", cell]
    train += ["--bidirectional"] if bidirectional else []
    train += ["--quiet", "-o", str(teacher)]
    export = ["export", str(teacher), "-o", str(exported)]
    compress = ["compress", str(teacher), "-o", str(compressed), "--quiet"]
    for command, done in ((train, teacher), (export, exported), (compress, compressed)):
        if (done / "manifest.json").is_file() if done.suffix != ".pt" else done.is_file():
            log.append(f"OMP_NUM_THREADS=1 edgernn {' '.join(command)}  # reused")
        else:
            run(command, log)
    return teacher, exported, compressed


def int8_graphs(bundle: Path, kind: str) -> list:
    """The int8 full-sequence graphs of a bundle (no streaming ``step`` graph), as candidates."""
    candidates = candidates_from_paths([str(bundle)])
    _, files = read_bundle(bundle)
    roles = {entry["path"]: entry["role"] for entry in files}
    chosen = []
    for c in candidates:
        if c.precision != "int8" or roles.get(c.path) == "step":
            continue
        graph = Path(c.path).name
        role = "final" if kind == "edgernn" else "peer"
        chosen.append(replace(c, name=f"{kind}: {graph}", role=role))
    return chosen


def onnx_metric(bundle: Path, metric: str) -> float | None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return manifest.get("metrics", {}).get("results", {}).get("onnx_int8", {}).get(metric)


def p50(row: dict, seq_len: int) -> float | None:
    for entry in row["latency"]:
        if entry["batch"] in (1, None) and entry["seq_len"] in (seq_len, None):
            return entry["p50_ms"]
    return None


def measure(key: str, work: Path, min_time: float, log: list[str]) -> dict:
    label, name, task, cell, bidirectional = FAMILIES[key]
    teacher, exported, compressed = build(key, work, log)
    torch_rows = candidates_from_paths([str(teacher)])
    teacher_fp32 = [c for c in torch_rows if c.precision == "fp32"]
    torch_int8 = [replace(c, role="peer") for c in torch_rows if c.precision == "int8"]
    groups = {
        "teacher fp32": teacher_fp32,
        "torch int8": torch_int8,
        "ORT int8": int8_graphs(exported, "ORT int8 of teacher"),
        "edgernn": int8_graphs(compressed, "edgernn"),
    }
    config = BenchConfig(
        batch_sizes=(1,),
        seq_lens=SEQ_LENS,
        threads=(1,),
        data=f"builtin:{name}",
        timing=TimingConfig(min_time_s=min_time, max_time_s=max(2.0, min_time)),
        progress=False,
    )
    paths = " ".join([str(teacher)] + [c.path for g in ("ORT int8", "edgernn") for c in groups[g]])
    log.append(
        f"OMP_NUM_THREADS=1 edgernn bench {paths} --data builtin:{name} --batch-sizes 1 "
        f"--seq-lens 16,64 --threads 1 --min-time {min_time} -o {work / f'{name}_report'}"
        "  # same grid; the script calls bench() on exactly these candidates"
    )
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    report = bench([c for role in ROLE_ORDER for c in groups[role]], config)
    seconds = time.perf_counter() - start
    write_report(report, work / f"{name}_report")
    metric, higher = report["metric"]["name"], report["metric"]["higher_is_better"]
    rows, by_role = [], {}
    for role in ROLE_ORDER:
        bundle = {"ORT int8": exported, "edgernn": compressed}.get(role)
        members = [r for r in report["models"] if r["name"] in {c.name for c in groups[role]}]
        for r in members:
            value = r["metric"] if bundle is None else onnx_metric(bundle, metric)
            rows.append(
                {
                    "candidate": role,
                    "model": r["name"],
                    "file": r["file"],
                    "size_bytes": r["size_bytes"],
                    "params": r["params"],
                    "nonzero_params": r["nonzero_params"],
                    "metric": value,
                    "p50_ms": {str(n): p50(r, n) for n in SEQ_LENS},
                    "peak_rss_mb": r["peak_rss_mb"],
                }
            )
        group = rows[len(rows) - len(members) :]
        by_role[role] = combine(group)
    return {
        "family": label,
        "key": key,
        "dataset": name,
        "task": task,
        "metric": metric,
        "higher_is_better": higher,
        "rows": rows,
        "candidates": by_role,
        "verdict": verdict(by_role, metric, higher),
        "bench_seconds": round(seconds, 1),
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "notes": report["notes"],
    }


def combine(group: list[dict]) -> dict:
    """One candidate from its graphs: sizes add up; so do latencies, per sequence.

    A seq2seq bundle is an encoder graph plus a one-step decoder graph, and the PyTorch rows
    time one teacher-forced pass (encoder + L decoder steps). So the per-sequence latency of
    an ONNX pair is encoder p50 + L × decoder-step p50 (both measured at source length L),
    and the plain sum (encoder + one step) is kept too.
    """
    steps = {r["model"]: "decoder" in Path(r["file"]).name for r in group}
    per_sequence, one_step = {}, {}
    for n in SEQ_LENS:
        times = [(r["p50_ms"][str(n)], steps[r["model"]]) for r in group]
        if any(t is None for t, _ in times):
            per_sequence[str(n)] = one_step[str(n)] = None
            continue
        one_step[str(n)] = sum(t for t, _ in times)
        per_sequence[str(n)] = sum(t * (n if step else 1) for t, step in times)
    combined = {
        "size_bytes": sum(r["size_bytes"] for r in group),
        "metric": group[0]["metric"] if group else None,
        "p50_ms": per_sequence,
        "graphs": len(group),
    }
    if any(steps.values()):
        combined["p50_ms_encoder_plus_one_step"] = one_step
    return combined


def verdict(by: dict, metric: str, higher: bool) -> dict:
    ours, teacher = by["edgernn"], by["teacher fp32"]
    size_x = teacher["size_bytes"] / ours["size_bytes"]
    p50_x = {n: teacher["p50_ms"][n] / ours["p50_ms"][n] for n in ours["p50_ms"]}
    drop = metric_drop(teacher["metric"], ours["metric"], metric)
    ahead = {}
    for peer in ("torch int8", "ORT int8"):
        other = by[peer]
        ahead[peer] = {
            "size_x": other["size_bytes"] / ours["size_bytes"],
            "p50_x": {n: other["p50_ms"][n] / ours["p50_ms"][n] for n in ours["p50_ms"]},
        }
    return {
        "size_x_vs_teacher": size_x,
        "p50_x_vs_teacher": p50_x,
        "metric_teacher": teacher["metric"],
        "metric_edgernn": ours["metric"],
        "metric_drop": drop,
        "metric_drop_unit": drop_unit(metric),
        "ahead": ahead,
        "size_met": size_x >= TARGET_SIZE_X,
        "p50_met": all(x >= TARGET_P50_X for x in p50_x.values()),
        "metric_met": drop <= BUDGET[higher],
        "ahead_met": all(
            a["size_x"] > 1 and all(x > 1 for x in a["p50_x"].values()) for a in ahead.values()
        ),
    }


def _f(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def family_table(fam: dict) -> str:
    teacher = fam["candidates"]["teacher fp32"]
    lines = [
        f"### {fam['family']} ({fam['dataset']}, {fam['task']}; metric {fam['metric']})",
        "",
        "| candidate | file | size KiB | "
        + " | ".join(f"p50 ms L={n}" for n in SEQ_LENS)
        + f" | {fam['metric']} | peak RSS MB |",
        "|---|---|---|" + "---|" * len(SEQ_LENS) + "---|---|",
    ]
    for r in fam["rows"]:
        p = r["p50_ms"]
        rss = r["peak_rss_mb"]
        lines.append(
            f"| {r['candidate']} | `{Path(r['file']).name}` | {r['size_bytes'] / 1024:.1f} | "
            + " | ".join(_f(p[str(n)], 3) for n in SEQ_LENS)
            + f" | {_f(r['metric'])} | {'-' if rss is None else f'{rss:.1f}'} |"
        )
    for role, c in fam["candidates"].items():
        if c["graphs"] < 2:
            continue
        lines.append(
            f"| **{role}, per sequence: encoder + L × decoder step** | | "
            f"{c['size_bytes'] / 1024:.1f} | "
            + " | ".join(_f(c["p50_ms"][str(n)], 3) for n in SEQ_LENS)
            + f" | {_f(c['metric'])} | - |"
        )
    lines.append("")
    lines.append(
        "| vs fp32 teacher (teacher ÷ candidate) | size x | "
        + " | ".join(f"p50 x L={n}" for n in SEQ_LENS)
        + " |"
    )
    lines.append("|---|---|" + "---|" * len(SEQ_LENS))
    for role, c in fam["candidates"].items():
        if role == "teacher fp32":
            continue
        lines.append(
            f"| {role} | {teacher['size_bytes'] / c['size_bytes']:.2f} | "
            + " | ".join(f"{teacher['p50_ms'][str(n)] / c['p50_ms'][str(n)]:.2f}" for n in SEQ_LENS)
            + " |"
        )
    return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def summary_table(families: list[dict]) -> str:
    lines = [
        "| family | size ratio vs teacher | p50 ratio vs teacher (L=16 / 64) "
        "| metric: teacher → edgernn (change) "
        "| ahead of PyTorch-int8 on size / latency | ahead of ORT-int8 on size / latency "
        "| target met |",
        "|---|---|---|---|---|---|---|",
    ]
    for fam in families:
        v = fam["verdict"]
        p50s = " / ".join(f"{x:.1f}×" for x in v["p50_x_vs_teacher"].values())
        unit = "pt" if v["metric_drop_unit"] == "points" else "% rel."
        change = -v["metric_drop"] if unit == "pt" else v["metric_drop"]  # edgernn − teacher
        delta = f"{v['metric_teacher']:.4g} → {v['metric_edgernn']:.4g} "
        delta += f"({change + 0.0:+.2f} {unit})"
        ahead = []
        for peer in ("torch int8", "ORT int8"):
            a = v["ahead"][peer]
            lat = " / ".join(f"{x:.2f}×" for x in a["p50_x"].values())
            size_ok = a["size_x"] > 1
            lat_ok = all(x > 1 for x in a["p50_x"].values())
            ahead.append(f"{_mark(size_ok)} ({a['size_x']:.2f}×) / {_mark(lat_ok)} ({lat})")
        met = v["size_met"] and v["p50_met"] and v["metric_met"] and v["ahead_met"]
        lines.append(
            f"| {fam['family']} | {v['size_x_vs_teacher']:.1f}× smaller | {p50s} lower | {delta} "
            f"| {ahead[0]} | {ahead[1]} | {'met' if met else '**missed**'} |"
        )
    return "\n".join(lines)


def misses(families: list[dict]) -> list[str]:
    found = []
    for fam in families:
        v, name = fam["verdict"], fam["family"]
        if not v["size_met"]:
            found.append(f"{name}: file {v['size_x_vs_teacher']:.1f}× smaller, target ≥ 10×")
        for n, x in v["p50_x_vs_teacher"].items():
            if x < TARGET_P50_X:
                found.append(f"{name}: p50 at L={n} {x:.1f}× lower, target ≥ 5×")
        if not v["metric_met"]:
            unit = v["metric_drop_unit"]
            budget = BUDGET[fam["higher_is_better"]]
            found.append(
                f"{name}: {fam['metric']} worse by {v['metric_drop']:.2f} {unit}, "
                f"budget {budget} {unit}"
            )
        for peer, a in v["ahead"].items():
            if a["size_x"] <= 1:
                found.append(f"{name}: file not smaller than {peer} ({a['size_x']:.2f}×)")
            for n, x in a["p50_x"].items():
                if x <= 1:
                    found.append(f"{name}: p50 at L={n} not lower than {peer} ({x:.2f}×)")
    return found


def caveats(families: list[dict]) -> list[str]:
    """Things a reader of the summary should know, read off the measured numbers."""
    found = []
    for fam in families:
        by, v, name = fam["candidates"], fam["verdict"], fam["family"]
        teacher, torch_int8 = by["teacher fp32"], by["torch int8"]
        if torch_int8["size_bytes"] > 0.9 * teacher["size_bytes"]:
            found.append(
                f"{name}: PyTorch dynamic int8 leaves the recurrent layer fp32 (no dynamic "
                "int8 vanilla RNN layer in torch), so the torch int8 file is nearly the "
                "teacher's size."
            )
        if teacher["p50_ms"]["16"] < torch_int8["p50_ms"]["16"]:
            found.append(
                f"{name}: PyTorch dynamic int8 is slower than fp32 at batch 1, length 16 "
                f"({torch_int8['p50_ms']['16']:.3g} vs {teacher['p50_ms']['16']:.3g} ms), so "
                "at this size it is no latency peer at all; only its file is smaller."
            )
        for peer, a in v["ahead"].items():
            close = {n: x for n, x in a["p50_x"].items() if 1 < x < 1.25}
            if close:
                found.append(
                    f"{name}: ahead of {peer} on latency by a narrow margin only ("
                    + ", ".join(f"{x:.2f}× at L={n}" for n, x in close.items())
                    + "); bench medians repeat within about 2.5 % here."
                )
        if -v["metric_drop"] > 5 * BUDGET[fam["higher_is_better"]]:
            found.append(
                f"{name}: the edgernn result scores much better than its teacher "
                f"({fam['metric']} {v['metric_teacher']:.4g} → {v['metric_edgernn']:.4g}); "
                "the default teacher is weak on this dataset, so the metric criterion is "
                "easy here and says little about compression loss."
            )
    loads = [f"{fam['family']} {lo} → {hi}" for fam in families for lo, hi in [fam["loadavg_1min"]]]
    if any(max(fam["loadavg_1min"]) > 1.5 for fam in families):
        found.append(
            "1-minute load average before → after each family's bench run (2 cores): "
            + "; ".join(loads)
            + ". Other work shared the machine; each family's candidates were timed back to "
            "back under the same load, so its ratios hold better than its absolute times."
        )
    return found


def machine() -> dict:
    env = environment()
    return {
        "cpu": env["cpu"],
        "cores": os.cpu_count(),
        "versions": env["versions"],
        "git_sha": env["git_sha"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated keys")
    parser.add_argument("--work", type=Path, default=Path("runs/peer_suite"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/peer_suite"))
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per grid point")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the .md from the .json, no runs"
    )
    args = parser.parse_args()
    if args.render_only:
        result = json.loads(args.out.with_suffix(".json").read_text())
        args.out.with_suffix(".md").write_text(render(result))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    keys = args.families.split(",")
    unknown = sorted(set(keys) - set(FAMILIES))
    if unknown:
        raise SystemExit(f"unknown families {unknown}; choose from {list(FAMILIES)}")
    families, log = [], []
    for key in keys:
        families.append(measure(key, args.work, args.min_time, log))
        print(json.dumps(families[-1]["verdict"]), flush=True)
    info = machine()
    done = [f["key"] for f in families]
    result = {
        "machine": info,
        "seq_lens": list(SEQ_LENS),
        "batch": 1,
        "threads": 1,
        "families_done": done,
        "families_not_done": [k for k in FAMILIES if k not in done],
        "commands": log,
        "families": families,
        "misses": misses(families),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(render(result))
    print(summary_table(families))


def render(result: dict) -> str:
    info, families = result["machine"], result["families"]
    versions = ", ".join(
        f"{k} {info['versions'][k]}"
        for k in ("torch", "onnxruntime", "onnx", "python")
        if k in info["versions"]
    )
    gpu = [
        f"edgernn bench runs/peer_suite/{f['dataset']}_"
        f"{'bi' if FAMILIES[f['key']][4] else ''}{FAMILIES[f['key']][3]}.pt "
        f"runs/peer_suite/{f['dataset']}_teacher_bundle runs/peer_suite/{f['dataset']}_bundle "
        f"--data builtin:{f['dataset']} --device cuda --batch-sizes 1,8,32 --seq-lens 16,64 "
        f"--threads 1 -o runs/peer_suite/gpu_{f['dataset']}"
        for f in families
    ]
    parts = [
        "# Peer comparison: the edgernn result vs the fp32 teacher, PyTorch int8, ORT int8",
        "",
        f"Machine: {info['cpu']} ({info['cores']} cores, shared); {versions}; "
        f"git {info['git_sha']}. Batch 1, one intra-op thread (`OMP_NUM_THREADS=1`), "
        "sequence lengths 16 and 64; each family is one `bench` run (every candidate in a "
        "fresh subprocess of the same process tree, back to back). Absolute times on this "
        "shared machine are noisy; compare within one family table.",
        "",
        "Candidates per family: **teacher fp32** (PyTorch, the `edgernn train` default: "
        "hidden 128, embed 64, 1 layer), **torch int8** (the same checkpoint under PyTorch "
        "dynamic int8), **ORT int8** (`edgernn export TEACHER`: the teacher quantized by ONNX "
        "Runtime's dynamic int8 alone, `model.int8.onnx`), **edgernn** (`edgernn compress "
        "TEACHER` with every default: distill, prune, int8, export; its final int8 graph). "
        "Metrics: PyTorch rows scored by `bench` on the test split; ONNX rows are the test-split "
        "scores that the export recorded in each bundle's manifest (`onnx_int8`).",
        "",
        f"Target (issue 5): the edgernn result ≥ {TARGET_SIZE_X:g}× smaller file and ≥ "
        f"{TARGET_P50_X:g}× lower p50 than the fp32 teacher, metric within 1 point (2 % "
        "relative for MSE), and ahead of both peers on size and latency. Ratios are "
        "other ÷ edgernn, so > 1 means edgernn is ahead.",
        "",
        f"Families done: {', '.join(result['families_done'])}"
        + (
            f"; not done: {', '.join(result['families_not_done'])}"
            if result["families_not_done"]
            else ""
        )
        + ".",
        "",
        "## Summary",
        "",
        summary_table(families),
        "",
        "### Where the target is missed",
        "",
    ]
    parts += [f"- {m}" for m in result["misses"]] or ["- nowhere: every family meets it."]
    parts += ["", "### Caveats found in the numbers", ""]
    parts += [f"- {c}" for c in caveats(families)] or ["- none."]
    if any(f["task"] == "seq2seq" for f in families):
        parts += [
            "",
            "seq2seq: the PyTorch rows time one teacher-forced pass (encoder + L decoder "
            "steps, L = source length). The ONNX candidates are an encoder graph and a "
            "one-step decoder graph (inputs: one token, memory, mask, state), each timed by "
            "`bench` at source length L; the file size is their sum and the per-sequence p50 "
            "used in the ratios is encoder + L × decoder step (derived from the two measured "
            "medians, not timed as one call). The JSON also keeps encoder + one step.",
        ]
    parts += ["", "## Per family", ""]
    for fam in families:
        parts += [family_table(fam), ""]
    parts += [
        "## Commands",
        "",
        "```",
        "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peer_suite.py "
        "--out benchmarks/results/peer_suite",
        "# which runs, per family (each step skipped when its output exists; here the "
        "sentiment and",
        "# translate teachers were copied from runs/teachers_e40, made by this same train "
        "command):",
        *result["commands"],
        "```",
        "",
        "## GPU table (`gpu_suite.md`: measured on a lent H200 with the earlier teachers)",
        "",
        "On a CUDA machine, after the script above has built `runs/peer_suite`, one run per "
        "family (bundle directories bench every graph in them, fp32 and int8, and the streaming "
        "step graphs too):",
        "",
        "```",
        *gpu,
        "```",
        "",
        "(`--device cuda` times PyTorch fp32/fp16 and ONNX Runtime's CUDA provider; int8 is "
        "CPU-only there.) `bash benchmarks/gpu_suite.sh OUTDIR` runs the same loop without "
        "the teacher's own export (the ORT peer).",
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    main()
