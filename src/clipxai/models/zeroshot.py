"""Zero-shot classifiers and text embeddings: mean of normalised text embeddings over templates, renormalised.

Class names and the 80 OpenAI ImageNet templates come from open_clip's own zero-shot metadata, not a copy.
"""

from __future__ import annotations

from typing import Callable, Sequence

import open_clip
import torch
import torch.nn.functional as F
from open_clip.hf_model import ClsLastHiddenStatePooler, ClsPooler, HFTextEncoder, MeanPooler
from tqdm import tqdm

from clipxai.errors import InputError
from clipxai.models import shared_prefix

Template = str | Callable[[str], str]


def imagenet_classnames() -> list[str]:
    """The 1,000 ImageNet class names open_clip uses for zero-shot evaluation."""
    return list(open_clip.IMAGENET_CLASSNAMES)


def openai_templates() -> list[Template]:
    """The 80 prompt templates of OpenAI's ImageNet zero-shot evaluation (callables: class name -> prompt)."""
    return list(open_clip.OPENAI_IMAGENET_TEMPLATES)


def _fill(template: Template, classname: str) -> str:
    return template(classname) if callable(template) else template.format(classname)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def text_embeddings(model: torch.nn.Module, tokenizer: Callable, texts: Sequence[str],
                    batch_size: int = 256) -> torch.Tensor:
    """Normalised text embeddings [T, D] (float32, on the model's device) of ``texts``."""
    device = _device_of(model)
    chunks = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="encode texts", unit="batch", disable=len(starts) < 4):
        tokens = tokenizer(list(texts[start:start + batch_size])).to(device)
        chunks.append(F.normalize(model.encode_text(tokens).float(), dim=-1))
    if not chunks:
        raise InputError("texts", "(list)", "at least one text")
    return torch.cat(chunks)


# Classes whose prompts one call of open_clip's builder encodes together (80 templates: 8,000 prompts, sorted by
# length into batches of ``batch_size``).
CLASSES_PER_BATCH = 100


def read_rule(model: torch.nn.Module) -> tuple[str, object] | None:
    """How much of a padded token row the text tower reads, when that is decidable from its architecture.

    ("eot", pool, eos_id): an OpenAI-style causal tower pooled at its end-of-text token: outputs up to that token
    never see the padding after it. ("pad", pad_id): a Hugging Face tower that masks padding out of attention and
    pooling. None: anything else is encoded at full length.
    """
    text = getattr(model, "text", None)
    if isinstance(model, open_clip.CLIP):
        pool, eos = model.text_pool_type, getattr(model, "text_eos_id", None)
        causal = model.attn_mask is not None
    elif isinstance(text, open_clip.transformer.TextTransformer):
        pool, eos = text.pool_type, getattr(text, "eos_id", None)
        causal = text.attn_mask is not None and text.cls_emb is None and not text.use_pad_mask
    elif isinstance(text, HFTextEncoder):
        if isinstance(text.pooler, (MeanPooler, ClsPooler, ClsLastHiddenStatePooler)):
            return ("pad", text.config.pad_token_id)
        return None
    else:
        return None
    if causal and (pool == "argmax" or (pool == "eos" and eos is not None)):
        return ("eot", pool, eos)
    return None


def read_lengths(tokens: torch.Tensor, rule: tuple) -> torch.Tensor:
    """Per row, the number of leading tokens the tower reads (see :func:`read_rule`)."""
    if rule[0] == "eot":
        end = tokens.argmax(-1) if rule[1] == "argmax" else (tokens == rule[2]).int().argmax(-1)
        return end + 1
    content = (tokens != rule[1]).int()
    last = tokens.shape[1] - 1 - content.flip(-1).argmax(-1)
    return torch.where(content.any(-1), last + 1, torch.ones_like(last))


def encode_text_cut(model: torch.nn.Module, tokens: torch.Tensor, rule: tuple) -> torch.Tensor:
    """The text tower on rows cut to ``tokens.shape[1]`` columns: the same computation as ``encode_text`` on the
    padded rows, with the positional embedding and the causal mask cut to match (open_clip's own encode_text
    always adds all ``context_length`` positions)."""
    if rule[0] == "pad":
        return model.encode_text(tokens)
    tower = model if isinstance(model, open_clip.CLIP) else model.text
    length = tokens.shape[1]
    x = tower.token_embedding(tokens).to(tower.transformer.get_cast_dtype())
    x = x + tower.positional_embedding[:length].to(x.dtype)
    x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length])
    x = tower.ln_final(x)
    return shared_prefix.project(tower, open_clip.transformer.text_global_pool(x, tokens, rule[1],
                                                                               eos_token_id=rule[2]))


def encode_text_by_length(model: torch.nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, rule: tuple | None,
                          batch_size: int) -> torch.Tensor:
    """The text tower on rows sorted by ``lengths`` (the tokens it reads, :func:`read_lengths`) in batches of
    ``batch_size`` rows, each cut to its longest row (:func:`encode_text_cut`; full length where ``rule`` is None).
    Features come back in the rows' order, as float32; gradients flow (the tiny CLIP trains through it)."""
    order = torch.sort(lengths, stable=True).indices
    out = None
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        if rule is None:
            features = model.encode_text(tokens[rows]).float()
        else:
            features = encode_text_cut(model, tokens[rows, :int(lengths[rows].max())], rule).float()
        if out is None:
            out = features.new_empty((tokens.shape[0], features.shape[1]))
        out[rows] = features
    return out


class LengthSortedText(torch.nn.Module):
    """A view of a CLIP whose ``encode_text`` sorts token rows by length and encodes them in batches of
    ``batch_size`` rows, each batch cut to the longest row it holds: on CPU the cost is the tokens, and zero-shot
    prompts fill ~10 of 77 positions. A causal tower of plain open_clip blocks also encodes each prefix its rows
    share only once (:mod:`clipxai.models.shared_prefix`; 80 templates x 100 classes: 2.1x fewer tokens). Rows come
    back in their order, as float32. Towers that cannot be shown to ignore padding (:func:`read_rule`) are
    encoded at full length, in the same batches."""

    def __init__(self, model: torch.nn.Module, batch_size: int = 256):
        super().__init__()
        self.model, self.batch_size, self.rule = model, batch_size, read_rule(model)

    @torch.no_grad()
    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        if self.rule is None:
            lengths = torch.full((tokens.shape[0],), tokens.shape[1], device=tokens.device)
        else:
            lengths = read_lengths(tokens, self.rule)
        tower = self.model if isinstance(self.model, open_clip.CLIP) else getattr(self.model, "text", None)
        if self.rule is not None and self.rule[0] == "eot" and shared_prefix.supports(tower):
            out = shared_prefix.encode(tower, tokens, lengths, self.batch_size).float()
        else:
            out = encode_text_by_length(self.model, tokens, lengths, self.rule, self.batch_size)
        return F.normalize(out, dim=-1) if normalize else out


@torch.no_grad()
def classifier(model: torch.nn.Module, tokenizer: Callable, classnames: Sequence[str],
               templates: Sequence[Template], batch_size: int = 256,
               classes_per_batch: int = CLASSES_PER_BATCH, progress: bool | None = None) -> torch.Tensor:
    """Zero-shot weights [D, C]: per class the mean over ``templates`` of the normalised text embeddings of its
    prompts, renormalised (``open_clip.build_zero_shot_classifier``, ``classes_per_batch`` classes per call, its
    prompts encoded length-sorted by :class:`LengthSortedText`). Templates are callables (open_clip's metadata) or
    ``str.format`` strings with ``{}``, mixed freely."""
    if not classnames or not templates:
        raise InputError("classifier", "classnames/templates", "at least one class name and one template")
    as_callables = [template if callable(template) else template.format for template in templates]
    show = len(classnames) > 2 * classes_per_batch if progress is None else progress
    return open_clip.build_zero_shot_classifier(
        LengthSortedText(model, batch_size), tokenizer, list(classnames), as_callables,
        num_classes_per_batch=classes_per_batch, device=_device_of(model), use_tqdm=show)


@torch.no_grad()
def classifier_one_class_at_a_time(model: torch.nn.Module, tokenizer: Callable, classnames: Sequence[str],
                                   templates: Sequence[Template], batch_size: int = 256) -> torch.Tensor:
    """The reference :func:`classifier` replaces (and ``bench/zeroshot.py`` times): each class's prompts encoded at
    full context length, one class per forward pass."""
    if not classnames or not templates:
        raise InputError("classifier", "classnames/templates", "at least one class name and one template")
    columns = []
    for name in classnames:
        prompts = [_fill(template, name) for template in templates]
        mean = text_embeddings(model, tokenizer, prompts, batch_size).mean(0)
        columns.append(F.normalize(mean, dim=0))
    return torch.stack(columns, dim=1)
