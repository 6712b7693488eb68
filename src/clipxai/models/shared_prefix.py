"""Causal text towers on many prompts that share prefixes: each shared prefix is encoded once.

In a causal tower a token's states at every layer depend only on the tokens before it, so the 80 ImageNet
templates' prompts of 1,000 classes ("a bad photo of a tench.", "a bad photo of a goldfish.", ...) repeat the same
states for "<start> a bad photo of a" 1,000 times. :func:`plan` groups token rows into clusters that share a prefix
(the cheapest cover of the rows' prefix tree, counted in tokens encoded); :func:`encode` runs each cluster's prefix
once, keeps its keys and values per layer, and runs only the remaining tokens of every row, attending to its
cluster's cached prefix. Rows of all clusters are batched together, sorted by how many tokens they still need.

Only towers built from open_clip's plain ``ResidualAttentionBlock`` qualify (:func:`supports`); the result equals
``encode_text`` on the padded rows to float32 rounding (tests/test_zeroshot.py).
"""

from __future__ import annotations

import numpy as np
import open_clip
import torch
import torch.nn.functional as F


def supports(tower: torch.nn.Module) -> bool:
    """Whether ``tower`` is an open_clip text tower whose blocks :func:`encode` re-implements exactly (plain
    multi-head self-attention with packed q/k/v projections, no cross-attention, no extra key/value biases)."""
    parts = ("token_embedding", "positional_embedding", "ln_final", "text_projection")
    blocks = getattr(getattr(tower, "transformer", None), "resblocks", None)
    if not all(hasattr(tower, part) for part in parts) or blocks is None or len(blocks) == 0:
        return False
    for block in blocks:
        attn = getattr(block, "attn", None)
        if type(block) is not open_clip.transformer.ResidualAttentionBlock or hasattr(block, "ln_1_kv"):
            return False
        if not isinstance(attn, torch.nn.MultiheadAttention) or not attn._qkv_same_embed_dim:
            return False
        if attn.bias_k is not None or attn.add_zero_attn or attn.in_proj_bias is None:
            return False
    return True


def plan(tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the length of the prefix it reads from a cache and the id of the cluster that caches it.

    ``tokens`` [N, L] hold each row's first ``lengths`` tokens (the ones the tower reads). A cluster of rows sharing
    their first ``d`` tokens costs ``d`` tokens for its prefix plus ``length - d`` per row; a row kept out of every
    cluster (prefix 0, cluster -1) costs its length. The cover of the prefix tree with the least total is found by
    recursion over the rows in lexicographic order, where every node of the tree is a contiguous run."""
    count = len(tokens)
    order = np.lexsort(tokens.T[::-1]) if count else np.zeros(0, dtype=np.int64)
    rows, lens = tokens[order], lengths[order]
    prefix = np.zeros(count, dtype=np.int64)
    cluster = np.full(count, -1, dtype=np.int64)

    def children(start: int, stop: int, depth: int) -> list[tuple[int, int]]:
        column = rows[start:stop, depth]
        cuts = np.flatnonzero(column[1:] != column[:-1]) + 1
        bounds = [start, *(start + cuts).tolist(), stop]
        return list(zip(bounds[:-1], bounds[1:]))

    def solve(start: int, stop: int, depth: int) -> tuple[int, list[tuple[int, int, int, int]]]:
        """Least cost of rows[start:stop], which share their first ``depth`` tokens, and its choice: runs
        (prefix, node, start, stop) of rows that read the prefix cached by the node starting at row ``node``;
        rows in no run are encoded whole."""
        if stop - start < 2:
            return int(lens[start:stop].sum()), []
        # Either this node caches its ``depth`` tokens (rows that stop after the next token can go no deeper;
        # every child chooses between this node and its own best), or it caches nothing and its children choose.
        node_cost, node_runs = depth, []
        free_cost, free_runs = 0, []
        for a, b in children(start, stop, depth):
            whole = int(lens[a:b].sum())
            stay = whole - depth * (b - a)
            below, runs = (whole, []) if int(lens[a:b].min()) <= depth + 1 else solve(a, b, depth + 1)
            free_cost, free_runs = free_cost + below, free_runs + runs
            if stay <= below:
                node_cost, node_runs = node_cost + stay, node_runs + [(depth, start, a, b)]
            else:
                node_cost, node_runs = node_cost + below, node_runs + runs
        if depth == 0 or free_cost <= node_cost:
            return free_cost, free_runs
        return node_cost, node_runs

    _, runs = solve(0, count, 0)
    nodes: dict[tuple[int, int], int] = {}
    for depth, node, a, b in runs:
        prefix[order[a:b]] = depth
        cluster[order[a:b]] = nodes.setdefault((depth, node), len(nodes))
    return prefix, cluster


def project(tower: torch.nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """A text tower's output projection of its pooled states (open_clip: a Linear, a matrix, or none)."""
    projection = tower.text_projection
    if projection is None:
        return pooled
    return projection(pooled) if isinstance(projection, torch.nn.Linear) else pooled @ projection


def _attend(block: torch.nn.Module, x: torch.Tensor, cached: tuple[torch.Tensor, torch.Tensor] | None,
            mask: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One ``ResidualAttentionBlock`` on x [B, S, D]; keys/values of ``cached`` [B, H, P, hd] come first.
    Returns the block's output and this call's own keys/values (for a prefix pass to cache)."""
    attn = block.attn
    heads = attn.num_heads
    batch, length, width = x.shape
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(batch, length, heads, width // heads).transpose(1, 2) for t in (q, k, v))
    own = (k, v)
    if cached is not None:
        k, v = torch.cat([cached[0], k], dim=2), torch.cat([cached[1], v], dim=2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = F.linear(out.transpose(1, 2).reshape(batch, length, width), attn.out_proj.weight, attn.out_proj.bias)
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x))), own


@torch.no_grad()
def encode(tower: torch.nn.Module, tokens: torch.Tensor, lengths: torch.Tensor,
           batch_size: int = 256) -> torch.Tensor:
    """Text features [N, E] of token rows [N, L] of which a causal tower reads the first ``lengths`` and pools the
    last read one (its end-of-text token). ``tower``: an open_clip CLIP or TextTransformer that :func:`supports`
    accepts."""
    device = tokens.device
    prefix, cluster = (torch.as_tensor(a) for a in plan(tokens.cpu().numpy(), lengths.cpu().numpy()))
    prefix, cluster = prefix.to(device), cluster.to(device)
    blocks = tower.transformer.resblocks
    dtype = tower.transformer.get_cast_dtype()
    positions = tower.positional_embedding

    # Prefix pass: one row per cluster, padded to the longest prefix (causal: padding never reaches a prefix).
    clusters = int(cluster.max()) + 1 if len(cluster) else 0
    longest = int(prefix.max()) if clusters else 0
    cache_k, cache_v = [], []
    if clusters and longest:
        first = torch.zeros(clusters, dtype=torch.long, device=device)
        first[cluster[cluster >= 0]] = torch.nonzero(cluster >= 0).squeeze(1)
        heads_in = tokens[first, :longest]
        x = tower.token_embedding(heads_in).to(dtype) + positions[:longest].to(dtype)
        causal = torch.ones(longest, longest, dtype=torch.bool, device=device).tril()
        for block in blocks:
            x, (k, v) = _attend(block, x, None, causal)
            cache_k.append(k)
            cache_v.append(v)

    suffix_lengths = lengths - prefix
    order = torch.sort(suffix_lengths, stable=True).indices
    out = None
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = int(suffix_lengths[rows].max())
        offsets = prefix[rows]
        columns = (offsets[:, None] + torch.arange(width, device=device)).clamp(max=tokens.shape[1] - 1)
        x = tower.token_embedding(tokens[rows].gather(1, columns)).to(dtype) + positions[columns].to(dtype)
        # Keys: the cluster's cached prefix (only its first ``offset`` positions), then this row's own causally.
        own = torch.ones(width, width, dtype=torch.bool, device=device).tril().expand(len(rows), width, width)
        if cache_k:
            valid = torch.arange(longest, device=device)[None, :] < offsets[:, None]
            mask = torch.cat([valid[:, None, :].expand(-1, width, -1), own], dim=2)[:, None]
            which = cluster[rows].clamp(min=0)
        else:
            mask = own[:, None]
        for layer, block in enumerate(blocks):
            cached = (cache_k[layer][which], cache_v[layer][which]) if cache_k else None
            x, _ = _attend(block, x, cached, mask)
        x = tower.ln_final(x)
        pooled = project(tower, x[torch.arange(len(rows), device=device), suffix_lengths[rows] - 1])
        if out is None:
            out = pooled.new_empty((tokens.shape[0], pooled.shape[1]))
        out[rows] = pooled
    return out
