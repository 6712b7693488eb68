"""The command-line side of the saliency figure verbs (figure-layers, -methods, -polarity, -perword): their shared
arguments, the model they load and how examples enter it. The drawing is clipxai.viz.saliency (no argparse, no
model loading there: viz depends on no verb and no model code)."""

from __future__ import annotations

from clipxai.commands import _args


def add_arguments(parser) -> None:
    """The arguments every saliency figure verb shares: data, model, examples, output."""
    parser.add_argument("--data", required=True, help="data set root (COCO panoptic + PNG layout)")
    parser.add_argument("--split", default="val")
    _args.add_model_arguments(parser)
    parser.add_argument("--n", type=int, default=3, help="number of example images (rows)")
    parser.add_argument("--max-words", type=int, default=4, help="words per image (per-word saliency)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--label", default="", help="what the figure shows, for the caption (data set / model)")
    _args.add_output(parser, "--out", required=True, help="output .png (a .pdf and a .json sidecar go beside it)")


def load_model(args):
    """The model named by the shared arguments, on the CPU or the given device, with torch's threads set."""
    import torch

    from clipxai.models.registry import load_model as load

    if args.threads:
        torch.set_num_threads(args.threads)
    return load(args.model, args.pretrained, args.checkpoint, args.device)


def model_inputs(model, examples: list, texts: list[str]):
    """Preprocessed images [B,3,H,W] and tokens [B,ctx] (row i: example i with text i) on the model's device."""
    import torch

    images = torch.stack([model.preprocess(e.image) for e in examples]).to(model.device)
    return images, model.tokenizer(texts).to(model.device)
