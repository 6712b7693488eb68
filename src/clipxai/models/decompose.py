"""The image embedding of a ViT CLIP, split into the residual stream's terms (TextSpan, Gandelsman et al. 2024).

The final CLS residual of a ViT is a sum: the embedding term (the stream entering block 0, i.e. after ``ln_pre``),
one attention output and one MLP output per block. ``ln_post`` is affine once its per-image mean and standard
deviation are fixed, so with those fixed (at their values for the whole sum) the image embedding
``ln_post(x_cls) @ proj`` is the sum of each term pushed through the same affine map, where the mean subtracted and
the bias added are split equally over the ``2L + 1`` terms (the original's convention). An attention output at the
CLS row is itself a sum over heads and over source tokens: ``sum_h sum_j A[h, 0, j] (V_j W_O^h)`` plus the output
bias, which is split equally over the heads (or source tokens) in the same way. Dividing by the norm of the image
embedding makes every term a share of the *normalised* embedding: all terms add up to it exactly (up to rounding).

Memory: per image and block the largest tensor is [heads, tokens, head_dim] (the attention-weighted values of the
CLS row), or [heads, tokens, width] when per-head spatial terms are asked for; [tokens, tokens, heads, width] is
never formed.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from tqdm import tqdm

from clipxai.errors import InputError
from clipxai.io import atomic_path, write_json



@dataclass
class PostLayerNorm:
    """``ln_post`` then ``proj`` linearised at each image's final CLS residual, divided by the embedding's norm.

    ``apply(terms, share)`` maps residual-stream terms [B, ..., width] to their part of the normalised image
    embedding [B, ..., embed_dim]; ``share`` is the fraction of ln_post's mean and bias the term carries
    (``1 / n_terms`` for a whole block output, ``1 / (n_terms * heads)`` for one head's part of it).
    """

    mean: torch.Tensor  # [B] mean over channels of the final CLS residual
    std: torch.Tensor  # [B] sqrt(var + eps) of the same
    weight: torch.Tensor  # [width] ln_post scale (ones if ln_post has none)
    bias: torch.Tensor  # [width] ln_post shift (zeros if none)
    proj: torch.Tensor | None  # [width, embed_dim] visual.proj (None: identity)
    norm: torch.Tensor  # [B] norm of the (unnormalised) image embedding
    n_terms: int  # 2 * layers + 1

    def apply(self, terms: torch.Tensor, share: float) -> torch.Tensor:
        shape = (-1,) + (1,) * (terms.dim() - 1)
        centred = terms - self.mean.view(shape) * share
        out = centred / self.std.view(shape) * self.weight + self.bias * share
        if self.proj is not None:
            out = out @ self.proj
        return out / self.norm.view(shape)


@dataclass
class Decomposition:
    """Terms of the normalised image embedding; ``attn.sum((1, 2)) + mlp.sum(1) == embedding`` (float32)."""

    attn: torch.Tensor  # [B, L, H, D] each head's CLS-row output (summed over source tokens)
    mlp: torch.Tensor  # [B, L + 1, D] index 0: the embedding term (stream entering block 0); l + 1: block l's MLP
    spatial: torch.Tensor | None  # [B, S, N, D] per source token (CLS first), summed over heads, for spatial_layers
    #                               or [B, S, H, N, D] with per_head=True; None when no layer was asked for
    spatial_layers: tuple[int, ...]
    embedding: torch.Tensor  # [B, D] the normalised image embedding (model.encode_image(normalize=True))
    post_ln: PostLayerNorm = field(repr=False)


def vision_tower(model: torch.nn.Module) -> open_clip.transformer.VisionTransformer:
    """The ViT image tower of an open_clip CLIP, checked to be one this decomposition is exact for."""
    visual = getattr(model, "visual", model)
    cls = type(visual).__name__
    if not isinstance(visual, open_clip.transformer.VisionTransformer):
        raise InputError("model", "visual", f"an open_clip VisionTransformer image tower, got {cls} "
                         "(ResNet and timm towers have no per-head residual decomposition here)")
    if visual.attn_pool is not None:
        raise InputError("model", "visual.attn_pool", "no attentional pooling (CoCa-style towers are not supported)")
    if visual.pool_type != "tok":
        raise InputError("model", "visual.pool_type", f"'tok' (CLS-token pooling), got {visual.pool_type!r}")
    if not visual.transformer.batch_first:
        raise InputError("model", "visual.transformer.batch_first", "True")
    for index, block in enumerate(visual.transformer.resblocks):
        where = f"visual.transformer.resblocks.{index}"
        if type(block) is not open_clip.transformer.ResidualAttentionBlock:
            raise InputError("model", where, f"a plain ResidualAttentionBlock, got {type(block).__name__} "
                             "(qk-norm / scaled-cosine / custom blocks are not supported)")
        if hasattr(block, "ln_1_kv"):
            raise InputError("model", where, "self-attention, not cross-attention")
        attn = block.attn
        if attn.bias_k is not None or attn.add_zero_attn:
            raise InputError("model", f"{where}.attn", "no bias_k/bias_v and no add_zero_attn")
    return visual


def _in_projection(attn: torch.nn.MultiheadAttention) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stacked q, k, v input weights [3W, W] and biases [3W] of a MultiheadAttention in either of its layouts."""
    if attn.in_proj_weight is not None:
        return attn.in_proj_weight, attn.in_proj_bias
    weight = torch.cat([attn.q_proj_weight, attn.k_proj_weight, attn.v_proj_weight])
    return weight, attn.in_proj_bias


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the block (no patch dropout), restoring each submodule's own flag afterwards."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def _block_step(block, x: torch.Tensor, spatial: bool, spatial_per_head: bool):
    """Run one residual block on ``x`` [B, N, W]; return the next stream and this block's float32 terms.

    Terms (before ln_post): per-head CLS-row attention outputs [B, H, W] (the output bias split over heads), the
    CLS-row outputs per source token [B, N, W] or [B, H, N, W] if ``spatial`` (bias split over tokens, or tokens x
    heads), else None, and the MLP output at CLS [B, W]. LayerScale (``ls_1``/``ls_2``) is applied to each term.
    """
    attn = block.attn
    batch, tokens, width = x.shape
    heads = attn.num_heads
    head_dim = width // heads
    in_weight, in_bias = _in_projection(attn)
    out_weight, out_bias = attn.out_proj.weight, attn.out_proj.bias

    h = block.ln_1(x)
    q, k, v = F.linear(h, in_weight, in_bias).view(batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    mixed = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, hd]: the whole attention, for the stream
    attn_out = F.linear(mixed.transpose(1, 2).reshape(batch, tokens, width), out_weight, out_bias)

    # The decomposition, in float32. Only the CLS query row of the attention probabilities is needed.
    q_cls, k32, v32 = q[:, :, :1].float(), k.float(), v.float()
    probs = torch.softmax((q_cls @ k32.transpose(-1, -2)) * head_dim ** -0.5, dim=-1)[:, :, 0]  # [B, H, N]
    weighted = probs.unsqueeze(-1) * v32  # [B, H, N, hd]: A[h, 0, j] V_j, before W_O
    w_o = out_weight.float().view(width, heads, head_dim)  # W_O's input columns grouped by head
    bias = out_bias.float() if out_bias is not None else torch.zeros(width, device=x.device)
    head_terms = block.ls_1(torch.einsum("bhc,whc->bhw", weighted.sum(2), w_o) + bias / heads)
    token_terms = None
    if spatial and spatial_per_head:
        token_terms = block.ls_1(torch.einsum("bhnc,whc->bhnw", weighted, w_o) + bias / (heads * tokens))
    elif spatial:  # summing over heads first is one matmul with the whole W_O
        summed = weighted.transpose(1, 2).reshape(batch, tokens, width) @ out_weight.float().T
        token_terms = block.ls_1(summed + bias / tokens)

    x = x + block.ls_1(attn_out)
    mlp_out = block.ls_2(block.mlp(block.ln_2(x)))
    x = x + mlp_out
    return x, head_terms, token_terms, mlp_out[:, 0].float()


def _post_layer_norm(visual, final_cls: torch.Tensor, embedding: torch.Tensor, n_terms: int) -> PostLayerNorm:
    ln = visual.ln_post
    width = final_cls.shape[-1]
    final = final_cls.float()
    eps = getattr(ln, "eps", None)
    if not isinstance(ln, torch.nn.LayerNorm) or eps is None:
        raise InputError("model", "visual.ln_post", f"a LayerNorm, got {type(ln).__name__}")
    mean = final.mean(-1)
    std = torch.sqrt(final.var(-1, unbiased=False) + eps)
    ones = torch.ones(width, device=final.device)
    weight = ln.weight.float() if ln.weight is not None else ones
    bias = ln.bias.float() if ln.bias is not None else torch.zeros_like(ones)
    proj = visual.proj.float() if visual.proj is not None else None
    return PostLayerNorm(mean=mean, std=std, weight=weight, bias=bias, proj=proj,
                         norm=embedding.float().norm(dim=-1), n_terms=n_terms)


@torch.no_grad()
def decompose(model: torch.nn.Module, images: torch.Tensor, spatial_layers: Sequence[int] = (),
              spatial_per_head: bool = False) -> Decomposition:
    """Split the normalised image embeddings of ``images`` [B, 3, H, W] into residual-stream terms.

    ``model`` is an open_clip CLIP (or its ViT tower) with CLS pooling; ``spatial_layers`` the block indices
    (negative ones count from the end) for which per-source-token terms are kept. Returns float32 tensors on the
    model's device; ``attn.sum((1, 2)) + mlp.sum(1)`` equals ``embedding`` up to float32 rounding.
    """
    visual = vision_tower(model)
    blocks = visual.transformer.resblocks
    n_layers = len(blocks)
    wanted = _layer_indices(spatial_layers, n_layers)
    param = next(visual.parameters())
    with _eval_mode(visual):
        x = visual._embeds(images.to(device=param.device, dtype=param.dtype))
        mlp_terms = [x[:, 0].float()]  # the embedding term: what enters block 0 (after ln_pre, if any)
        head_terms, token_terms = [], []
        for index, block in enumerate(blocks):
            x, heads, tokens, mlp_out = _block_step(block, x, index in wanted, spatial_per_head)
            head_terms.append(heads)
            mlp_terms.append(mlp_out)
            if tokens is not None:
                token_terms.append(tokens)
        pooled, _ = visual._pool(x)
        embedding = pooled @ visual.proj if visual.proj is not None else pooled
    n_terms = 2 * n_layers + 1
    post = _post_layer_norm(visual, x[:, 0], embedding, n_terms)
    heads = head_terms[0].shape[1]
    attn = post.apply(torch.stack(head_terms, 1), 1.0 / (n_terms * heads))
    mlp = post.apply(torch.stack(mlp_terms, 1), 1.0 / n_terms)
    spatial = None
    if token_terms:
        stacked = torch.stack(token_terms, 1)  # [B, S, N, W] or [B, S, H, N, W]
        spatial = post.apply(stacked, 1.0 / (n_terms * stacked.shape[2:-1].numel()))
    return Decomposition(attn=attn, mlp=mlp, spatial=spatial, spatial_layers=tuple(sorted(wanted)),
                         embedding=F.normalize(embedding.float(), dim=-1), post_ln=post)


def _layer_indices(layers: Iterable[int], n_layers: int) -> set[int]:
    wanted = set()
    for layer in layers:
        layer = int(layer)
        if not -n_layers <= layer < n_layers:
            raise InputError("model", "spatial_layers", f"block indices in [-{n_layers}, {n_layers}), got {layer}")
        wanted.add(layer % n_layers)
    return wanted


def write_shard(out_dir: str | Path, model: torch.nn.Module,
                batches: Iterable[tuple[torch.Tensor, Sequence[int] | torch.Tensor | None, Sequence[str]]],
                n_images: int, spatial_layers: Sequence[int] = (), spatial_per_head: bool = False) -> Path:
    """Decompose ``n_images`` images given as ``(images, labels, ids)`` batches into memory-mapped .npy files.

    Writes ``out_dir/{attn,mlp,labels,ids}.npy`` (and ``spatial.npy`` when layers are asked for), each filled in
    place through a temporary name and renamed when every batch is done, then ``meta.json`` last: a shard
    directory with ``meta.json`` is complete. Labels default to -1 when a batch has none.
    """
    out_dir = Path(out_dir)
    written = 0
    ids: list[str] = []
    labels = np.full(n_images, -1, dtype=np.int64)
    arrays: dict[str, np.memmap] = {}
    spatial_kept: tuple[int, ...] = ()
    with contextlib.ExitStack() as stack:
        for images, batch_labels, batch_ids in tqdm(batches, desc=f"decompose {out_dir.name}", unit="batch"):
            parts = decompose(model, images, spatial_layers, spatial_per_head)
            size = parts.attn.shape[0]
            if written + size > n_images or len(batch_ids) != size:
                raise InputError(out_dir, "batches", f"{n_images} images in all with one id each, got more "
                                 f"images ({written + size}) or {len(batch_ids)} ids for a batch of {size}")
            if not arrays:
                spatial_kept = parts.spatial_layers
                wanted = {"attn": parts.attn, "mlp": parts.mlp}
                if parts.spatial is not None:
                    wanted["spatial"] = parts.spatial
                for name, tensor in wanted.items():
                    tmp = stack.enter_context(atomic_path(out_dir / f"{name}.npy"))
                    arrays[name] = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                             shape=(n_images, *tensor.shape[1:]))
            for name, array in arrays.items():
                array[written:written + size] = getattr(parts, name).cpu().numpy()
            if batch_labels is not None:
                labels[written:written + size] = np.asarray(batch_labels, dtype=np.int64)
            ids.extend(str(i) for i in batch_ids)
            written += size
        if written != n_images:
            raise InputError(out_dir, "batches", f"{n_images} images, got {written}")
        for array in arrays.values():
            array.flush()
        arrays.clear()
        for name, values in (("labels", labels), ("ids", np.array(ids, dtype=np.str_))):
            tmp = stack.enter_context(atomic_path(out_dir / f"{name}.npy"))
            with open(tmp, "wb") as handle:  # a file handle: np.save would append ".npy" to the temp name
                np.save(handle, values)
    write_json(out_dir / "meta.json", {"n_images": n_images, "spatial_layers": list(spatial_kept),
                                      "spatial_per_head": bool(spatial_per_head and spatial_kept)})
    return out_dir


def load_decomposition(path: str | Path, mmap: bool = True) -> dict[str, np.ndarray | list]:
    """Arrays of a shard directory (``write_shard``) or of an .npz (``clipxai decompose``), by name.

    Always ``attn`` [B, L, H, D] and ``mlp`` [B, L+1, D]; ``spatial``, ``spatial_layers``, ``labels`` and ``ids``
    (image ids, or the image paths of an .npz) when present.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "meta.json").is_file():
            raise InputError(path, "meta.json", "a complete decomposition shard directory (meta.json is written last)")
        meta = json.loads((path / "meta.json").read_text())
        out: dict = {"spatial_layers": np.asarray(meta.get("spatial_layers", []), dtype=np.int64)}
        for name in ("attn", "mlp", "spatial", "labels", "ids"):
            if (path / f"{name}.npy").is_file():
                out[name] = np.load(path / f"{name}.npy", mmap_mode="r" if mmap and name != "ids" else None)
    elif path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as data:
            out = {name: data[name] for name in data.files}
        if "image_paths" in out and "ids" not in out:
            out["ids"] = out.pop("image_paths")
    else:
        raise InputError(path, "(file)", "a decomposition shard directory or a .npz written by `clipxai decompose`")
    for name in ("attn", "mlp"):
        if name not in out:
            raise InputError(path, name, "an array of residual-stream terms")
    if out["attn"].ndim != 4 or out["mlp"].ndim != 3 or out["mlp"].shape[1] != out["attn"].shape[1] + 1 \
            or out["mlp"].shape[0] != out["attn"].shape[0]:
        raise InputError(path, "attn/mlp", f"attn [B, L, H, D] and mlp [B, L+1, D], got {out['attn'].shape} "
                         f"and {out['mlp'].shape}")
    return out


def concatenate(parts: Sequence[dict]) -> dict:
    """Join several loaded decompositions (shards) along images; keys missing from any part are dropped."""
    if len(parts) == 1:
        return dict(parts[0])
    keys = set.intersection(*(set(p) for p in parts)) - {"spatial_layers"}
    out = {name: np.concatenate([np.asarray(p[name]) for p in parts]) for name in keys}
    if "spatial_layers" in parts[0]:
        out["spatial_layers"] = parts[0]["spatial_layers"]
    return out


def tower_shape(model: torch.nn.Module) -> dict[str, int]:
    """Layers, heads, tokens (CLS + patches) and output dim of a supported ViT tower, without running it."""
    visual = vision_tower(model)
    gh, gw = visual.grid_size
    return {"layers": len(visual.transformer.resblocks), "heads": visual.transformer.resblocks[0].attn.num_heads,
            "tokens": gh * gw + 1, "dim": visual.output_dim if visual.proj is not None else visual.transformer.width}


def patch_terms(spatial: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per-patch contributions [B, P, D]: ``spatial`` [B, S, N, D] (or per head [B, S, H, N, D]) summed over its
    layers (and heads), without the CLS source token. With every layer stored this is the TextSpan spatial map."""
    spatial = torch.as_tensor(spatial)
    if spatial.dim() == 5:
        spatial = spatial.sum(2)
    if spatial.dim() != 4:
        raise InputError("decomposition", "spatial", f"[B, layers, tokens, D] or [B, layers, heads, tokens, D], "
                         f"got {tuple(spatial.shape)}")
    return spatial[:, :, 1:].sum(1)


def class_maps(patches: torch.Tensor, classifier: torch.Tensor, embedding: torch.Tensor,
               grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet-segmentation maps of the TextSpan protocol at patch-grid resolution (unnormalised).

    ``patches`` [B, P, D] (``patch_terms``), ``classifier`` [D, C] zero-shot weights, ``embedding`` [B, D] the image
    embeddings. Per image: the patches' scores for its predicted class (argmax of embedding @ classifier) minus
    their mean score over all classes. Returns (maps [B, gh, gw], predicted classes [B]). Upsampling, clamping
    and min-max normalisation belong to the metric.
    """
    gh, gw = grid
    if patches.shape[1] != gh * gw:
        raise InputError("decomposition", "spatial", f"{gh * gw} patches for a {gh}x{gw} grid, got {patches.shape[1]}")
    classifier = torch.as_tensor(classifier, dtype=torch.float32, device=patches.device)
    scores = patches.float() @ classifier  # [B, P, C]
    predicted = (embedding.float().to(patches.device) @ classifier).argmax(-1)
    chosen = scores.gather(2, predicted.view(-1, 1, 1).expand(-1, scores.shape[1], 1))[..., 0]
    maps = chosen - scores.mean(-1)
    return maps.view(-1, gh, gw), predicted
