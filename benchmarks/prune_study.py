"""Pruning study on builtin datasets: unstructured AGP, large-sparse vs small-dense, structured.

1. Unstructured magnitude pruning to 80% sparsity per weight tensor (recurrent, input and
   linear weights; embeddings and biases kept), one-shot without fine-tuning vs the AGP
   schedule with fine-tuning, against the default teacher (LSTM, hidden 128).
2. Zhu & Gupta's "large-sparse beats small-dense": the pruned teacher vs a dense model whose
   hidden size gives (about) the same number of non-zero parameters, trained from scratch
   with the teacher's recipe.
3. Structured pruning of 50% of the hidden units (128 -> 64), without and with gradual
   fine-tuning, vs the teacher and vs a dense hidden-64 model trained from scratch.

Teachers are trained once with the CLI defaults and cached in --work; every finished row is
cached there too (rows.jsonl), so an interrupted run resumes; use a fresh --work after
changing a setting. One thread throughout.

    .venv/bin/python benchmarks/prune_study.py --work /tmp/prune_study \
        --out benchmarks/results/prune_study
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from edgernn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from edgernn.config import TrainConfig
from edgernn.data import encode, load_raw
from edgernn.data.builtin import load_builtin
from edgernn.evaluate import evaluate
from edgernn.metrics import HIGHER_IS_BETTER
from edgernn.models import build_model
from edgernn.prune import PruneConfig, count_nonzero, prune, units_kept
from edgernn.prune.config import step_targets
from edgernn.report.environment import cpu_model
from edgernn.tasks import primary_metric
from edgernn.train import fit, train

UNSTRUCTURED = PruneConfig(amount=0.8, mode="unstructured", schedule="agp", steps=8, epochs=2)
STRUCTURED = PruneConfig(amount=0.5, mode="structured", schedule="agp", steps=2, epochs=4)
DATASETS = {
    "unstructured": ("sentiment", "ner", "charlm"),
    "large_sparse": ("ner", "charlm"),
    "structured": ("sentiment", "ner", "seqsum", "translate"),
}
LARGE_SPARSE_LEVELS = (0.8, 0.9)
RECIPE = TrainConfig(progress=False)  # the teachers' recipe: edgernn train's defaults
# The sparse model trains for the teacher's epochs plus AGP's steps x epochs of fine-tuning; a
# small dense model given that many epochs without early stopping has at least that budget.
_SPARSE_EPOCHS = RECIPE.epochs + UNSTRUCTURED.steps * UNSTRUCTURED.epochs
LONG = TrainConfig(epochs=_SPARSE_EPOCHS, patience=_SPARSE_EPOCHS, progress=False)


class Study:
    """Teachers, data and finished rows, cached in ``work`` so a rerun resumes."""

    def __init__(self, work: Path):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.cache = work / "rows.jsonl"
        lines = self.cache.read_text().splitlines() if self.cache.exists() else []
        self.rows = {(r["dataset"], r["variant"]): r for r in map(json.loads, lines)}
        self.loaded: dict[str, tuple] = {}

    def teacher(self, name: str) -> tuple[Checkpoint, object]:
        if name not in self.loaded:
            path = self.work / f"{name}.pt"
            if not path.exists():
                task = load_builtin(name).task
                save_checkpoint(train(f"builtin:{name}", task, TrainConfig(progress=False)), path)
            checkpoint = load_checkpoint(path)
            raw = load_raw(checkpoint.meta.source, checkpoint.spec.task)
            self.loaded[name] = checkpoint, encode(raw, checkpoint.meta, checkpoint.spec.max_len)
        return self.loaded[name]

    def row(self, name: str, variant: str, make) -> dict:
        """The cached row, or ``make() -> (model, seconds, extra)`` measured and cached."""
        if (name, variant) not in self.rows:
            model, seconds, extra = make()
            found = measure(name, variant, model, self.teacher(name)[1], seconds, **extra)
            with self.cache.open("a") as handle:
                handle.write(json.dumps(found) + "\n")
            self.rows[(name, variant)] = found
            print(json.dumps(found), flush=True)
        return self.rows[(name, variant)]


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def measure(name: str, variant: str, model, data, seconds: float, **extra) -> dict:
    metric, _ = primary_metric(data.meta.task)
    return {
        "dataset": name,
        "variant": variant,
        "metric": metric,
        "test": evaluate(model, data.splits["test"], data.meta)[metric],
        "hidden": model.spec.hidden,
        "params": params(model),
        "nonzero": count_nonzero(model),
        "seconds": round(seconds, 1),
        **extra,
    }


def pruned(study: Study, name: str, config: PruneConfig):
    def make():
        checkpoint, data = study.teacher(name)
        start = time.perf_counter()
        model = prune(checkpoint.build(), config, data)
        return model, time.perf_counter() - start, {"config": asdict(config)}

    return make


def dense(study: Study, name: str, hidden: int, config: TrainConfig = RECIPE):
    def make():
        checkpoint, data = study.teacher(name)
        torch.manual_seed(0)
        start = time.perf_counter()
        model = fit(build_model(replace(checkpoint.spec, hidden=hidden)), data, config)
        return model, time.perf_counter() - start, {}

    return make


def teacher_row(study: Study, name: str) -> dict:
    return study.row(name, "teacher", lambda: (study.teacher(name)[0].build(), 0.0, {}))


def unstructured(study: Study, name: str) -> list[dict]:
    once = replace(UNSTRUCTURED, schedule="one-shot", epochs=0)
    return [
        teacher_row(study, name),
        study.row(name, "80% one-shot, no fine-tuning", pruned(study, name, once)),
        study.row(name, "80% AGP", pruned(study, name, UNSTRUCTURED)),
    ]


def dense_hidden_for(spec, nonzero: int) -> int:
    """The hidden size whose dense model's parameter count is closest to ``nonzero``."""
    sizes = {h: params(build_model(replace(spec, hidden=h))) for h in range(1, spec.hidden)}
    return min(sizes, key=lambda h: abs(sizes[h] - nonzero))


def large_sparse(study: Study, name: str) -> list[dict]:
    rows = []
    for level in LARGE_SPARSE_LEVELS:
        config = replace(UNSTRUCTURED, amount=level)
        sparse = study.row(name, f"{level:.0%} AGP", pruned(study, name, config))
        hidden = dense_hidden_for(study.teacher(name)[0].spec, sparse["nonzero"])
        small = study.row(name, f"dense hidden {hidden}", dense(study, name, hidden))
        long = study.row(
            name, f"dense hidden {hidden}, {LONG.epochs} epochs", dense(study, name, hidden, LONG)
        )
        rows.append({"sparsity": level, "sparse": sparse, "dense": small, "dense_long": long})
    return rows


def structured(study: Study, name: str) -> list[dict]:
    once = replace(STRUCTURED, schedule="one-shot", epochs=0)
    activation = replace(STRUCTURED, importance="activation")
    return [
        teacher_row(study, name),
        study.row(name, "50% units, no fine-tuning", pruned(study, name, once)),
        study.row(name, "50% units, AGP, norm", pruned(study, name, STRUCTURED)),
        study.row(name, "50% units, AGP, activation", pruned(study, name, activation)),
        study.row(name, "dense hidden 64", dense(study, name, 64)),
    ]


def number(value: float, metric: str) -> str:
    return f"{value:.2f}" if HIGHER_IS_BETTER[metric] else f"{value:.4g}"


def change(new: float, old: float, metric: str) -> str:
    if HIGHER_IS_BETTER[metric]:
        return f"{new - old:+.2f} points"
    return f"{100 * (new - old) / old:+.1f}% (lower is better)"


def unstructured_table(results: dict) -> list[str]:
    lines = [
        "| dataset | metric | teacher | 80% one-shot, no fine-tuning | 80% AGP + fine-tuning "
        "| AGP vs teacher | non-zero / all params | AGP seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (teacher, once, agp) in results.items():
        m = teacher["metric"]
        lines.append(
            f"| {name} | {m} | {number(teacher['test'], m)} | {number(once['test'], m)} "
            f"| {number(agp['test'], m)} | {change(agp['test'], teacher['test'], m)} "
            f"| {agp['nonzero']:,} / {agp['params']:,} | {agp['seconds']} |"
        )
    return lines


def large_sparse_table(results: dict) -> list[str]:
    lines = [
        "| dataset | metric | sparsity | large-sparse (hidden 128) | its non-zeros "
        f"| small-dense, teacher recipe | small-dense, {LONG.epochs} epochs | its params "
        "| better |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        for item in rows:
            sparse, small, long = item["sparse"], item["dense"], item["dense_long"]
            m = sparse["metric"]
            lines.append(
                f"| {name} | {m} | {item['sparsity']:.0%} | {number(sparse['test'], m)} "
                f"| {sparse['nonzero']:,} | {number(small['test'], m)} (hidden {small['hidden']}) "
                f"| {number(long['test'], m)} | {small['params']:,} "
                f"| {'large-sparse' if sparse_wins(item) else 'small-dense'} |"
            )
    return lines


def sparse_wins(item: dict) -> bool:
    """Whether the large-sparse model beats both small-dense runs."""
    higher = HIGHER_IS_BETTER[item["sparse"]["metric"]]
    best = (max if higher else min)(item["dense"]["test"], item["dense_long"]["test"])
    return (item["sparse"]["test"] > best) == higher


def structured_table(results: dict) -> list[str]:
    lines = [
        "| dataset | metric | teacher (h=128) | h=64, no fine-tuning | h=64 AGP, norm "
        "| h=64 AGP, activation | dense h=64 from scratch | params | AGP norm vs teacher "
        "| AGP seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (teacher, once, norm, act, scratch) in results.items():
        m = teacher["metric"]
        cells = " | ".join(number(r["test"], m) for r in (teacher, once, norm, act, scratch))
        lines.append(
            f"| {name} | {m} | {cells} | {teacher['params']:,} -> {norm['params']:,} "
            f"| {change(norm['test'], teacher['test'], m)} | {norm['seconds']} |"
        )
    return lines


def machine(threads: int) -> str:
    cpu = cpu_model()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"{cpu}, {os.cpu_count()} cores shared with other jobs (load average {load} at the "
        f"end), torch {torch.__version__}, {threads} thread"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", default=",".join(DATASETS), help="comma-separated")
    parser.add_argument("--work", type=Path, default=Path("/tmp/prune_study"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/prune_study"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    study, results = Study(args.work), {}
    runners = {"unstructured": unstructured, "large_sparse": large_sparse, "structured": structured}
    for experiment in args.experiments.split(","):
        results[experiment] = {
            name: runners[experiment](study, name) for name in DATASETS[experiment]
        }
    write(args.out, results, machine(1))


COMMAND = (
    ".venv/bin/python benchmarks/prune_study.py --work /tmp/prune_study "
    "--out benchmarks/results/prune_study"
)


def header(machine_line: str) -> list[str]:
    return [
        "# Pruning study",
        "",
        f"Command: `{COMMAND}` (from an empty `--work`, teachers included: about 10 minutes).",
        "",
        f"Machine: {machine_line}. Test split of each builtin dataset; teachers are the CLI "
        "defaults (LSTM, hidden 128, embed 64, one layer, seed 0). Times are wall seconds "
        "on a shared machine: compare them only within this file.",
        "",
        f"- Unstructured: `{UNSTRUCTURED}`. Per-tensor magnitude pruning of recurrent, input "
        "and Linear weights; embeddings and biases kept (they count as non-zeros).",
        f"- Structured: `{STRUCTURED}`: hidden 128 -> 64, units removed after each step: "
        f"{', '.join(str(128 - units_kept(128, a)) for a in step_targets(STRUCTURED, True))}; "
        "norm or activation importance.",
        "- Fine-tuning is `edgernn.train.fit` (AdamW, one-cycle, clipping, best valid epoch).",
        "",
    ]


def findings(results: dict) -> list[str]:
    lines = ["## Findings", ""]
    if "unstructured" in results:
        for name, (teacher, _, agp) in results["unstructured"].items():
            lines.append(
                f"- {name}: 80% AGP {change(agp['test'], teacher['test'], agp['metric'])} vs "
                f"the teacher, at {agp['nonzero'] / agp['params']:.0%} of its parameters non-zero."
            )
    if "large_sparse" in results:
        items = [item for rows in results["large_sparse"].values() for item in rows]
        wins = sum(sparse_wins(item) for item in items)
        lines.append(
            f"- Large-sparse beats small-dense with the same non-zeros in {wins} of {len(items)} "
            "comparisons (each against the better of the two dense runs)."
        )
    if "structured" in results:
        for name, (teacher, _, norm, _, scratch) in results["structured"].items():
            m = teacher["metric"]
            pruned_change = change(norm["test"], teacher["test"], m)
            scratch_change = change(scratch["test"], teacher["test"], m)
            lines.append(
                f"- {name}: structured 50% {pruned_change} vs the teacher; dense hidden 64 "
                f"from scratch {scratch_change}."
            )
    return lines + [""]


def write(out: Path, results: dict, machine_line: str) -> None:
    tables = {
        "unstructured": unstructured_table,
        "large_sparse": large_sparse_table,
        "structured": structured_table,
    }
    titles = {
        "unstructured": "1. Unstructured, 80% sparsity",
        "large_sparse": "2. Large-sparse vs small-dense (same number of non-zero parameters)",
        "structured": "3. Structured, 50% of hidden units removed",
    }
    sections = header(machine_line) + findings(results)
    for experiment, found in results.items():
        sections += [f"## {titles[experiment]}", "", *tables[experiment](found), ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine_line, **results}, indent=1))
    out.with_suffix(".md").write_text("\n".join(sections))
    print("\n".join(sections))


if __name__ == "__main__":
    main()
