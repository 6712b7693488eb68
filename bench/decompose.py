"""Benchmark (not a test): the residual decomposition against a straightforward one that materialises the
per-token-pair, per-head tensor [B, N, N, H, D] at every block (as the original TextSpan hook did, then keeping
its CLS row). ViT-B-16, random weights, one run each, each in a fresh process so peak memory is its own.

Peak memory is the rise of the process's resident-set high-water mark during the call (Linux: VmHWM, reset
through /proc/self/clear_refs just before) or, on CUDA, torch.cuda.max_memory_allocated.

    .venv/bin/python bench/decompose.py [--batch 2] [--model ViT-B-16] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@torch.no_grad()
def straightforward(model, images: torch.Tensor) -> torch.Tensor:
    """Per-head CLS contributions [B, L, H, D] via the full [B, N, N, H, width] tensor at every block."""
    visual = model.visual
    x = visual._embeds(images)
    pre_terms = [x[:, 0]]
    head_terms = []
    for block in visual.transformer.resblocks:
        attn = block.attn
        batch, tokens, width = x.shape
        heads, head_dim = attn.num_heads, width // attn.num_heads
        h = block.ln_1(x)
        q, k, v = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).view(
            batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        probs = torch.softmax(q @ k.transpose(-1, -2) * head_dim ** -0.5, dim=-1)  # [B, H, N, N]
        w_o = attn.out_proj.weight.view(width, heads, head_dim)
        per_pair = torch.einsum("bhij,bhjc,whc->bijhw", probs, v, w_o)  # [B, N, N, H, width], materialised
        per_pair += attn.out_proj.bias / (tokens * heads)
        head_terms.append(block.ls_1(per_pair[:, 0].sum(1)))  # CLS row, summed over source tokens
        x = x + block.ls_1(per_pair.sum(2).sum(2))  # the attention output of every token, from the same tensor
        del per_pair
        x = x + block.ls_2(block.mlp(block.ln_2(x)))
        pre_terms.append(None)
    final = x[:, 0]
    ln = visual.ln_post
    mean, std = final.mean(-1), torch.sqrt(final.var(-1, unbiased=False) + ln.eps)
    embedding = ln(final) @ visual.proj
    n_terms = 2 * len(head_terms) + 1
    terms = torch.stack(head_terms, 1)  # [B, L, H, width]
    share = 1.0 / (n_terms * terms.shape[2])
    projected = ((terms - mean[:, None, None, None] * share) / std[:, None, None, None] * ln.weight
                 + ln.bias * share) @ visual.proj
    return projected / embedding.norm(dim=-1)[:, None, None, None]


def _worker(which: str, model_name: str, batch: int, threads: int, device: str, queue) -> None:
    import open_clip

    from clipxai.models.decompose import decompose

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = open_clip.create_model(model_name).eval().to(device)
    size = model.visual.image_size[0]
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    run = (lambda: decompose(model, images).attn) if which == "ours" else (lambda: straightforward(model, images))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        exact = _reset_peak()
        base = _rss_kib("VmRSS") * 1024
    start = time.perf_counter()
    attn = run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        how = "cuda max_memory_allocated"
    else:
        peak = _rss_kib("VmHWM") * 1024 - base
        how = "VmHWM after clear_refs" if exact else "VmHWM (not reset: upper bound)"
    seconds = time.perf_counter() - start
    queue.put({"which": which, "seconds": seconds, "peak_bytes": peak, "how": how,
               "attn": attn.float().cpu().numpy()})


def measure(which: str, args) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_worker, args=(which, args.model, args.batch, args.threads, args.device, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    ours = measure("ours", args)
    naive = measure("straightforward", args)
    print(f"{args.model} random weights, batch {args.batch}, {args.threads} thread(s), {args.device}; "
          f"memory: {ours['how']}")
    print(f"{'implementation':<18}{'seconds':>10}{'images/s':>10}{'peak MiB':>11}")
    for result in (ours, naive):
        print(f"{result['which']:<18}{result['seconds']:>10.2f}{args.batch / result['seconds']:>10.3f}"
              f"{result['peak_bytes'] / 2**20:>11.1f}")
    speedup = naive["seconds"] / ours["seconds"]
    memory_ratio = naive["peak_bytes"] / max(ours["peak_bytes"], 1)
    max_abs_diff = float(np.abs(ours["attn"] - naive["attn"]).max())
    print(f"speedup={speedup:.2f} memory_ratio={memory_ratio:.1f} max_abs_diff={max_abs_diff:.3g}")


if __name__ == "__main__":
    main()
