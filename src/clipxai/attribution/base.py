"""What every attribution method shares: the result type, the method base class, input checks, the objectives,
and one forward + one backward that yields every block's attention probabilities and their gradients.

Conventions (docs/contracts.md): images ``[B, 3, H, W]`` already preprocessed, texts ``[B, ctx]`` token ids, row i
of one pairs with row i of the other; rows are independent pairs, so one backward of the summed per-row
objectives gives every row's gradients. Image maps stay at the model's patch grid, unnormalised; token relevance
is aligned with token positions, NaN at the start token, the end token and after, the caption tokens summing to 1.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer

from clipxai.errors import InputError
from clipxai.metrics.maps import bilinear
from clipxai.models.attention import record_attention

# An objective maps (image embeddings [B, D], text embeddings [B, D], logit scale exp) to one score per row [B].
Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class NotApplicableError(InputError):
    """The method cannot explain this kind of model (e.g. a ResNet GradCAM asked of a ViT)."""

    def __init__(self, method: str, model_name: str, needs: str, has: str):
        super().__init__(model_name, f"method {method}", f"{needs}; this model has {has}")


@dataclass
class Attribution:
    """One explanation per batch row."""

    image: torch.Tensor | None  # [B, gh, gw] float32 at patch-grid resolution, unnormalised
    text: torch.Tensor | None  # [B, context_length] float32; NaN outside the caption tokens, which sum to 1


class Method:
    """Base of every attribution method: a registry ``name``, validated parameters, one ``attribute`` call.

    Subclasses declare ``defaults`` (parameter name -> default value; the type of the default is the type the
    parameter is converted to) and may override :meth:`check_params` for value checks.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}
    maps_text: ClassVar[bool] = True  # False: image maps only (``Attribution.text`` is None), so no I2T scores

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise InputError(self.name, unknown[0], f"a parameter of method {self.name} (known: {known})")
        merged = dict(self.defaults)
        for key, value in params.items():
            merged[key] = _convert(self.name, key, value, self.defaults[key])
        self.params = merged
        self.check_params()

    def check_params(self) -> None:
        """Raise InputError for a parameter value the method cannot use."""

    def attribute(self, model, images: torch.Tensor, texts: torch.Tensor) -> Attribution:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


def _convert(method: str, key: str, value, default):
    """Convert a parameter given on the command line / in config to the type of its default."""
    try:
        if default is None:
            return value
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
                return value.lower() in ("true", "yes")
            raise ValueError(value)
        if isinstance(default, int):
            if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise InputError(method, key, f"a {type(default).__name__}, got {value!r}") from None


def check_polarity(method: str, polarity: str) -> None:
    if polarity not in ("positive", "negative"):
        raise InputError(method, "polarity", f"'positive' or 'negative', got {polarity!r}")


# ---------------------------------------------------------------------------------------------------------------
# Models and inputs
# ---------------------------------------------------------------------------------------------------------------

def is_vit(model) -> bool:
    return isinstance(model.model.visual, VisionTransformer)


def is_resnet(model) -> bool:
    return isinstance(model.model.visual, ModifiedResNet)


def require_vit(method: str, model) -> None:
    if not is_vit(model):
        raise NotApplicableError(method, model.name, "a ViT image tower (open_clip VisionTransformer)",
                                 f"a {type(model.model.visual).__name__} image tower")


def require_resnet(method: str, model) -> None:
    if not is_resnet(model):
        raise NotApplicableError(method, model.name, "a ResNet image tower (open_clip ModifiedResNet)",
                                 f"a {type(model.model.visual).__name__} image tower")


def prepare_inputs(method: str, model, images: torch.Tensor, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes against the model (input size, context length, pairing) and move both to its device."""
    size = model.image_size
    if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
        raise InputError(method, "images", f"a float tensor [B, 3, {size}, {size}] for {model.name}, "
                         f"got {tuple(images.shape)}")
    if texts.dim() != 2 or texts.shape[1] != model.context_length or texts.dtype not in (torch.int64, torch.int32):
        raise InputError(method, "texts", f"token ids [B, {model.context_length}], got {tuple(texts.shape)} "
                         f"{texts.dtype}")
    if images.shape[0] != texts.shape[0]:
        raise InputError(method, "texts", f"one text per image (pairs by row), got {images.shape[0]} images and "
                         f"{texts.shape[0]} texts")
    return images.to(model.device, torch.float32), texts.to(model.device, torch.long)


def end_positions(texts: torch.Tensor) -> torch.Tensor:
    """Position of the end token per row (OpenAI BPE: it has the largest id)."""
    return texts.argmax(dim=-1)


def caption_mask(texts: torch.Tensor) -> torch.Tensor:
    """[B, ctx] bool: the caption tokens, strictly between the start token and the end token."""
    positions = torch.arange(texts.shape[1], device=texts.device)
    return (positions[None, :] >= 1) & (positions[None, :] < end_positions(texts)[:, None])


def token_relevance(scores: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Scores [B, ctx] -> caption tokens normalised to sum 1, NaN elsewhere (float32, on the CPU).

    A row whose caption scores sum to 0 (nothing relevant, e.g. an all-zero gradient) stays all zeros.
    """
    mask = caption_mask(texts)
    scores = torch.where(mask, scores.float(), torch.zeros((), dtype=torch.float32, device=scores.device))
    total = scores.sum(dim=-1, keepdim=True)
    scores = torch.where(total != 0, scores / torch.where(total != 0, total, torch.ones_like(total)), scores)
    return torch.where(mask, scores, torch.full_like(scores, math.nan)).cpu()


def to_grid(patch_scores: torch.Tensor, model) -> torch.Tensor:
    """[B, gh*gw] row-major patch scores -> [B, gh, gw] float32 on the CPU (grid from the model, never assumed)."""
    gh, gw = model.grid
    if patch_scores.shape[-1] != gh * gw:
        raise ValueError(f"{patch_scores.shape[-1]} patch scores do not fill {model.name}'s {gh}x{gw} grid")
    return patch_scores.reshape(-1, gh, gw).float().cpu()


def upsample(grid: torch.Tensor, size) -> torch.Tensor:
    """Grid maps [B, gh, gw] -> [B, H, W]: bilinear to ``size`` (int or (H, W)), then min-max per map to [0, 1].

    A constant map (max == min) becomes all zeros rather than NaN.
    """
    if isinstance(size, int):
        size = (size, size)
    grid = torch.as_tensor(grid, dtype=torch.float32)
    maps = bilinear(grid, size)
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(dim=1).values[:, None, None]
    span = flat.max(dim=1).values[:, None, None] - low
    # decide constancy on the grid: interpolating a constant map leaves rounding noise that min-max would blow up
    grid_flat = grid.reshape(grid.shape[0], -1)
    varies = (grid_flat.max(dim=1).values > grid_flat.min(dim=1).values)[:, None, None] & (span > 0)
    return torch.where(varies, (maps - low) / torch.where(varies, span, torch.ones_like(span)), torch.zeros_like(maps))


def empty_text_tokens(model, batch: int) -> torch.Tensor:
    """The empty caption "" tokenised, one row per pair."""
    return model.tokenizer([""]).to(model.device).expand(batch, -1).clone()


def black_images(model, batch: int) -> torch.Tensor:
    """All-black images after normalisation: black in pixel space is (0 - mean) / std per channel."""
    mean = torch.tensor(model.mean, dtype=torch.float32, device=model.device)
    std = torch.tensor(model.std, dtype=torch.float32, device=model.device)
    pixel = ((0.0 - mean) / std)[:, None, None]
    return pixel.expand(3, model.image_size, model.image_size).expand(batch, -1, -1, -1).clone()


# ---------------------------------------------------------------------------------------------------------------
# Objectives (per row; rows are independent)
# ---------------------------------------------------------------------------------------------------------------

def cosine(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    return (F.normalize(image_emb, dim=-1) * F.normalize(text_emb, dim=-1)).sum(dim=-1)


def clip_logit(image_emb, text_emb, logit_scale) -> torch.Tensor:
    """Chefer et al.: the CLIP logit, logit_scale * cos(image, text)."""
    return logit_scale * cosine(image_emb, text_emb)


def similarity(image_emb, text_emb, logit_scale) -> torch.Tensor:
    """Seed 001: the cosine similarity."""
    return cosine(image_emb, text_emb)


def dissimilarity(image_emb, text_emb, logit_scale) -> torch.Tensor:
    """Seed 001 negative saliency (ViT): 1 - cosine similarity."""
    return 1.0 - cosine(image_emb, text_emb)


# ---------------------------------------------------------------------------------------------------------------
# One forward + one backward through both towers with attention recorded
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class AttentionTrace:
    """Detached attention probabilities (and gradients, when an objective was given) per tower and block."""

    visual_probs: list
    visual_grads: list | None
    text_probs: list
    text_grads: list | None


_SHARED_TRACES: list | None = None  # inside shared_traces(): [(model, images, texts, objective, towers, trace)]


@contextmanager
def shared_traces():
    """Within the block, :func:`trace_attention` computes each trace once: a call with the very same model, image
    and text tensors (the same objects), the same objective function and towers returns the trace of the first
    call. Several methods explaining one batch (chefer2021 at two start layers, rollout and raw attention, ...)
    then share their forward and backward; each gets exactly the values it would compute itself. The traces are
    held until the block ends: open it per batch. Consumers must not modify a trace's tensors in place.
    """
    global _SHARED_TRACES
    outer, _SHARED_TRACES = _SHARED_TRACES, []
    try:
        yield
    finally:
        _SHARED_TRACES = outer


def trace_attention(model, images: torch.Tensor, texts: torch.Tensor, objective: Objective | None,
                    towers=("visual", "text")) -> AttentionTrace:
    """Run both towers with explicit attention; with an objective, one backward of its sum over rows.

    One ``torch.autograd.grad`` call over every recorded probability tensor: one backward pass gives every
    block's gradient of every row (rows are independent). Only the probabilities are differentiated, so no
    parameter gradients are computed or accumulated on the model. Inside :func:`shared_traces`, a repeated call
    returns the first call's trace.
    """
    if _SHARED_TRACES is None:
        return _trace_attention(model, images, texts, objective, towers)
    key = (model, images, texts, objective, tuple(towers))
    for *seen, trace in _SHARED_TRACES:  # held references: no object of a key can be freed and its id reused
        if all(a is b for a, b in zip(seen[:4], key[:4])) and seen[4] == key[4]:
            return trace
    trace = _trace_attention(model, images, texts, objective, towers)
    _SHARED_TRACES.append((*key, trace))
    return trace


def _trace_attention(model, images, texts, objective, towers) -> AttentionTrace:
    clip = model.model
    grad_mode = torch.enable_grad() if objective is not None else torch.no_grad()
    with grad_mode, record_attention(clip, towers) as record:
        image_emb = clip.encode_image(images)
        # an objective that reads only the image embedding (per-word) gets None for the text
        text_emb = clip.encode_text(texts) if "text" in towers else None
        visual = list(record.visual) if "visual" in towers else []
        text = list(record.text) if "text" in towers else []
        visual_grads = text_grads = None
        if objective is not None:
            score = objective(image_emb, text_emb, clip.logit_scale.exp())
            probs = visual + text
            grads = torch.autograd.grad(score.sum(), probs, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(probs, grads)]
            visual_grads, text_grads = grads[:len(visual)], grads[len(visual):]
    return AttentionTrace([p.detach() for p in visual], visual_grads, [p.detach() for p in text], text_grads)


def block_range(method: str, start_layer: int, blocks: int, tower: str) -> range:
    """Blocks ``start_layer`` .. last with Python indexing (-1 = the last block only, 0 = all)."""
    if not -blocks <= start_layer < blocks:
        raise InputError(method, "start_layer", f"a block index in [{-blocks}, {blocks - 1}] for the {tower} tower "
                         f"({blocks} attention block{'s' if blocks != 1 else ''}), got {start_layer}")
    return range(start_layer % blocks, blocks)


def gradient_rollout(probs: list, grads: list, blocks: range, last_grad_only: bool = False) -> torch.Tensor:
    """Chefer et al. relevance: R = I; for each block b: R += mean_heads(clamp(G_b * A_b, 0)) @ R.

    ``last_grad_only`` (seed 001's proposal): every block's attention is weighted by the LAST block's gradient.
    probs / grads: lists of [B, heads, N, N]; returns R [B, N, N].
    """
    batch, _, tokens, _ = probs[0].shape
    relevance = torch.eye(tokens, dtype=probs[0].dtype, device=probs[0].device).expand(batch, -1, -1)
    for b in blocks:
        grad = grads[-1] if last_grad_only else grads[b]
        cam = (grad * probs[b]).clamp(min=0).mean(dim=1)
        relevance = relevance + cam @ relevance
    return relevance


def relevance_rows(visual: torch.Tensor | None, text: torch.Tensor | None, model, texts: torch.Tensor) -> Attribution:
    """Relevance matrices [B, N, N] -> Attribution: the image's CLS (ResNet: mean-token) row over the patch
    columns, and the text's end-token row over the caption tokens."""
    image = to_grid(visual[:, 0, 1:], model) if visual is not None else None
    text_scores = None
    if text is not None:
        rows = text[torch.arange(text.shape[0], device=text.device), end_positions(texts)]
        text_scores = token_relevance(rows, texts)
    return Attribution(image=image, text=text_scores)



# ---------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------

REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available by its ``name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"attribution method name {cls.name!r} is empty or registered twice")
    REGISTRY[cls.name] = cls
    return cls
