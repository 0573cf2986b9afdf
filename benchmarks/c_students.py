"""Compressed students to C: does the C int8 code keep the shipped ONNX int8 graph's metric?

Issue 19's Done-when: every builtin recipe's student exports to C, compiles warning-free and
matches its ONNX int8 graph's test metric within 0.5 point (1 % relative; a bundle whose
compress dropped int8 ships fp32 graphs, and is compared in fp32), and a streaming
LM generates the same text from C as from the runtime. Per bundle folder (``edgernn compress``
or ``edgernn run`` output: ``student.pt`` beside the graphs), ``export_c`` writes the
student as int8 C (which compiles it with ``-std=c99 -Wall -Wextra -Werror -pedantic`` and
checks it against PyTorch before writing), then on the test split of the student's data:

- C int8 through edgernn's own metric code (``edgernn.c.score.CModule``; seq2seq through
  ``edgernn_translate``, greedy, one source per call) against ``edgernn.runtime`` on the
  bundle's int8 graphs (``edgernn.export.scoring.bundle_metrics``);
- for a language model, the text of ``GENERATED`` tokens at temperature 0 after each of a
  few test-text prefixes: C (the ``edgernn_step`` loop, int8 and fp32) against
  ``Runtime.generate`` (int8 and fp32 graphs), characters in common before they differ; C
  int8 also against the student exported with ``--per-channel --batch-independent``, whose
  int8 graphs compute C's arithmetic (int8 weights, a scale per row, float activations),
  where the shipped int8 graph quantizes its activations per call as well.

    .venv/bin/python benchmarks/c_students.py runs/recipes/* --out benchmarks/results/c_students
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from results_file import machine_line, write_results

from edgernn.c import CExportConfig, export_c
from edgernn.c.harness import compile_harness
from edgernn.c.library import CLibrary
from edgernn.c.score import CModule, CTranslator
from edgernn.checkpoint import checkpoint_data, load_checkpoint
from edgernn.compress.precision import ships_int8
from edgernn.evaluate import evaluate
from edgernn.export import ExportConfig, export_bundle
from edgernn.export.scoring import bundle_metrics
from edgernn.metrics import metric_drop
from edgernn.runtime import Runtime
from edgernn.tasks import primary_metric

BUDGET = {True: 0.5, False: 1.0}  # points, or percent relative
GENERATED = 200
PREFIXES = 10


def c_scores(folder: Path, checkpoint, test: list, work: Path) -> dict:
    if checkpoint.spec.task == "seq2seq":
        model = CTranslator(CLibrary(folder, work))
    else:
        model = CModule(compile_harness(folder, work / "harness"), checkpoint)
    return evaluate(model, test, checkpoint.meta)


def texts(bundle: Path, checkpoint, c_folders: dict, work: Path, data) -> dict:
    """Per precision, how many of GENERATED characters C and the runtime have in common."""
    vocab = checkpoint.meta.vocab
    corpus = "".join(vocab[int(i)] for x, _ in data.splits["test"][:PREFIXES] for i in x)
    prefixes = [corpus[i * 20 : i * 20 + 20] for i in range(PREFIXES)]
    same_arithmetic = ExportConfig(per_channel=True, int8_batch_independent=True, evaluate=False)
    weight_only = export_bundle(checkpoint, work / "weight-only", config=same_arithmetic)
    result = {}
    comparisons = [(p, folder, bundle) for p, folder in c_folders.items()]
    comparisons.append(("int8 weight-only per-channel", c_folders["int8"], weight_only))
    for label, folder, graphs in comparisons:
        runtime = Runtime(graphs, precision=label[:4])
        library = CLibrary(folder, Path(tempfile.mkdtemp(dir=work)))  # one .so per path
        same = []
        for prefix in prefixes:
            wanted = runtime.generate(prefix, GENERATED, temperature=0)
            ids = library.generate(runtime.codec.ids(prefix), GENERATED)
            got = runtime.codec.text(ids, "vocab")
            pairs = enumerate(zip(got, wanted, strict=True))
            same.append(next((i for i, (a, b) in pairs if a != b), GENERATED))
        result[label] = same
    return result


def measure(bundle: Path, work: Path) -> dict:
    checkpoint = load_checkpoint(bundle / "student.pt")
    task = checkpoint.spec.task
    metric, higher = primary_metric(task)
    data, _ = checkpoint_data(checkpoint)
    folders = {p: work / f"{bundle.parent.name}-{bundle.name}-{p}" for p in ("int8", "fp32")}
    exported = {p: export_c(checkpoint, f, CExportConfig(precision=p)) for p, f in folders.items()}
    # What the bundle ships: int8 graphs unless compress dropped int8 (regression, say).
    shipped = "int8" if ships_int8(checkpoint.compression) else "fp32"
    scoring = Path(tempfile.mkdtemp(dir=work))
    c = c_scores(folders[shipped], checkpoint, data.splits["test"], scoring)[metric]
    onnx = bundle_metrics(bundle, shipped, checkpoint.meta.source)[metric]
    drop = metric_drop(onnx, c, metric)
    record = exported[shipped]
    row = {
        "bundle": str(bundle),
        "task": task,
        "metric": metric,
        "precision": shipped,
        "onnx": onnx,
        "c": c,
        "c_vs_onnx": drop,
        "within": abs(drop) <= BUDGET[higher],
        "flash_bytes": record["flash_bytes"],
        "ram_bytes": record["ram_bytes"],
        "weights": record["weights"],
        "parity": record["parity"]["max_abs_diff"],
    }
    if task == "lm":
        row["same_characters"] = texts(bundle, checkpoint, folders, work, data)
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| bundle | task | metric | shipped | ONNX | C | C vs ONNX | within | flash B "
        "(matrices + overhead) | RAM B |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unit = "pt" if primary_metric(r["task"])[1] else "% rel."
        matrices = r["weights"] * (1 if r.get("precision", "int8") == "int8" else 4)
        flash = f"{r['flash_bytes']:,} ({matrices:,} + {r['flash_bytes'] - matrices:,})"
        lines.append(
            f"| {r['bundle']} | {r['task']} | {r['metric']} | {r['precision']} | {r['onnx']:.4g} "
            f"| {r['c']:.4g} | {-r['c_vs_onnx']:+.3g} {unit} "
            f"| {'yes' if r['within'] else 'NO'} "
            f"| {flash} | {r['ram_bytes']:,} |"
        )
    for r in rows:
        for graphs, same in r.get("same_characters", {}).items():
            lines.append(
                f"\n{r['bundle']}: {graphs[:4]} C vs the runtime's {graphs} graphs, characters "
                f"equal before the first difference, of {GENERATED} after each of {len(same)} "
                f"test prefixes: {same}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/c_students"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgernn-c-students-") as work:
        rows = []
        for bundle in args.bundles:
            folder = Path(work) / str(len(rows))
            folder.mkdir()
            rows.append(measure(bundle, folder))
    machine = machine_line()
    write_results(args.out, {"machine": machine, "rows": rows}, f"{table(rows)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
