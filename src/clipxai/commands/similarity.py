"""Verb ``similarity``: a seeded sample of images against the targets of each domain of one study, explained.

Writes one .npz: the image ids and paths, and per domain its target names, annotated labels (and the annotators'
distribution for ArtEmis), the similarity matrix [images, targets] and one saliency map per (image, target) from
the given attribution method at the patch grid (clipxai.protocols.similarity).
"""

from __future__ import annotations

import json
import logging

from clipxai.commands._args import add_model_arguments
from clipxai.commands import _args

NAME = "similarity"
HELP = "seed 001's similarity study: images against words of one domain or other images, with saliency"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--study", required=True, help="the study's name (keys its sampling)")
    parser.add_argument("--spec", required=True,
                        help='JSON: {"kind": "shapes", "data": ROOT} | {"kind": "artemis", "csv": CSV, "images": '
                             'WIKIART} | {"kind": "affectnet", "path": FOLDER_OR_CSV}; optional "template": "a {}"')
    add_model_arguments(parser)
    parser.add_argument("--method", required=True,
                        help='JSON {"method": registry name, "params": {...}} or a bare registry name')
    parser.add_argument("--n-images", type=int, default=0, help="images sampled from the data set (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    _args.add_output(parser, "--out", required=True, help="output .npz")


def run(args) -> int:
    import torch

    from clipxai import attribution
    from clipxai.errors import InputError
    from clipxai.io import save_npz
    from clipxai.models.registry import load_model
    from clipxai.protocols.datasets import resolve_device
    from clipxai.protocols import similarity as protocol
    from clipxai.seeding import derive_seed

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as err:
        raise InputError("--spec", "(JSON)", f"a study spec object ({err})") from None
    text = args.method.strip()
    method_name, params = (text, {}) if not text.startswith("{") else (json.loads(text)["method"],
                                                                        dict(json.loads(text).get("params", {})))
    if method_name == "random" and "seed" not in params:
        params["seed"] = derive_seed(args.seed, "random", "similarity", args.study)
    method = attribution.get(method_name, **params)
    device = resolve_device(args.device)
    lm = load_model(args.model, args.pretrained, args.checkpoint, device)
    study = protocol.build_study(args.study, spec, args.n_images, args.seed)
    log.info("study %s (%s): %d images, domains %s", study.name, study.kind, len(study.ids),
             ", ".join(d.name for d in study.domains))
    results = protocol.run_study(lm, study, method, batch_size=args.batch_size)
    save_npz(args.out, **protocol.result_arrays(study, results, method_name, params, lm.image_size))
    log.info("wrote %s", args.out)
    return 0
