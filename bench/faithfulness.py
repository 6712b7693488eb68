"""Benchmark: the cost of the faithfulness stage per entry, as a multiple of one forward pass of that entry.

For a batch of B (image, caption) pairs it times one batched forward of each tower (the yardstick), then the three
image-side curves (deletion, insertion, negative perturbation) and the three text-side curves, and counts the
tower forwards they make. The goal: at most ``steps + 1`` forwards per entry and curve, each one a batched forward
of the whole batch (the two ends of the curves are shared: ``2 + 3 * (steps - 1)`` forwards for three curves).
The tiny shapes-world CLIP with random weights on the CPU by default (timings do not depend on the weights).

Last line: ``forwards_per_entry_per_curve=<f> goal=<steps+1> image_cost_x_forward=<x> text_cost_x_forward=<y>``:
the cost per entry and curve in units of one CLIP forward pass of that entry (image tower + text tower); the line
before gives it in units of the perturbed tower alone (which includes the other tower's one forward per batch).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from clipxai.metrics import faithfulness as fa
from clipxai.models.registry import load_model
from clipxai.models.toy import tiny_config


class Counted:
    """Counts calls of a tower's encode function (to check one forward per step for the whole batch)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def _median_seconds(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="open_clip name or model folder (default: the tiny toy CLIP)")
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model is None:
        folder = Path(tempfile.mkdtemp())
        (folder / "tiny.json").write_text(json.dumps(tiny_config()))
        lm = load_model(str(folder / "tiny.json"))
    else:
        lm = load_model(args.model)
    images = torch.randn(args.batch, 3, lm.image_size, lm.image_size)
    texts = lm.tokenizer(["a red circle and a blue square next to a green star"] * args.batch)
    grid = torch.rand(args.batch, *lm.grid)
    tokens_rel = torch.rand(texts.shape)
    clip = lm.model
    with torch.no_grad():
        image_forward = _median_seconds(lambda: clip.encode_image(images), args.rounds)
        text_forward = _median_seconds(lambda: clip.encode_text(texts), args.rounds)
    encode_image, encode_text = clip.encode_image, clip.encode_text
    clip.encode_image, clip.encode_text = Counted(encode_image), Counted(encode_text)
    image_curves = _median_seconds(lambda: fa.image_curves(lm, images, texts, grid, steps=args.steps), args.rounds)
    image_calls = clip.encode_image.calls / args.rounds
    clip.encode_image.calls = 0
    text_curves = _median_seconds(lambda: fa.text_curves(lm, images, texts, tokens_rel, steps=args.steps),
                                  args.rounds)
    text_calls = clip.encode_text.calls / args.rounds - 1  # less the image-side target (one text forward per call)
    del clip.encode_image, clip.encode_text
    curves = len(fa.CURVES)
    print(f"model {lm.name}, batch {args.batch}, steps {args.steps}, threads {args.threads}")
    print(f"one batched forward: image {image_forward * 1e3:.1f} ms, text {text_forward * 1e3:.1f} ms")
    print(f"image side, {curves} curves: {image_calls:.0f} batched image forwards, {image_curves * 1e3:.1f} ms")
    print(f"text side, {curves} curves: {text_calls:.0f} batched text forwards, {text_curves * 1e3:.1f} ms")
    per_curve = image_calls / curves
    both = image_forward + text_forward
    print(f"in forwards of the perturbed tower alone: image {image_curves / image_forward / curves:.2f}, "
          f"text {text_curves / text_forward / curves:.2f} per entry and curve")
    image_x = image_curves / both / curves
    text_x = text_curves / both / curves
    print(f"forwards_per_entry_per_curve={per_curve:.2f} goal={args.steps + 1} "
          f"image_cost_x_forward={image_x:.2f} text_cost_x_forward={text_x:.2f}")


if __name__ == "__main__":
    main()
