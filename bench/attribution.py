"""Benchmark: batched Chefer relevance (one forward, one backward for all pairs and blocks) against the original
procedure (one (image, text) pair at a time, the image tower re-run for every text, one ``torch.autograd.grad``
call per block, as in Transformer-MM-Explainability's CLIP notebook and CLIP-grounding).

Both sides use the same explicit attention (clipxai.models.attention) and compute all-layer relevance
(start_layer=0) for the image and the text. A plain forward + backward of the same batch (unpatched model, fused
attention, ``.backward()`` of the summed logits, so parameter gradients included, as in training; the relevance
side differentiates only the attention probabilities) is the yardstick for the overhead. Measured side by side
in one run, rounds interleaved, median per side. Random ViT-B-32 weights on the CPU (timings do not depend on weights).

Last line: ``speedup_vs_reference=<x> overhead_vs_fwd_bwd=<y> max_abs_diff=<z>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import clipxai.attribution as attribution
from clipxai.attribution.base import token_relevance
from clipxai.models.attention import record_attention
from clipxai.models.registry import load_model


def reference_relevance(loaded, images: torch.Tensor, texts: torch.Tensor, start_layer: int = 0):
    """The original procedure, pair by pair: image grids [P, gh, gw] and token relevance [P, ctx]."""
    clip = loaded.model
    image_maps, text_maps = [], []
    for row in range(images.shape[0]):
        image, text = images[row:row + 1], texts[row:row + 1]
        with torch.enable_grad(), record_attention(clip) as record:
            image_emb = clip.encode_image(image)  # the image tower runs again for every text
            text_emb = clip.encode_text(text)
            image_emb = image_emb / image_emb.norm(dim=-1, keepdim=True)
            text_emb = text_emb / text_emb.norm(dim=-1, keepdim=True)
            logit = (clip.logit_scale.exp() * image_emb @ text_emb.t()).sum()
            relevance = []
            for probs_list in (record.visual, record.text):
                tokens = probs_list[0].shape[-1]
                r = torch.eye(tokens).unsqueeze(0)
                for index, probs in enumerate(probs_list):
                    if index < start_layer:
                        continue
                    grad = torch.autograd.grad(logit, [probs], retain_graph=True)[0].detach()
                    cam = (grad * probs.detach()).clamp(min=0).mean(dim=1)
                    r = r + torch.bmm(cam, r)
                relevance.append(r)
        image_maps.append(relevance[0][:, 0, 1:].reshape(1, *loaded.grid))
        text_row = relevance[1][0, int(text.argmax())][None]
        text_maps.append(token_relevance(text_row, text))
        del record, logit, relevance  # nothing of this pair's graph outlives the pair
    return torch.cat(image_maps), torch.cat(text_maps)


def plain_forward_backward(loaded, images: torch.Tensor, texts: torch.Tensor) -> None:
    """The yardstick: unpatched model, same batch, backward of the summed logits."""
    clip = loaded.model
    with torch.enable_grad():
        image_emb = torch.nn.functional.normalize(clip.encode_image(images), dim=-1)
        text_emb = torch.nn.functional.normalize(clip.encode_text(texts), dim=-1)
        (clip.logit_scale.exp() * (image_emb * text_emb).sum(-1)).sum().backward()
    clip.zero_grad(set_to_none=True)


def forward_only(loaded, images: torch.Tensor, texts: torch.Tensor) -> None:
    """For scale: the unpatched forward of the same batch, no graph."""
    with torch.no_grad():
        loaded.model.encode_image(images), loaded.model.encode_text(texts)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--texts", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    loaded = load_model(args.model)
    size = loaded.image_size
    images = torch.randn(args.images, 3, size, size, generator=torch.Generator().manual_seed(1))
    captions = ["a photo of a dog", "a red circle and a blue square", "two cats on a sofa",
                "a man riding a horse on the beach at sunset"]
    texts = loaded.tokenizer([captions[i % len(captions)] for i in range(args.texts)])
    # every image with every text, image-major
    pair_images = images.repeat_interleave(args.texts, dim=0)
    pair_texts = texts.repeat(args.images, 1)
    pairs = pair_images.shape[0]
    method = attribution.get("chefer2021", start_layer=0)

    method.attribute(loaded, pair_images[:2], pair_texts[:2])  # warm-up (allocator, lazy init)
    times = {"reference": [], "batched": [], "fwd+bwd": [], "fwd": []}
    for _ in range(args.rounds):
        seconds, reference = timed(lambda: reference_relevance(loaded, pair_images, pair_texts))
        times["reference"].append(seconds)
        seconds, batched = timed(lambda: method.attribute(loaded, pair_images, pair_texts))
        times["batched"].append(seconds)
        seconds, _ = timed(lambda: plain_forward_backward(loaded, pair_images, pair_texts))
        times["fwd+bwd"].append(seconds)
        seconds, _ = timed(lambda: forward_only(loaded, pair_images, pair_texts))
        times["fwd"].append(seconds)

    diff_image = (reference[0] - batched.image).abs().max().item()
    diff_text = (reference[1] - batched.text).nan_to_num(0.0).abs().max().item()
    assert torch.equal(reference[1].isnan(), batched.text.isnan())
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.model} random weights, CPU, {torch.get_num_threads()} threads; {args.images} images x "
          f"{args.texts} texts = {pairs} pairs; chefer2021 start_layer=0, image + text; {args.rounds} rounds")
    print(f"{'procedure':<44}{'median s':>10}{'per pair s':>12}   all rounds")
    rows = [("reference (pair by pair, autograd.grad/block)", "reference"),
            ("batched (one forward, one backward)", "batched"),
            ("plain forward+backward (same batch)", "fwd+bwd"),
            ("plain forward only (same batch, no grad)", "fwd")]
    for label, key in rows:
        print(f"{label:<44}{median[key]:>10.3f}{median[key] / pairs:>12.4f}   "
              + " ".join(f"{t:.3f}" for t in times[key]))
    print(f"max |diff| image grid {diff_image:.2e}, text relevance {diff_text:.2e}")
    print(f"speedup_vs_reference={median['reference'] / median['batched']:.2f} "
          f"overhead_vs_fwd_bwd={median['batched'] / median['fwd+bwd']:.2f} "
          f"max_abs_diff={max(diff_image, diff_text):.2e}")


if __name__ == "__main__":
    main()
