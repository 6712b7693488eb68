"""Verb ``table-binding``: text->image grounding on the shapes world, split by whether the phrase's colour alone
picks out its object.

A model that grounds "a blue star" by colour finds the right object when the star is the only blue object, and
cannot when a blue square shares the image. Each entry of the per-entry grounding scores is put in one subset:
``single object`` (the image has one object), ``colour unique`` (the only object of its colour among several) or
``colour shared`` (another object has its colour). The table gives each subset's mean foreground and macro IoU with
bootstrap 95% CIs, per (data set, model, method): the gap between the last two is the binding gap. Shapes world
only: the subsets come from its category names ("<colour> <shape>").
"""

from __future__ import annotations

from clipxai.errors import InputError
from clipxai.viz.provenance import publish_table
from clipxai.commands import _args

NAME = "table-binding"
HELP = "shapes-world grounding split by whether the phrase's colour alone identifies its object"
RULE = "table_grounding_binding"


def add_arguments(parser) -> None:
    parser.add_argument("--data", nargs="+", action="extend", required=True, metavar="DATASET=ROOT",
                        help="each shapes data set's name and folder (COCO panoptic + PNG layout)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--entries", nargs="+", action="extend", required=True,
                        help="per-entry scores, results/<dataset>/<model>/scores/grounding/<method>.csv")
    parser.add_argument("--mode", default="faithful", help="protocol mode of the scores to use")
    _args.add_bootstrap_arguments(parser)
    _args.add_output(parser, "--out", required=True, help="results/tables/<name>.csv (a .json sidecar goes beside it)")
    parser.add_argument("--rule", default=RULE)


def _parse_roots(pairs: list[str]) -> dict[str, str]:
    roots = {}
    for pair in pairs:
        name, sep, root = pair.partition("=")
        if not sep or not name or not root:
            raise InputError("--data", pair, "DATASET=ROOT")
        roots[name] = root
    return roots


def run(args) -> int:
    from clipxai.protocols.tables import binding_table

    table = binding_table(args.entries, _parse_roots(args.data), args.split, args.mode, args.seed, args.bootstrap)
    publish_table(
        table, args.out, title="Grounding on the shapes world: does the colour alone pick out the object?",
        caption=(f"Text->image foreground and macro IoU ({args.mode}), mean with bootstrap 95% CI, split by whether "
                 "the phrase's object is alone in its image, the only one of its colour, or shares its colour with "
                 "another object. A model that grounds by colour and not by shape scores well on the first two "
                 "and poorly on the third: the difference is the colour-shape binding gap."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[str(p) for p in args.entries], section="grounding")
    return 0
