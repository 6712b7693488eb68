"""Verb ``table-similarity``: how often the annotated target is CLIP's most similar one, against a shuffled control.

Per (study, model, domain): top-1 and top-k accuracy of the annotated target (emotion, expression, colour, shape;
for the shapes world's image domain, how often the same-colour image is closer than the same-shape one), for
ArtEmis also the mean per-painting Spearman correlation between CLIP's emotion similarities and the annotators'
emotion distribution; each with a bootstrap 95% CI over images, beside the same score with the labels shuffled
across images (a control that should sit at chance) and the chance level of a random ranking. A second table
quotes seed 001's published claims about these studies, which are qualitative (report/reported.yaml).
"""

from __future__ import annotations

from pathlib import Path

from clipxai.commands import _args

NAME = "table-similarity"
HELP = "similarity table: top-1/top-k of annotated targets and ArtEmis rank correlation, 95% CIs, shuffled control"
RULE = "table_similarity"
COLUMNS = ["study", "model", "method", "domain", "n_targets", "metric", "labels", "n_images", "mean", "lo", "hi",
           "chance"]


def add_arguments(parser) -> None:
    parser.add_argument("--results", nargs="+", action="extend", required=True,
                        help="results/similarity/<study>/<model>.npz")
    parser.add_argument("--top-k", type=int, default=3)
    _args.add_bootstrap_arguments(parser)
    _args.add_reported_argument(parser, "report/reported.yaml: its `qualitative` claims")
    _args.add_output(parser, "--out", required=True, help="results/tables/similarity.csv (a .json sidecar beside it)")
    _args.add_output(parser, "--out-claims", required=True, help="results/tables/similarity_claims.csv")
    parser.add_argument("--rule", default=RULE)


def run(args) -> int:
    import pandas as pd

    from clipxai.io import write_csv
    from clipxai.viz.provenance import write_sidecar

    from clipxai.protocols.similarity import claims_table, read_result, score_result

    reported = _args.reported_file(args.reported)
    records = []
    for raw in args.results:
        path = Path(raw)
        records += score_result(read_result(path), path.stem, args.top_k, args.seed, args.bootstrap)
    write_csv(args.out, pd.DataFrame.from_records(records, columns=COLUMNS))
    write_sidecar(
        args.out, title="Similarity of images to words and images (seed 001's studies), with a shuffled-label control",
        caption=("How often the annotated target is the most similar (top-1) or among the k most similar (top-k) "
                 "of a domain's targets by cosine similarity, mean over the sampled images with bootstrap 95% CI; "
                 "spearman = mean per-image rank correlation between the similarities and the annotators' "
                 "emotion distribution (ArtEmis). labels = shuffled: the same scores with the labels permuted "
                 "across images, or drawn at random where every image has the same label (should sit at "
                 "chance). Shapes world, domain image: how often the image of the same colour (another shape) is "
                 "closer than the image of the same shape (another colour)."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[str(p) for p in args.results], section="similarity")
    write_csv(args.out_claims, claims_table(reported))
    write_sidecar(
        args.out_claims, title="Seed 001's claims about similarity, quoted (qualitative)",
        caption=("What seed 001 says about its similarity studies, quoted from its README. The claims are "
                 "qualitative: it publishes no number for them, so nothing here is compared with a value; the "
                 "last column says which table above measures the same question on this run."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[reported], section="similarity")
    return 0
