"""Verb ``table-similarity``: how often the annotated target is CLIP's most similar one, against a shuffled control.

Per (study, model, domain): top-1 and top-k accuracy of the annotated target (emotion, expression, colour, shape;
for the shapes world's image domain, how often the same-colour image is closer than the same-shape one), for
ArtEmis also the mean per-painting Spearman correlation between CLIP's emotion similarities and the annotators'
emotion distribution; each with a bootstrap 95% CI over images, beside the same score with the labels shuffled
across images (a control that should sit at chance) and the chance level of a random ranking. A second table
quotes seed 001's published claims about these studies, which are qualitative (report/reported.yaml).
"""

from __future__ import annotations

import math
from pathlib import Path

from clipxai.errors import InputError
from clipxai.commands import _args

NAME = "table-similarity"
HELP = "similarity table: top-1/top-k of annotated targets and ArtEmis rank correlation, 95% CIs, shuffled control"
RULE = "table_similarity"
COLUMNS = ["study", "model", "method", "domain", "n_targets", "metric", "labels", "n_images", "mean", "lo", "hi",
           "chance"]


def add_arguments(parser) -> None:
    parser.add_argument("--results", nargs="+", action="extend", required=True, help="results/similarity/<study>/<model>.npz")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--reported", required=True, help="report/reported.yaml (its `qualitative` claims)")
    _args.add_output(parser, "--out", required=True, help="results/tables/similarity.csv (a .json sidecar beside it)")
    _args.add_output(parser, "--out-claims", required=True, help="results/tables/similarity_claims.csv")
    parser.add_argument("--rule", default=RULE)


def chance_topk(n_targets: int, k: int, n_best=None) -> float:
    """Hit rate of a uniformly random ranking: P(one of ``n_best`` annotated targets is among the first k)."""
    import numpy as np

    best = np.ones(1) if n_best is None else np.asarray(n_best, dtype=float)
    misses = [math.comb(n_targets - int(b), k) / math.comb(n_targets, k) for b in best]
    return float(1 - np.mean(misses))


def score(arrays: dict, model: str, top_k: int, seed: int, n_resamples: int) -> list[dict]:
    import numpy as np

    from clipxai.metrics import bootstrap
    from clipxai.protocols.similarity import rank_correlations, topk_hits
    from clipxai.seeding import rng

    study, method = str(arrays["study"]), str(arrays["method"])
    records = []
    for domain in (str(d) for d in arrays["domains"]):
        sims, labels = arrays[f"{domain}__sims"], arrays[f"{domain}__labels"]
        dist = arrays.get(f"{domain}__distribution")
        n_targets = sims.shape[1]
        draw = rng(seed, "similarity-shuffle", study, model, domain)
        permutation = draw.permutation(len(labels))
        shuffled = labels[permutation]
        if dist is None and len(set(labels.tolist())) == 1:
            # one label for every image (the shapes world's image domain): a permutation changes nothing, so the
            # control draws each image's label uniformly from its targets
            shuffled = draw.integers(0, n_targets, size=len(labels))
        n_best = None if dist is None else (dist >= dist.max(axis=1, keepdims=True) - 1e-12).sum(axis=1)
        variants = {"annotated": (labels, dist), "shuffled": (shuffled, None if dist is None else dist[permutation])}
        metrics = [("top-1", 1)] + ([(f"top-{top_k}", top_k)] if top_k < n_targets else [])
        for labels_name, (lab, dis) in variants.items():
            rows = [(name, topk_hits(sims, lab, k, dis), chance_topk(n_targets, k, n_best)) for name, k in metrics]
            if dis is not None:
                rho = rank_correlations(sims, dis)
                rows.append(("spearman", rho[np.isfinite(rho)], 0.0))
            for metric, values, chance in rows:
                mean, lo, hi = bootstrap.ci(values, seed, n_resamples=n_resamples,
                                            keys=("similarity", study, model, domain, metric, labels_name))
                records.append({"study": study, "model": model, "method": method, "domain": domain,
                                "n_targets": n_targets, "metric": metric, "labels": labels_name,
                                "n_images": len(values), "mean": mean, "lo": lo, "hi": hi, "chance": chance})
    return records


def claims_table(reported_path: str):
    import pandas as pd
    import yaml

    try:
        reported = yaml.safe_load(Path(reported_path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(reported_path, "(file)", f"a readable YAML file ({err})") from None
    claims = reported.get("qualitative") or []
    records = []
    for i, claim in enumerate(claims):
        for key in ("source", "claim", "where", "measured_here"):
            if key not in claim:
                raise InputError(reported_path, f"qualitative[{i}].{key}", "a key of every qualitative claim")
        records.append({"source": claim["source"], "claim": claim["claim"], "where": claim["where"],
                        "kind": "qualitative (no number published)", "measured_here": claim["measured_here"]})
    return pd.DataFrame.from_records(records, columns=["source", "claim", "where", "kind", "measured_here"])


def run(args) -> int:
    import pandas as pd

    from clipxai.io import write_csv
    from clipxai.viz.provenance import write_sidecar

    from clipxai.protocols.similarity import read_result

    records = []
    for raw in args.results:
        path = Path(raw)
        records += score(read_result(path), path.stem, args.top_k, args.seed, args.bootstrap)
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
    write_csv(args.out_claims, claims_table(args.reported))
    write_sidecar(
        args.out_claims, title="Seed 001's claims about similarity, quoted (qualitative)",
        caption=("What seed 001 says about its similarity studies, quoted from its README. The claims are "
                 "qualitative: it publishes no number for them, so nothing here is compared with a value; the "
                 "last column says which table above measures the same question on this run."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[args.reported], section="similarity")
    return 0
