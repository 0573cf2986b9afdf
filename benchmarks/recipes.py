"""Every recipe in pipelines/ at full size: what the README's recipe table comes from.

Runs ``edgernn run pipelines/NAME.toml -o runs/recipes/NAME --quiet --json`` for each recipe
(a finished run is resumed, i.e. skipped: delete runs/recipes to measure again) and reads the
teacher and final rows of each bundle's ``report.json``: test metric, size, p50 latency at
batch 1 (teacher PyTorch fp32 vs final int8 ONNX, measured side by side by the bundle stage).
seq2seq and lm recipes also get the whole job an app runs (``edgernn.bench`` end-to-end rows:
a greedy and a beam-4 translation, a 32-token generation, per input), teacher in PyTorch vs
the bundle through the runtime. ``--recipes a,b`` re-measures some and keeps the other rows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipes.py --out benchmarks/results/recipes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from edgernn.report.environment import environment

ROOT = Path(__file__).resolve().parent.parent
EDGERNN = str(Path(sys.executable).with_name("edgernn"))
INT8_GRAPHS = ("model.int8.onnx", "encoder.int8.onnx", "decoder.int8.onnx")


def run(recipe: Path, work: Path) -> dict:
    out = work / recipe.stem
    started = time.perf_counter()
    command = [EDGERNN, "run", str(recipe), "-o", str(out), "--quiet", "--json"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{recipe.name} failed:\n{done.stdout}\n{done.stderr}")
    report = json.loads((out / "report.json").read_text())
    rows = report["models"]
    teacher = next(row for row in rows if row["role"] == "teacher")
    # The shipped graphs: int8 (fp32 where compress's guard dropped int8), and for seq2seq
    # an encoder plus a one-step decoder.
    graphs = {Path(row["file"]).name: row for row in rows if row["role"] == "final"}
    precision = "int8" if any(name in graphs for name in INT8_GRAPHS) else "fp32"
    names = INT8_GRAPHS if precision == "int8" else [n.replace(".int8", "") for n in INT8_GRAPHS]
    shipped = [graphs[name] for name in names if name in graphs]
    return {
        "recipe": recipe.stem,
        "task": report["task"],
        "metric": report["metric"]["name"],
        "precision": precision,
        "teacher_metric": teacher["metric"],
        "final_metric": shipped[0]["metric"],
        "teacher_kib": teacher["size_bytes"] / 1024,
        "final_kib": sum(row["size_bytes"] for row in shipped) / 1024,
        "p50_ms": {
            str(point["seq_len"]): [point["p50_ms"], _graphs_p50(shipped, point["seq_len"])]
            for point in _batch1(teacher)
        },
        "end_to_end": _end_to_end(rows),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def _end_to_end(rows: list[dict]) -> dict:
    """Job -> [teacher p50, final p50, teacher tokens/s, final tokens/s] (seq2seq, lm)."""
    teacher = next((r for r in rows if r.get("job") and r["role"] == "teacher"), None)
    final = next((r for r in rows if r.get("job") and r["role"] == "final"), None)
    if not (teacher and final):  # not a seq2seq or lm recipe
        return {}
    theirs = {point["job"]: point for point in teacher["latency"]}
    return {
        point["job"]: [
            theirs[point["job"]]["p50_ms"],
            point["p50_ms"],
            theirs[point["job"]]["tokens_per_s"],
            point["tokens_per_s"],
        ]
        for point in final["latency"]
        if point["job"] in theirs
    }


def _batch1(row: dict) -> list[dict]:
    return [point for point in row["latency"] if point["batch"] == 1 and point["threads"] == 1]


def _graphs_p50(graphs: list[dict], seq_len: int) -> float:
    """One graph's p50; seq2seq: encoder + seq_len one-step decoder calls (greedy decoding)."""
    p50 = [next(p["p50_ms"] for p in _batch1(row) if p["seq_len"] == seq_len) for row in graphs]
    return p50[0] if len(p50) == 1 else p50[0] + seq_len * p50[1]


def markdown(rows: list[dict], env: dict) -> str:
    lines = [
        "# Every recipe at full size (`edgernn run pipelines/NAME.toml`)",
        "",
        f"Machine: {env.get('cpu')}, {env.get('cores')} cores (shared), 1 thread; "
        "command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipes.py`.",
        "Teacher = PyTorch fp32 checkpoint; final = the bundle's shipped ONNX graph (int8, or "
        "fp32 where compress's guard dropped int8), timed side by side in the bundle stage "
        "(p50 at batch 1). seq2seq: the teacher's whole greedy decode against the int8 encoder "
        "+ L one-step int8 decoder calls (sizes: both graphs).",
        "",
        "| recipe | task | metric | shipped | teacher | final | size KiB teacher → final | "
        "p50 ms teacher → final (first L) | (second L) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    jobs = [
        "",
        "The whole job an app runs, per input (teacher PyTorch fp32 with its own search, final "
        "= the bundle's int8 graphs through `edgernn.runtime`):",
        "",
        "| recipe | job | p50 ms teacher → final | tokens/s teacher → final |",
        "|---|---|---|---|",
    ]
    for r in rows:
        for job, (t, f, t_rate, f_rate) in r.get("end_to_end", {}).items():
            jobs.append(
                f"| {r['recipe']} | {job} | {t:.3f} → {f:.3f} ({t / f:.1f}×) | "
                f"{t_rate:.0f} → {f_rate:.0f} |"
            )
    for r in rows:
        lat = [f"L={n}: {t:.3f} → {f:.3f} ({t / f:.1f}×)" for n, (t, f) in r["p50_ms"].items()]
        lat += ["–"] * (2 - len(lat))
        lines.append(
            f"| {r['recipe']} | {r['task']} | {r['metric']} | {r.get('precision', 'int8')} "
            f"| {r['teacher_metric']:.4g} | "
            f"{r['final_metric']:.4g} | {r['teacher_kib']:.1f} → {r['final_kib']:.1f} "
            f"({r['teacher_kib'] / r['final_kib']:.1f}×) | {lat[0]} | {lat[1]} |"
        )
    return "\n".join(lines + (jobs if len(jobs) > 5 else [])) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/recipes"))
    parser.add_argument("--work", default=str(ROOT / "runs/recipes"))
    parser.add_argument("--recipes", help="comma-separated names; default: every recipe")
    args = parser.parse_args()
    recipes = sorted((ROOT / "pipelines").glob("*.toml"))
    if args.recipes:
        recipes = [r for r in recipes if r.stem in args.recipes.split(",")]
    results = Path(f"{args.out}.json")
    kept = json.loads(results.read_text())["rows"] if args.recipes and results.exists() else []
    rows = {row["recipe"]: row for row in kept}
    for recipe in recipes:
        rows[recipe.stem] = run(recipe, Path(args.work))
        print(json.dumps(rows[recipe.stem]), flush=True)
    rows = [rows[name] for name in sorted(rows)]
    env = environment("cpu")
    results.write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    Path(f"{args.out}.md").write_text(markdown(rows, env))


if __name__ == "__main__":
    main()
