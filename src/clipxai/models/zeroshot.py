"""Zero-shot classifiers and text embeddings: mean of normalised text embeddings over templates, renormalised.

Class names and the 80 OpenAI ImageNet templates come from open_clip's own zero-shot metadata, not a copy.
"""

from __future__ import annotations

from typing import Callable, Sequence

import open_clip
import torch
import torch.nn.functional as F
from tqdm import tqdm

from clipxai.errors import InputError

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


@torch.no_grad()
def classifier(model: torch.nn.Module, tokenizer: Callable, classnames: Sequence[str],
               templates: Sequence[Template], batch_size: int = 256) -> torch.Tensor:
    """Zero-shot weights [D, C]: per class the mean over ``templates`` of the normalised text embeddings of its
    prompts, renormalised. Templates are callables (open_clip's metadata) or ``str.format`` strings with ``{}``."""
    if not classnames or not templates:
        raise InputError("classifier", "classnames/templates", "at least one class name and one template")
    columns = []
    for name in tqdm(classnames, desc="zero-shot classifier", unit="class", disable=len(classnames) < 50):
        prompts = [_fill(template, name) for template in templates]
        mean = text_embeddings(model, tokenizer, prompts, batch_size).mean(0)
        columns.append(F.normalize(mean, dim=0))
    return torch.stack(columns, dim=1)
