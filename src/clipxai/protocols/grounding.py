"""The grounding protocol's attribution step (docs/protocols.md C), shared by the verbs that run it.

Text->image: the image padded to a square, the phrase's utterance alone as text; the image map is kept.
Image->text: the image with everything outside the phrase's mask blacked out, all utterances of the narrative joined
by spaces as text (what the original fed CLIP); the token relevance is kept. Both pairs are built by
:mod:`clipxai.protocols.grounding_pairs`. Maps are stored at patch-grid resolution; scoring upsamples them.

:func:`ground_maps` runs several methods over the same entries: each batch's inputs (images read, masked, padded,
preprocessed; captions tokenised) are built once and given to every method in turn, so a method's maps are the
ones it would give alone (the same batches, the same tensors), for the price of one data pass; methods that need
the same forward (and backward) through the model share it (:func:`clipxai.attribution.base.shared_traces`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from clipxai.attribution.base import shared_traces
from clipxai.errors import InputError
from clipxai.protocols.grounding_pairs import explained_image, i2t_text

DIRECTIONS = ("t2i", "i2t")


def parse_method(text: str, option: str = "--method") -> tuple[str, dict]:
    """``{"method": registry name, "params": {...}}`` (JSON) or a bare registry name -> (name, params)."""
    text = text.strip()
    if not text.startswith("{"):
        return text, {}
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(option, "(JSON)", f'{{"method": ..., "params": {{...}}}} ({err})') from None
    if not isinstance(spec, dict) or "method" not in spec:
        raise InputError(option, "method", "a registry name")
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise InputError(option, "params", f"a mapping of parameter names to values, got {params!r}")
    return spec["method"], dict(params)


def shard_entries(entries: list, shard: int, shards: int, max_entries: int) -> list:
    """Entry i belongs to shard i mod shards: every shard sees the whole data set's variety, sizes differ by <= 1."""
    if not 0 <= shard < shards:
        raise InputError("--shard", "shard", f"0 <= shard < {shards}, got {shard}")
    if max_entries < 0:
        raise InputError("--max-entries", "max-entries", f"N >= 0, got {max_entries}")
    if max_entries:
        entries = entries[:max_entries]
    return entries[shard::shards]


def build_methods(method_texts: list[str], seed: int, data: str, split: str,
                  shard: int) -> list[tuple[str, dict, object]]:
    """(registry name, params, built method) of every ``--method`` text (see :func:`parse_method`)."""
    from clipxai import attribution
    from clipxai.seeding import derive_seed

    methods = []
    for text in method_texts:
        name, params = parse_method(text)
        if name == "random" and "seed" not in params:
            # keyed by shard, so shards draw different maps and a rerun of one shard draws the same ones
            params["seed"] = derive_seed(seed, "random", data, split, shard)
        methods.append((name, params, attribution.get(name, **params)))
    return methods


@dataclass
class MethodMaps:
    """One method's rows, in (direction, entry) order, as a maps file stores them."""

    name: str
    params: dict
    entry_id: list = field(default_factory=list)
    direction: list = field(default_factory=list)
    grids: list = field(default_factory=list)
    texts: list = field(default_factory=list)
    tokens: list = field(default_factory=list)

    def arrays(self, loaded) -> dict[str, np.ndarray]:
        """The maps file's arrays (docs/contracts.md): rows, patch-grid maps, token relevance, the method."""
        gh, gw = loaded.grid
        return dict(
            entry_id=np.array(self.entry_id, dtype=str), direction=np.array(self.direction, dtype=str),
            image_grid=np.concatenate(self.grids) if self.grids else np.zeros((0, gh, gw), np.float32),
            text=np.concatenate(self.texts) if self.texts else np.zeros((0, loaded.context_length), np.float32),
            tokens=np.concatenate(self.tokens) if self.tokens else np.zeros((0, loaded.context_length), np.int64),
            image_size=np.int64(loaded.image_size), method=np.array(self.name),
            params=np.array(json.dumps(self.params, sort_keys=True)))


def batch_inputs(loaded, dataset, batch: list, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The (images [B, 3, S, S], tokens [B, ctx]) the protocol pairs for ``batch`` in ``direction``, on the model's
    device."""
    from clipxai.data.transforms import pad_to_square

    images, captions = [], []
    for entry in batch:
        images.append(loaded.preprocess(pad_to_square(explained_image(dataset, entry, direction))))
        captions.append(entry.utterance if direction == "t2i" else i2t_text(entry))
    tokens = loaded.tokenizer(captions)
    return torch.stack(images).to(loaded.device), tokens.to(loaded.device)


def ground_maps(loaded, dataset, entries: list, methods: list[tuple[str, dict, object]], batch_size: int,
                progress: bool = True) -> list[MethodMaps]:
    """Every method's maps of ``entries`` in both directions; ``methods``: (registry name, params, built method).

    Batches of ``batch_size`` entries per direction, each batch's inputs built once and explained by every method.
    """
    if batch_size < 1:
        raise InputError("--batch-size", "value", f"a positive integer, got {batch_size}")
    out = [MethodMaps(name, params) for name, params, _ in methods]
    gh, gw = loaded.grid
    n_batches = -(-len(entries) // batch_size)
    with tqdm(total=len(DIRECTIONS) * n_batches, desc=f"ground {len(methods)} methods", unit="batch",
              mininterval=10, disable=not progress) as bar:
        for direction in DIRECTIONS:
            for start in range(0, len(entries), batch_size):
                batch = entries[start:start + batch_size]
                images, tokens = batch_inputs(loaded, dataset, batch, direction)
                token_rows = tokens.cpu().numpy().astype(np.int64)
                with shared_traces():  # methods needing the same forward (and backward) share it
                    results = [method.attribute(loaded, images, tokens) for _, _, method in methods]
                for maps, result in zip(out, results):
                    grid = (result.image.detach().float().cpu().numpy() if result.image is not None
                            else np.full((len(batch), gh, gw), np.nan, np.float32))
                    text = (result.text.detach().float().cpu().numpy() if result.text is not None
                            else np.full(tokens.shape, np.nan, np.float32))
                    maps.entry_id += [e.entry_id for e in batch]
                    maps.direction += [direction] * len(batch)
                    maps.grids.append(grid.astype(np.float32))
                    maps.texts.append(text.astype(np.float32))
                    maps.tokens.append(token_rows)
                bar.update()
    return out
