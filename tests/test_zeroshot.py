"""Zero-shot classifiers (clipxai.models.zeroshot)."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from clipxai.errors import InputError
from clipxai.models import zeroshot

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = open_clip.model.CLIP(
        embed_dim=32, vision_cfg={"image_size": 32, "patch_size": 8, "width": 64, "layers": 1, "head_width": 16},
        text_cfg={"context_length": 12, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}).eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=12)
    return model, tokenizer


def test_metadata_comes_from_open_clip():
    templates = zeroshot.openai_templates()
    names = zeroshot.imagenet_classnames()
    assert len(templates) == 80 and len(names) == 1000
    assert templates[0]("goldfish") == open_clip.OPENAI_IMAGENET_TEMPLATES[0]("goldfish")
    assert names[1] == open_clip.IMAGENET_CLASSNAMES[1]


def test_classifier_is_renormalised_mean_of_normalised_prompts(tiny):
    model, tokenizer = tiny
    names = ["red circle", "blue square", "green star"]
    templates = ["a photo of a {}.", lambda c: f"a drawing of the {c}", "{}"]
    weights = zeroshot.classifier(model, tokenizer, names, templates, batch_size=2)
    assert weights.shape == (32, 3)
    with torch.no_grad():
        for column, name in enumerate(names):
            prompts = [f"a photo of a {name}.", f"a drawing of the {name}", name]
            embedded = F.normalize(model.encode_text(tokenizer(prompts)), dim=-1)
            expected = F.normalize(embedded.mean(0), dim=0)
            assert torch.allclose(weights[:, column], expected, atol=1e-6)
            # Renormalising the mean matters: the plain mean of unit vectors is shorter than 1.
            assert embedded.mean(0).norm() < 0.999
    # And open_clip's own builder agrees (it takes templates of one kind only).
    openai = zeroshot.openai_templates()[:5]
    reference = open_clip.build_zero_shot_classifier(model, tokenizer, names, openai)
    assert torch.allclose(zeroshot.classifier(model, tokenizer, names, openai), reference, atol=1e-6)


def test_text_embeddings_are_unit_and_batched_consistently(tiny):
    model, tokenizer = tiny
    texts = [f"text number {i}" for i in range(7)]
    one_batch = zeroshot.text_embeddings(model, tokenizer, texts, batch_size=100)
    small_batches = zeroshot.text_embeddings(model, tokenizer, texts, batch_size=3)
    assert one_batch.shape == (7, 32)
    assert torch.allclose(one_batch.norm(dim=-1), torch.ones(7), atol=1e-6)
    assert torch.allclose(one_batch, small_batches, atol=1e-6)


def test_empty_inputs_raise(tiny):
    model, tokenizer = tiny
    with pytest.raises(InputError):
        zeroshot.classifier(model, tokenizer, [], ["{}"])
    with pytest.raises(InputError):
        zeroshot.text_embeddings(model, tokenizer, [])
