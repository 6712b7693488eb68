"""The per-rule cost of a finished run, from the benchmark files Snakemake wrote (benchmarks/<rule>/...tsv).

Prints one row per rule: jobs, wall seconds summed over its jobs, mean and max per job, CPU seconds, peak RSS, and
the rule's share of all job seconds, costliest first; the last line sums them. Job seconds add up across jobs that
ran side by side, so the total exceeds the run's wall time when --cores > 1. Compare two runs (before/after a
change) by running this on each: `python bench/rule_cost.py benchmarks/ [--markdown]`.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path


def read_benchmarks(root: Path) -> dict[str, list[dict[str, float]]]:
    """{rule: [one dict per job: s, cpu_time, max_rss]} from every benchmarks/<rule>/**.tsv under root."""
    jobs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for tsv in sorted(root.rglob("*.tsv")):
        rule = tsv.relative_to(root).parts[0]
        with tsv.open(newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                jobs[rule].append({key: _number(row.get(key)) for key in ("s", "cpu_time", "max_rss")})
    return dict(jobs)


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):  # Snakemake writes NA where it could not measure
        return 0.0


def cost_table(jobs: dict[str, list[dict[str, float]]]) -> list[tuple]:
    total = sum(job["s"] for rows in jobs.values() for job in rows) or 1.0
    table = []
    for rule, rows in jobs.items():
        seconds = [job["s"] for job in rows]
        table.append((rule, len(rows), sum(seconds), sum(seconds) / len(rows), max(seconds),
                      sum(job["cpu_time"] for job in rows), max(job["max_rss"] for job in rows),
                      sum(seconds) / total))
    return sorted(table, key=lambda row: (-row[2], row[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", nargs="?", default="benchmarks", type=Path)
    parser.add_argument("--markdown", action="store_true", help="a Markdown table instead of aligned text")
    args = parser.parse_args(argv)
    if not args.benchmarks.is_dir():
        print(f"{args.benchmarks}: expected the benchmarks/ folder of a finished run", file=sys.stderr)
        return 2
    table = cost_table(read_benchmarks(args.benchmarks))
    if not table:
        print(f"{args.benchmarks}: no benchmark .tsv files found", file=sys.stderr)
        return 2
    header = ("rule", "jobs", "job_s", "mean_s", "max_s", "cpu_s", "max_rss_mb", "share")
    rows = [(r[0], str(r[1]), f"{r[2]:.1f}", f"{r[3]:.1f}", f"{r[4]:.1f}", f"{r[5]:.1f}", f"{r[6]:.0f}",
             f"{100 * r[7]:.1f}%") for r in table]
    rows.append(("total", str(sum(r[1] for r in table)), f"{sum(r[2] for r in table):.1f}", "", "",
                 f"{sum(r[5] for r in table):.1f}", "", "100.0%"))
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
        for row in (header, *rows):
            print("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                            for i, (cell, width) in enumerate(zip(row, widths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
