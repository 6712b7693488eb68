"""Benchmark (not a test): zero-shot classifier construction, batched against the one-class-at-a-time loop.

Both build the weights of the same classes from OpenAI's 80 ImageNet templates with the same random-weight model,
side by side in one run: ``clipxai.models.zeroshot.classifier`` (open_clip's builder over many classes per call,
prompts cut to the tokens the text tower reads, each shared prefix encoded once: ``clipxai.models.shared_prefix``) and ``classifier_one_class_at_a_time`` (one
class's 80 prompts per forward pass at full context length). Prints both times, the speed-up and the largest
difference between the two weight matrices (must be <= 1e-6).

    .venv/bin/python bench/zeroshot.py [--model ViT-B-32] [--classes 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time

import open_clip
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture (random weights)")
    parser.add_argument("--classes", type=int, default=20, help="the first N ImageNet classes")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from clipxai.models import zeroshot

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = open_clip.create_model(args.model, pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer(args.model)
    names = zeroshot.imagenet_classnames()[:args.classes]
    templates = zeroshot.openai_templates()
    start = time.perf_counter()
    loop = zeroshot.classifier_one_class_at_a_time(model, tokenizer, names, templates)
    loop_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = zeroshot.classifier(model, tokenizer, names, templates, progress=False)
    batched_s = time.perf_counter() - start
    difference = float((loop - batched).abs().max())
    print(f"zero-shot classifier, {args.model}, {len(names)} classes x {len(templates)} templates, "
          f"{args.threads} thread(s)")
    print(f"  one class at a time: {loop_s:8.2f} s")
    print(f"  batched:             {batched_s:8.2f} s   speed-up {loop_s / batched_s:.1f}x")
    print(f"  max |weight difference| = {difference:.2e} (limit 1e-6)")
    return 0 if difference <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
