"""Every recipe in pipelines/ at full size: what the README's recipe table comes from.

Runs ``edgernn run pipelines/NAME.toml -o runs/recipes/NAME --quiet --json`` for each recipe
(a finished run is resumed, i.e. skipped: delete runs/recipes to measure again) and reads the
teacher and final rows of each bundle's ``report.json``: test metric, size, p50 latency at
batch 1 (teacher PyTorch fp32 vs final int8 ONNX, measured side by side by the bundle stage).

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
    # The shipped graphs: int8, and for seq2seq an encoder plus a one-step decoder.
    graphs = {Path(row["file"]).name: row for row in rows if row["role"] == "final"}
    int8 = [graphs[name] for name in INT8_GRAPHS if name in graphs]
    return {
        "recipe": recipe.stem,
        "task": report["task"],
        "metric": report["metric"]["name"],
        "teacher_metric": teacher["metric"],
        "final_metric": int8[0]["metric"],
        "teacher_kib": teacher["size_bytes"] / 1024,
        "final_kib": sum(row["size_bytes"] for row in int8) / 1024,
        "p50_ms": {
            str(point["seq_len"]): [point["p50_ms"], _graphs_p50(int8, point["seq_len"])]
            for point in _batch1(teacher)
        },
        "wall_s": round(time.perf_counter() - started, 1),
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
        "Teacher = PyTorch fp32 checkpoint; final = the bundle's int8 ONNX graph, timed side by "
        "side in the bundle stage (p50 at batch 1). seq2seq: the teacher's whole greedy decode "
        "against the int8 encoder + L one-step int8 decoder calls (sizes: both graphs).",
        "",
        "| recipe | task | metric | teacher | final | size KiB teacher → final | "
        "p50 ms teacher → final (first L) | (second L) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = [f"L={n}: {t:.3f} → {f:.3f} ({t / f:.1f}×)" for n, (t, f) in r["p50_ms"].items()]
        lat += ["–"] * (2 - len(lat))
        lines.append(
            f"| {r['recipe']} | {r['task']} | {r['metric']} | {r['teacher_metric']:.4g} | "
            f"{r['final_metric']:.4g} | {r['teacher_kib']:.1f} → {r['final_kib']:.1f} "
            f"({r['teacher_kib'] / r['final_kib']:.1f}×) | {lat[0]} | {lat[1]} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/recipes"))
    parser.add_argument("--work", default=str(ROOT / "runs/recipes"))
    args = parser.parse_args()
    recipes = sorted((ROOT / "pipelines").glob("*.toml"))
    rows = []
    for recipe in recipes:
        rows.append(run(recipe, Path(args.work)))
        print(json.dumps(rows[-1]), flush=True)
    env = environment("cpu")
    Path(f"{args.out}.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    Path(f"{args.out}.md").write_text(markdown(rows, env))


if __name__ == "__main__":
    main()
