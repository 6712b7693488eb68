"""The embedded default model: a tiny open_clip CLIP trained on the shapes world on a CPU in minutes.

The model is a plain open_clip ``CLIP`` built from a config (small ViT image tower, small text tower, open_clip's
BPE tokenizer), so every method that runs on it runs unchanged on the papers' models. It is saved in open_clip's
local-dir format (``open_clip_config.json`` + ``open_clip_model.safetensors``) and loaded back through
:func:`clipxai.models.registry.load_model` like any other model.

Training facts measured on a 2-core CPU: colour is learned within a minute,
shape slowly; localisation appears early. Binding colour to shape is helped by *hard negative captions*: for every
image, its caption with each object's shape swapped for another shape (same colours), added as extra negative
columns of the image-to-text contrastive loss; a swap only forms colour-shape pairs that training captions contain.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from clipxai.io import atomic_path, write_json
from clipxai.seeding import generator

log = logging.getLogger(__name__)

SHAPE_WORDS = ("circle", "square", "triangle", "star", "cross")


def tiny_config(image_size: int = 64, patch_size: int = 8, width: int = 128, layers: int = 4, head_width: int = 32,
                text_width: int = 128, text_layers: int = 4, text_heads: int = 4, context_length: int = 16,
                embed_dim: int = 128) -> dict:
    """An open_clip model config (the dict open_clip's JSON model configs hold)."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "patch_size": patch_size, "width": width, "layers": layers,
                       "head_width": head_width},
        "text_cfg": {"context_length": context_length, "vocab_size": 49408, "width": text_width,
                     "heads": text_heads, "layers": text_layers},
    }


@dataclass
class TrainSettings:
    steps: int = 400
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 30
    hard_negatives: bool = True
    seed: int = 0
    threads: int = 2


@dataclass
class Narrative:
    """One training pair: an image and its caption, with the character spans of its object phrases."""

    image_path: Path
    caption: str
    phrase_spans: list[tuple[int, int]]


def narratives_from_png(root: str | Path, split: str) -> list[Narrative]:
    """Group the PNG loader's per-segment entries back into (image, caption, phrase spans)."""
    from clipxai.data import png

    dataset = png.load(root, split)
    by_caption: dict[tuple, Narrative] = {}
    for entry in dataset.entries:
        key = (str(entry.image_path), entry.caption)
        item = by_caption.setdefault(key, Narrative(Path(entry.image_path), entry.caption, []))
        item.phrase_spans.append(tuple(entry.char_span))
    return list(by_caption.values())


def phrase_combinations(caption: str, spans: list[tuple[int, int]]) -> set[tuple[str, str]]:
    """The (word before the shape, shape) pairs of a caption's object phrases: ("red", "circle") in "a red circle"."""
    pairs = set()
    for start, end in spans:
        words = caption[start:end].split(" ")
        pairs |= {(words[i - 1], word) for i, word in enumerate(words) if word in SHAPE_WORDS and i > 0}
    return pairs


def swap_shapes(caption: str, spans: list[tuple[int, int]], gen: torch.Generator,
                allowed: set[tuple[str, str]] | None = None) -> str:
    """The caption with every shape word inside an object phrase replaced by a different shape (a hard negative).

    ``allowed``: the (colour, shape) pairs a replacement may form, normally those of the training captions. Without
    it, a held-out combination ("a red star") would be shown to the model only ever as a negative, which teaches it
    that the text never matches an image: measured here, zero-shot top-1 on held-out combinations was then 0.
    """
    pieces, cursor = [], 0
    for start, end in sorted(spans):
        phrase = caption[start:end]
        words = phrase.split(" ")
        for i, word in enumerate(words):
            if word in SHAPE_WORDS:
                colour = words[i - 1] if i > 0 else None
                others = [s for s in SHAPE_WORDS if s != word and (allowed is None or (colour, s) in allowed)]
                if others:
                    words[i] = others[int(torch.randint(len(others), (1,), generator=gen))]
        pieces += [caption[cursor:start], " ".join(words)]
        cursor = end
    pieces.append(caption[cursor:])
    return "".join(pieces)


def _load_images(narratives: list[Narrative], preprocess) -> torch.Tensor:
    images = []
    for item in tqdm(narratives, desc="loading training images", mininterval=5):
        with Image.open(item.image_path) as im:
            images.append(preprocess(im.convert("RGB")))
    return torch.stack(images)


def _lr_at(step: int, settings: TrainSettings) -> float:
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * progress))


class CompactTokens:
    """Train on a token table of only the ids the captions (and their hard negatives) use, not open_clip's 49,408.

    The rows no caption uses get no gradient, and AdamW (no weight decay on embeddings) leaves a row with zero
    gradient where it is, so training the compact table is the same computation as training the full one without
    its cost: a dense [49408, width] gradient, and AdamW moments over 6.3M of the tiny model's 8M parameters.
    :meth:`restore` writes the trained rows back into the model's full table."""

    def __init__(self, model: torch.nn.Module, used_ids: torch.Tensor):
        self.model, self.full = model, model.token_embedding
        self.ids = torch.unique(used_ids)
        self.index = torch.full((self.full.num_embeddings,), -1, dtype=torch.long)
        self.index[self.ids] = torch.arange(len(self.ids))
        compact = torch.nn.Embedding(len(self.ids), self.full.embedding_dim)
        with torch.no_grad():
            compact.weight.copy_(self.full.weight[self.ids])
        model.token_embedding = compact

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` as rows of the compact table (every id must be among the used ones). The map keeps the ids'
        order, so the end-of-text token is still each row's largest (open_clip's argmax pooling)."""
        mapped = self.index[tokens]
        if (mapped < 0).any():
            raise ValueError("a token id outside the compact table")
        return mapped

    def restore(self) -> None:
        with torch.no_grad():
            self.full.weight[self.ids] = self.model.token_embedding.weight
        self.model.token_embedding = self.full


def train(config: dict, narratives: list[Narrative], settings: TrainSettings, out_dir: str | Path) -> dict:
    """Train a CLIP from ``config`` with the symmetric contrastive loss; write it to ``out_dir``; return a summary."""
    import open_clip

    from clipxai.models import zeroshot
    from clipxai.models.loaded import add_open_clip_config

    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)  # open_clip's initialisers draw from the global generator
    model = open_clip.model.CLIP(**config)
    name = add_open_clip_config("clipxai-toy-train", config)
    tokenizer = open_clip.get_tokenizer(name)
    preprocess = open_clip.image_transform(config["vision_cfg"]["image_size"], is_train=False)
    images = _load_images(narratives, preprocess)
    captions = [n.caption for n in narratives]
    tokens = tokenizer(captions)
    rule = zeroshot.read_rule(model)
    if rule is None or rule[1] != "argmax":  # CompactTokens keeps the ids' order, which argmax pooling relies on
        raise ValueError(f"the tiny CLIP's text tower must pool at its argmax token, not {rule}")
    # hard negatives only swap shape words, so the captions' ids and the shape words' ids are all that is used
    table = CompactTokens(model, torch.cat([tokens.flatten(), tokenizer(list(SHAPE_WORDS)).flatten()]))
    # hard negatives only recombine colours and shapes the training captions pair (see swap_shapes)
    seen = set().union(*(phrase_combinations(n.caption, n.phrase_spans) for n in narratives))
    gen = generator(settings.seed, "train-toy")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr, fused=True)
    model.train()
    losses, started = [], time.perf_counter()
    try:
        for step in tqdm(range(settings.steps), desc="training tiny CLIP", mininterval=5):
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, settings)
            idx = torch.randperm(len(narratives), generator=gen)[: settings.batch_size]
            batch_tokens = tokens[idx]
            if settings.hard_negatives:
                negatives = [swap_shapes(narratives[i].caption, narratives[i].phrase_spans, gen, seen)
                             for i in idx.tolist()]
                batch_tokens = torch.cat([batch_tokens, tokenizer(negatives)])
            lengths = zeroshot.read_lengths(batch_tokens, rule)
            image_emb = F.normalize(model.encode_image(images[idx]), dim=-1)
            # two length groups, each cut to the tokens it reads: captions fill ~10 of 16 positions
            text_emb = F.normalize(zeroshot.encode_text_by_length(model, table(batch_tokens), lengths, rule,
                                                                  -(-len(lengths) // 2)), dim=-1)
            logits = model.logit_scale.exp() * image_emb @ text_emb.T  # [B, B or 2B]: extra columns are negatives
            target = torch.arange(len(idx))
            loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, : len(idx)].T, target))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(float(loss.detach()))
            if step % 50 == 0 or step == settings.steps - 1:
                log.info("step %d/%d loss %.4f lr %.2e", step + 1, settings.steps, losses[-1], _lr_at(step, settings))
    finally:
        table.restore()
    model.eval()
    seconds = time.perf_counter() - started
    save(model, config, out_dir)
    return {"steps": settings.steps, "batch_size": settings.batch_size, "final_loss": float(np.mean(losses[-20:])) if losses else None,
            "n_train_pairs": len(narratives), "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(seconds, 1)}


def save(model: torch.nn.Module, config: dict, out_dir: str | Path) -> None:
    """Write open_clip's local-dir format: the config (with its eval preprocessing) and safetensors weights."""
    import open_clip
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out_dir / "open_clip_model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    write_json(out_dir / "open_clip_config.json", {
        "model_cfg": config,
        "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)},
    })


def read_config(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
