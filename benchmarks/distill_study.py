"""Distilled student vs the same student trained from scratch, then pruning and int8.

For every builtin dataset: a teacher of the CLI-default shape (LSTM, hidden 128, embed 64, one
layer) trained with the student's budget (``DistillConfig().train``: a teacher weaker than a
1/4 student trained longer has nothing to teach);
``edgernn.compress.compress`` with its defaults but no pruning (distill to at most 1/4 of the
teacher's parameters, dynamic int8); the same student architecture trained from scratch with
the same budget (same TrainConfig: epochs, patience, seed), over several seeds; and two pruning
variants of the seed-0 distilled student, each followed by int8. Test-split metrics throughout.

    .venv/bin/python benchmarks/distill_study.py --teachers runs/teachers_e40 \\
        --out benchmarks/results/distill_study

Datasets can run in separate processes (``--datasets NAME --out runs/study/NAME``) and be
joined with ``--merge runs/study/*.json --out benchmarks/results/distill_study``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from edgernn.checkpoint import Checkpoint, checkpoint_data, load_checkpoint, save_checkpoint
from edgernn.compress import CompressConfig, compress
from edgernn.data.builtin import BUILTINS, load_builtin
from edgernn.distill import DistillConfig, StudentConfig, distill, student_spec
from edgernn.evaluate import evaluate
from edgernn.models import build_model
from edgernn.prune import PruneConfig, prune
from edgernn.quantize import quantize
from edgernn.report.environment import environment
from edgernn.tasks import primary_metric
from edgernn.train import fit, train

PRUNE_VARIANTS = {
    "structured 0.25": PruneConfig(amount=0.25, mode="structured"),
    "unstructured 0.5": PruneConfig(amount=0.5, mode="unstructured"),
}


def teacher_for(name: str, directory: Path) -> tuple[Checkpoint, float | None]:
    """The teacher for builtin ``name``, trained once and cached in ``directory``.

    Returns the checkpoint and its training seconds (None when it was cached).
    """
    path = directory / f"{name}.pt"
    seconds = None
    if not path.exists():
        config = replace(DistillConfig().train, progress=False)
        checkpoint, seconds = _timed(lambda: train(f"builtin:{name}", BUILTINS[name].task, config))
        directory.mkdir(parents=True, exist_ok=True)
        save_checkpoint(checkpoint, path)
    return load_checkpoint(path), seconds


def _timed(make) -> tuple[torch.nn.Module, float]:
    start = time.perf_counter()
    return make(), time.perf_counter() - start


def seed_runs(checkpoint, data, config: CompressConfig, seeds: int) -> dict:
    """Test metric of scratch and distilled students per seed (seed 0 distilled comes later)."""
    spec = student_spec(checkpoint.spec, config.student)
    metric = primary_metric(spec.task)[0]
    out = {"scratch": [], "distilled": [], "scratch_s": [], "distilled_s": []}
    for seed in range(seeds):
        train_config = replace(config.distill.train, seed=seed)
        torch.manual_seed(seed)  # the same initial weights distill starts from
        model, seconds = _timed(lambda c=train_config: fit(build_model(spec), data, c))
        out["scratch"].append(evaluate(model, data.splits["test"], data.meta)[metric])
        out["scratch_s"].append(seconds)
        if seed == 0:
            continue  # measured through compress
        kd = replace(config.distill, train=train_config)
        model, seconds = _timed(lambda k=kd: distill(checkpoint.build(), data, config.student, k))
        out["distilled"].append(evaluate(model, data.splits["test"], data.meta)[metric])
        out["distilled_s"].append(seconds)
    return out


def pruned_variants(student: torch.nn.Module, data, teacher_params: int) -> dict:
    metric = primary_metric(data.meta.task)[0]
    results = {}
    for label, config in PRUNE_VARIANTS.items():
        pruned = prune(student, config, data)
        int8 = quantize(pruned, data=data)
        results[label] = {
            "pruned": evaluate(pruned, data.splits["test"], data.meta)[metric],
            "int8": evaluate(int8, data.splits["test"], data.meta)[metric],
            "params_ratio": sum(p.numel() for p in pruned.parameters()) / teacher_params,
            "nonzero_ratio": sum(int(p.count_nonzero()) for p in pruned.parameters())
            / teacher_params,
        }
    return results


def measure(name: str, directory: Path, seeds: int, ratio: float, variants: bool) -> dict:
    checkpoint, teacher_seconds = teacher_for(name, directory)
    metric, higher = primary_metric(checkpoint.spec.task)
    quiet = replace(DistillConfig().train, progress=False)
    student = StudentConfig(max_param_ratio=ratio)
    distill = DistillConfig(train=quiet)
    config = CompressConfig(student=student, distill=distill, prune=None)
    result, seconds = _timed(lambda: compress(checkpoint, config))
    rows = {row.stage or "teacher": row for row in result.rows}
    data, _ = checkpoint_data(checkpoint)
    runs = seed_runs(checkpoint, data, config, seeds)
    runs["distilled"].insert(0, rows["distill"].metric)
    runs["distilled_s"].insert(0, seconds)
    teacher = rows["teacher"]
    # No quantize row when no layer qualifies for int8: the student stays fp32.
    int8 = rows.get("quantize", rows["distill"])
    return {
        "dataset": name,
        "task": checkpoint.spec.task,
        "metric": metric,
        "higher_is_better": higher,
        "teacher": teacher.metric,
        "teacher_s": teacher_seconds,
        "student_spec": result.checkpoint.spec.to_dict(),
        "params_ratio": rows["distill"].params / teacher.params,
        "int8": int8.metric,
        "int8_size_ratio": int8.size_bytes / teacher.size_bytes,
        "int8_kept": "quantize" in rows and int8.kept,
        "int8_layers": (result.checkpoint.compression["quantization"] or {}).get("int8", []),
        **runs,
        "prune": pruned_variants(result.checkpoint.build(), data, teacher.params)
        if variants
        else {},
    }


def _gap(value: float, reference: float, higher: bool) -> str:
    """How much better ``value`` is (negative: worse), in points or percent relative."""
    if higher:
        return f"{value - reference:+.2f} pt"
    return f"{100 * (reference - value) / reference:+.1f}%"


def _mean(values: list[float]) -> str:
    spread = f" ± {statistics.stdev(values):.2g}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.4g}{spread}"


def tables(rows: list[dict]) -> str:
    lines = [
        "Test split. Gaps: + is better (points, or percent relative for perplexity/MSE); "
        "± is the standard deviation over seeds; params and size relative to the teacher.",
        "",
        "| dataset | metric | teacher | student h | params | scratch | distilled "
        "| distilled − scratch | distilled wins (seeds) | int8 | int8 vs teacher | size |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        higher, teacher = r["higher_is_better"], r["teacher"]
        wins = sum(
            (d > s) if higher else (d < s)
            for d, s in zip(r["distilled"], r["scratch"], strict=True)
        )
        distilled, scratch = statistics.mean(r["distilled"]), statistics.mean(r["scratch"])
        lines.append(
            f"| {r['dataset']} | {r['metric']} | {teacher:.4g} | {r['student_spec']['hidden']} "
            f"| {r['params_ratio']:.3f} | {_mean(r['scratch'])} | {_mean(r['distilled'])} "
            f"| {_gap(distilled, scratch, higher)} | {wins}/{len(r['scratch'])} "
            f"| {r['int8']:.4g} | {_gap(r['int8'], teacher, higher)} "
            f"| {r['int8_size_ratio']:.3f} |"
        )
    if not any(r["prune"] for r in rows):
        return "\n".join(lines)
    lines += ["", "| dataset | pruning of the seed-0 student | pruned | + int8 | int8 vs teacher "
              "| params | non-zero |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        for label, v in r["prune"].items():
            lines.append(
                f"| {r['dataset']} | {label} | {v['pruned']:.4g} | {v['int8']:.4g} "
                f"| {_gap(v['int8'], r['teacher'], r['higher_is_better'])} "
                f"| {v['params_ratio']:.3f} | {v['nonzero_ratio']:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="", help="comma-separated; default: all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ratio", type=float, default=0.25, help="student/teacher parameters")
    parser.add_argument("--teachers", type=Path, default=Path("runs/teachers_e40"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/distill_study"))
    parser.add_argument("--render", action="store_true", help="rewrite OUT.md from OUT.json")
    parser.add_argument("--skip-prune", action="store_true", help="no pruning variants")
    parser.add_argument("--merge", type=Path, nargs="+", help="join these runs' JSON into OUT")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        rows = sorted((row for part in parts for row in part["rows"]), key=lambda r: r["dataset"])
        payload = parts[0] | {"rows": rows}
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    if args.render or args.merge:
        payload = json.loads(args.out.with_suffix(".json").read_text())
        text = f"Machine: {payload['machine']}\n\n{tables(payload['rows'])}\n"
        args.out.with_suffix(".md").write_text(text)
        return
    torch.set_num_threads(args.threads)
    load_builtin("sentiment")  # fills the registry
    names = args.datasets.split(",") if args.datasets else sorted(BUILTINS)
    rows = []
    for name in names:
        start = time.perf_counter()
        rows.append(measure(name, args.teachers, args.seeds, args.ratio, not args.skip_prune))
        rows[-1]["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps(rows[-1]), flush=True)
    env = environment()
    machine = (
        f"{env['cpu']} ({env['cores']} cores, shared), torch {env['versions']['torch']}, "
        f"{args.threads} thread(s), git {env['git_sha']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "seeds": args.seeds, "ratio": args.ratio, "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(f"Machine: {machine}\n\n{tables(rows)}\n")
    print(tables(rows))


if __name__ == "__main__":
    main()
