"""Expected CPU cost of the paper DAG, per rule, extrapolated from a rehearsal's benchmarks/ (docs/cluster.md).

A rehearsal job's CPU seconds are start-up (imports, model load) plus work proportional to what it processed; this
subtracts a start-up estimate (the cheapest figure job of the run: torch imported, little work), divides the rest
by the items the rehearsal processed and multiplies by the items of config/paper.yaml. The item counts below are
the rehearsal mirror's and the real data sets' (docs/protocols.md); text-side work (prompts) and image-side work
are counted separately where a rule does both. The result is a CPU estimate; on a GPU, ViT forward/backward runs
much faster (not measured here: no GPU was lent), so divide by the speed-up you measure on yours.

    python bench/paper_estimate.py .rehearsal/benchmarks
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rule_cost import read_benchmarks  # noqa: E402

# rule: (items the rehearsal processed, items of the paper config, what an item is)
SCALE = {
    "ground": (26 * 11, 44008 * 11, "PNG T2I entries x methods (I2T alongside)"),
    "faithfulness": (4 * 11, 44008 * 11, "entries x methods (both towers, 10 steps)"),
    "segment_imagenet": (4 * 10 * 2, 4276 * 10 * 3, "images x methods x models (ViT-H counted as ViT-L)"),
    "zeroshot_classifier": (1000 * 1 * 6, 1000 * 80 * 9, "prompts (classes x templates x jobs)"),
    "zeroshot_classify": (3 * (1000 + 6), 3 * (80000 + 50000), "prompts + images, 3 models"),
    "decompose_dataset": (5 * 6, 3 * (50000 + 5794 + 1199), "images x jobs (ImageNet val, Waterbirds test/val)"),
    "segment_voc": (2 * 4, 2 * 1449, "VOC val images x models"),
    "similarity": (2 * 8, 2 * 1000, "images x studies"),
    "score_grounding": (26 * 11, 44008 * 11, "entries x methods"),
}


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "benchmarks")
    jobs = read_benchmarks(root)
    if not jobs:
        print(f"no benchmark files under {root}", file=sys.stderr)
        return 2
    figure_jobs = [job["cpu_time"] for rule, rows in jobs.items() if rule.startswith("figure_") for job in rows]
    startup = min(figure_jobs) if figure_jobs else 0.0
    print(f"start-up estimate: {startup:.1f} CPU-s per job (the cheapest figure job: imports torch, little work)")
    print(f"{'rule':20s} {'jobs':>5s} {'cpu_s':>8s} {'work_s':>8s} {'scale':>9s} {'paper_cpu_h':>12s}  item")
    for rule, (here, paper, item) in SCALE.items():
        rows = jobs.get(rule)
        if not rows:
            continue
        cpu = sum(job["cpu_time"] for job in rows)
        work = max(0.0, cpu - startup * len(rows))
        print(f"{rule:20s} {len(rows):5d} {cpu:8.1f} {work:8.1f} {paper / here:9.0f} {work * paper / here / 3600:12.1f}"
              f"  {item}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
