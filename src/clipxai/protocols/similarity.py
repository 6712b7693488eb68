"""Seed 001's similarity studies: a set of images against targets of one domain, each similarity explained.

A study is a seeded sample of images and one or more target *domains*: words (rendered through a template, e.g.
the eight AffectNet expressions or the nine ArtEmis emotions) or other images. For every (image, target) the cosine
similarity of their embeddings is recorded, and a saliency map from any registered attribution method explains it:
for a word, the method's usual image-text objective; for a target image, the same objective with the target
image's embedding in place of the text's (:func:`image_target`).

Study kinds:

* ``shapes`` (embedded default, a shapes-imagenet folder of single-object images "<colour> <shape>"): domains
  ``colour`` (the colour words), ``shape`` (the shape words) and ``image`` (per image, one other image of the same
  colour and another shape, and one of the same shape and another colour): which does the model find closer?
* ``artemis``: WikiArt paintings against the nine ArtEmis emotions, with the annotators' emotion distribution.
* ``affectnet``: faces against the eight AffectNet expressions.

Scoring (``table-similarity``): top-1 / top-k of the annotated target and, for ArtEmis, the rank correlation
with the annotators' distribution, beside a shuffled-label control (:func:`score_result`).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clipxai.errors import InputError
from clipxai.seeding import rng

KINDS = ("shapes", "artemis", "affectnet")
IMAGE_TARGETS = ("same colour", "same shape")


@dataclass
class Domain:
    name: str
    targets: list[str]                  # target names (words; for images the role of each column)
    labels: np.ndarray                  # int64 [n_images]: the annotated target (-1 = none)
    texts: list[str] | None = None      # the rendered prompts of word targets
    target_images: list[list[Path]] | None = None   # per image, its target images (image domain)
    distribution: np.ndarray | None = None          # float [n_images, n_targets]: annotators' distribution


@dataclass
class Study:
    name: str
    kind: str
    ids: list[str]
    image_paths: list[Path]
    domains: list[Domain] = field(default_factory=list)


def sample_indices(n_total: int, n: int, seed: int, *keys) -> np.ndarray:
    """``n`` distinct indices of ``n_total`` (all if n is 0 or larger), drawn from (seed, keys), sorted."""
    if n <= 0 or n >= n_total:
        return np.arange(n_total)
    return np.sort(rng(seed, "similarity", *keys).choice(n_total, size=n, replace=False))


def _words(words, template: str) -> list[str]:
    if "{}" not in template:
        raise InputError("similarity", "template", f"a prompt template with {{}} for the word, got {template!r}")
    return [template.format(w) for w in words]


def build_study(name: str, spec: dict, n_images: int, seed: int) -> Study:
    """The study ``name`` of config ``spec`` (kind + its data paths), its images sampled from ``seed``."""
    kind = spec.get("kind")
    template = spec.get("template", "{}")
    if kind == "shapes":
        return _shapes_study(name, Path(spec["data"]), n_images, seed, template)
    if kind == "artemis":
        from clipxai.data import artemis

        paintings = artemis.load(spec["csv"], spec["images"])
        chosen = [paintings[i] for i in sample_indices(len(paintings), n_images, seed, name)]
        artemis.verify(chosen)
        counts = np.stack([p.counts for p in chosen])
        # the dominant emotion; a tie goes to the first in list order (scoring counts any tied emotion as a hit)
        domain = Domain("emotion", list(artemis.EMOTIONS), counts.argmax(axis=1), _words(artemis.EMOTIONS, template),
                        distribution=counts / counts.sum(axis=1, keepdims=True))
        return Study(name, kind, [p.id for p in chosen], [p.image_path for p in chosen], [domain])
    if kind == "affectnet":
        from clipxai.data import affectnet

        faces = affectnet.load(spec["path"], spec.get("images"))
        chosen = [faces[i] for i in sample_indices(len(faces), n_images, seed, name)]
        affectnet.verify(chosen)
        domain = Domain("expression", list(affectnet.EXPRESSIONS), np.array([f.label for f in chosen]),
                        _words(affectnet.EXPRESSIONS, template))
        return Study(name, kind, [f.id for f in chosen], [f.image_path for f in chosen], [domain])
    raise InputError("similarity", f"studies.{name}.kind", f"one of {', '.join(KINDS)}, got {kind!r}")


def _shapes_study(name: str, root: Path, n_images: int, seed: int, template: str) -> Study:
    from clipxai.data import imagenet
    from clipxai.data.shapes import COLOURS, SHAPES

    data = imagenet.load(root)
    colours, shapes = list(COLOURS), list(SHAPES)
    pairs = []
    for path, label in data.samples:
        parts = data.class_names[label].split(" ") if data.class_names else []
        if len(parts) != 2 or parts[0] not in colours or parts[1] not in shapes:
            raise InputError(root / "classnames.txt", f"class {label}", "a shapes-world '<colour> <shape>' name")
        pairs.append((path, colours.index(parts[0]), shapes.index(parts[1])))
    chosen = sample_indices(len(pairs), n_images, seed, name)
    colour = np.array([pairs[i][1] for i in chosen])
    shape = np.array([pairs[i][2] for i in chosen])
    draw = rng(seed, "similarity", name, "image-targets")
    targets = []
    for i in chosen:
        _, c, s = pairs[i]
        same_colour = [p for p, c2, s2 in pairs if c2 == c and s2 != s]
        same_shape = [p for p, c2, s2 in pairs if s2 == s and c2 != c]
        if not same_colour or not same_shape:
            raise InputError(root, "images", f"for {colours[c]} {shapes[s]}: another image of its colour and "
                             "another of its shape")
        targets.append([same_colour[draw.integers(len(same_colour))], same_shape[draw.integers(len(same_shape))]])
    ids = [str(Path(pairs[i][0]).relative_to(root)) for i in chosen]
    domains = [Domain("colour", colours, colour, _words(colours, template)),
               Domain("shape", shapes, shape, _words(shapes, template)),
               # the label marks the same-colour image: top-1 = how often the model prefers it
               Domain("image", list(IMAGE_TARGETS), np.zeros(len(chosen), dtype=np.int64), target_images=targets)]
    return Study(name, "shapes", ids, [pairs[i][0] for i in chosen], domains)


def _load(model, paths: list[Path]) -> torch.Tensor:
    images = []
    for path in paths:
        try:
            with Image.open(path) as im:
                images.append(model.preprocess(im.convert("RGB")))
        except (FileNotFoundError, OSError) as err:
            raise InputError(path, "(image)", f"a readable image ({err})") from None
    return torch.stack(images).to(model.device)


def _embed_images(model, paths: list[Path], batch_size: int) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            out.append(F.normalize(model.model.encode_image(_load(model, paths[start:start + batch_size])), dim=-1))
    return torch.cat(out)


@contextlib.contextmanager
def image_target(model, embeddings: torch.Tensor):
    """Make ``encode_text`` return ``embeddings`` (one target image embedding per row) during the block.

    The text tower still runs on the tokens (weighted by zero), so methods that record its attention see the
    usual structures; only the objective changes: it reads the target image's embedding.
    """
    clip = model.model
    original = clip.encode_text

    def encode_text(texts, normalize: bool = False):
        text = original(texts)
        target = embeddings.to(text.dtype)
        return (F.normalize(target, dim=-1) if normalize else target) + 0.0 * text

    clip.encode_text = encode_text
    try:
        yield
    finally:
        del clip.encode_text


def run_study(model, study: Study, method, batch_size: int = 64):
    """{domain: (similarity [n_images, n_targets] float32, saliency [n_images, n_targets, gh, gw] float32)}."""
    query = _embed_images(model, study.image_paths, batch_size)
    n = len(study.ids)
    gh, gw = model.grid
    out = {}
    for domain in study.domains:
        k = len(domain.targets)
        pairs = [(i, j) for i in range(n) for j in range(k)]
        saliency = np.full((n, k, gh, gw), np.nan, np.float32)
        if domain.texts is not None:
            tokens = model.tokenizer(domain.texts).to(model.device)
            with torch.no_grad():
                text = F.normalize(model.model.encode_text(tokens), dim=-1)
            sims = (query @ text.T).cpu().numpy()
            for start in range(0, len(pairs), batch_size):
                batch = pairs[start:start + batch_size]
                images = _load(model, [study.image_paths[i] for i, _ in batch])
                result = method.attribute(model, images, tokens[[j for _, j in batch]])
                for (i, j), grid in zip(batch, result.image.detach().float().cpu().numpy()):
                    saliency[i, j] = grid
        else:
            flat = [p for row in domain.target_images for p in row]
            targets = _embed_images(model, flat, batch_size).reshape(n, k, -1)
            sims = (query[:, None, :] * targets).sum(dim=-1).cpu().numpy()
            empty = model.tokenizer([""]).to(model.device)
            for start in range(0, len(pairs), batch_size):
                batch = pairs[start:start + batch_size]
                images = _load(model, [study.image_paths[i] for i, _ in batch])
                with image_target(model, torch.stack([targets[i, j] for i, j in batch])):
                    result = method.attribute(model, images, empty.expand(len(batch), -1).clone())
                for (i, j), grid in zip(batch, result.image.detach().float().cpu().numpy()):
                    saliency[i, j] = grid
        out[domain.name] = (sims.astype(np.float32), saliency)
    return out


def result_arrays(study: Study, results: dict, method_name: str, params: dict, image_size: int
                  ) -> dict[str, np.ndarray]:
    """What the ``similarity`` .npz holds (:func:`read_result` reads it): the images, the study, the method and, per
    domain ``D``, ``D__targets``, ``D__labels``, ``D__sims`` and ``D__saliency`` (``results`` of :func:`run_study`),
    with ``D__distribution`` and ``D__target_images`` where the domain has them."""
    arrays = {"ids": np.array(study.ids, dtype=str), "image_paths": np.array([str(p) for p in study.image_paths]),
              "study": np.array(study.name), "kind": np.array(study.kind),
              "domains": np.array([d.name for d in study.domains], dtype=str), "method": np.array(method_name),
              "params": np.array(json.dumps(params, sort_keys=True)), "image_size": np.int64(image_size)}
    for domain in study.domains:
        sims, saliency = results[domain.name]
        prefix = f"{domain.name}__"
        arrays[prefix + "targets"] = np.array(domain.targets, dtype=str)
        arrays[prefix + "labels"] = domain.labels.astype(np.int64)
        arrays[prefix + "sims"] = sims
        arrays[prefix + "saliency"] = saliency
        if domain.distribution is not None:
            arrays[prefix + "distribution"] = domain.distribution.astype(np.float64)
        if domain.target_images is not None:
            arrays[prefix + "target_images"] = np.array([[str(p) for p in row] for row in domain.target_images])
    return arrays


# ---------------------------------------------------------------------------------------------------- scoring


def read_result(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as err:
        raise InputError(path, "(file)", f"a similarity .npz written by `clipxai similarity` ({err})") from None
    for key in ("ids", "study", "domains", "method"):
        if key not in arrays:
            raise InputError(path, key, "an array of the similarity file")
    for domain in arrays["domains"]:
        for key in ("targets", "labels", "sims"):
            if f"{domain}__{key}" not in arrays:
                raise InputError(path, f"{domain}__{key}", "an array of the similarity file")
    return arrays



def topk_hits(sims: np.ndarray, labels: np.ndarray, k: int, distribution: np.ndarray | None = None) -> np.ndarray:
    """Per image, 1.0 if the annotated target is among the ``k`` most similar (ties in target order), else 0.

    With a ``distribution`` (ArtEmis), any target with the largest annotated share counts as the annotated one.
    """
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    if distribution is not None:
        best = distribution >= distribution.max(axis=1, keepdims=True) - 1e-12
        return np.take_along_axis(best, order, axis=1).any(axis=1).astype(np.float64)
    return (order == labels[:, None]).any(axis=1).astype(np.float64)


def rank_correlations(sims: np.ndarray, distribution: np.ndarray) -> np.ndarray:
    """Per image, Spearman's rho between its similarities and the annotators' distribution (NaN if either is flat)."""
    from scipy.stats import spearmanr

    out = np.full(sims.shape[0], np.nan)
    for i in range(sims.shape[0]):
        if np.ptp(sims[i]) > 0 and np.ptp(distribution[i]) > 0:
            out[i] = spearmanr(sims[i], distribution[i]).statistic
    return out


def chance_topk(n_targets: int, k: int, n_best=None) -> float:
    """Hit rate of a uniformly random ranking: P(one of ``n_best`` annotated targets is among the first k)."""
    best = np.ones(1) if n_best is None else np.asarray(n_best, dtype=float)
    misses = [math.comb(n_targets - int(b), k) / math.comb(n_targets, k) for b in best]
    return float(1 - np.mean(misses))


def score_result(arrays: dict, model: str, top_k: int, seed: int, n_resamples: int) -> list[dict]:
    """The table rows of one similarity result (:func:`read_result`) of ``model``: per domain top-1 and top-k (and
    for a distribution the Spearman correlation) with bootstrap 95% CIs, for the annotated and the shuffled labels."""
    from clipxai.metrics import bootstrap

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
    """Seed 001's qualitative claims about these studies (``qualitative`` of reported.yaml), one row each."""
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
