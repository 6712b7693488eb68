"""Verb ``table-faithfulness``: area under each perturbation curve per method, with bootstrap CIs, against random.

One row per (data set, model, method, direction, curve): the mean area under the similarity curve over the scored
entries with its bootstrap 95% CI, and the paired difference from the random maps' area on the same entries (a
faithful map: deletion below random, insertion and negative perturbation above it). ``deletion`` is also Chefer
et al.'s positive perturbation (the same order: most relevant first).
"""

from __future__ import annotations

from clipxai.errors import InputError
from clipxai.viz.provenance import publish_table
from clipxai.commands import _args

NAME = "table-faithfulness"
HELP = "faithfulness table: deletion / insertion / negative-perturbation AUC per method with 95% CIs vs random"
RULE = "table_faithfulness"


def add_arguments(parser) -> None:
    parser.add_argument("--entries", nargs="+", action="extend", required=True,
                        help="per-entry curves, results/<dataset>/<model>/scores/faithfulness/<method>.csv")
    parser.add_argument("--random", default="random", help="the method label of the random maps (the floor)")
    _args.add_bootstrap_arguments(parser)
    _args.add_output(parser, "--out", required=True, help="results/tables/faithfulness.csv (a .json sidecar beside it)")
    parser.add_argument("--rule", default=RULE)


def run(args) -> int:
    from clipxai.protocols.faithfulness import read_entry_curves
    from clipxai.protocols.tables import faithfulness_table

    frames = {}
    for raw in args.entries:
        dataset, model, method, frame = read_entry_curves(raw)
        if (dataset, model, method) in frames:
            raise InputError(raw, "(path)", f"one file per (dataset, model, method); {method} given twice")
        frames[(dataset, model, method)] = frame
    table = faithfulness_table(frames, args.random, args.seed, args.bootstrap)
    publish_table(
        table, args.out, title="Faithfulness: perturbation curves of the grounding maps (deletion, insertion, negative)",
        caption=("Area under the image-text cosine similarity as the parts a map ranks first are removed (deletion, "
                 "= Chefer et al.'s positive perturbation; lower is more faithful) or revealed onto a blank start "
                 "(insertion; higher is better), and as the parts it ranks last are removed (negative "
                 "perturbation; higher is better), in steps of 10% of the parts. Text->image perturbs image patches "
                 "(replaced by a baseline image), image->text caption tokens (masked to padding). Mean over entries "
                 "with bootstrap 95% CI; vs_random = paired difference from the random maps on the same entries. "
                 "Insertion and negative perturbation visit the same inputs in opposite order, so their areas "
                 "nearly agree. complete = every entry with maps was curved (n_entries + n_excluded of "
                 "n_dataset_entries); fewer with faithfulness.max_entries, a partial run."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[str(p) for p in args.entries], section="grounding")
    return 0
