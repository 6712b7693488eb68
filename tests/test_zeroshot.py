"""Zero-shot classifiers (clipxai.models.zeroshot)."""

from __future__ import annotations

import numpy as np
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


def test_length_sorted_classifier_equals_the_one_class_loop(tiny):
    # open_clip's batched builder over prompts cut to their end-of-text token: the same weights as encoding each
    # class's prompts at full context length (12 here), to float32 rounding.
    model, tokenizer = tiny
    names = ["red circle", "blue square", "green star", "small yellow triangle", "cat"]
    templates = ["a photo of a {}.", lambda c: f"itap of the {c}", "{}", "a big bad drawing of a {} here"]
    reference = zeroshot.classifier_one_class_at_a_time(model, tokenizer, names, templates)
    for per_batch, batch_size in ((2, 3), (100, 256)):
        got = zeroshot.classifier(model, tokenizer, names, templates, batch_size=batch_size,
                                  classes_per_batch=per_batch)
        assert got.shape == (32, 5)
        assert (got - reference).abs().max() <= 1e-6
    tokens = tokenizer(["a", "a much longer prompt than that"])
    view = zeroshot.LengthSortedText(model)
    assert view.rule[:2] == ("eot", "argmax")
    assert zeroshot.read_lengths(tokens, view.rule).tolist() == [3, 8]
    assert torch.allclose(view.encode_text(tokens), model.encode_text(tokens), atol=1e-6)


def test_length_sorted_text_handles_a_hugging_face_tower(tmp_path):
    # CLIPpy's kind of tower (Hugging Face T5, masked mean pooling): padding is cut by the pad id instead.
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from clipxai.models import clippy

    words = "a photo of the red blue circle square star big".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    word_level = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    word_level.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    (tmp_path / "tok").mkdir()
    word_level.save(str(tmp_path / "tok" / "tokenizer.json"))
    (tmp_path / "tok" / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<pad>", "eos_token": "</s>",
         "unk_token": "<unk>", "model_max_length": 64}))
    t5 = json.loads((clippy.SHIPPED_TEXT_CONFIG_DIR / "config.json").read_text())
    t5.update(d_model=32, d_ff=64, d_kv=16, num_heads=2, num_layers=2, num_decoder_layers=1, vocab_size=len(vocab))
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text(json.dumps(t5))
    clippy._register_t5_architecture()
    torch.manual_seed(0)
    model = open_clip.CustomTextCLIP(
        embed_dim=16, vision_cfg={"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16},
        text_cfg={"hf_model_name": str(tmp_path / "t5"), "hf_model_pretrained": False, "hf_proj_type": "linear",
                  "hf_pooler_type": "mean_pooler", "context_length": 16}).eval()
    tokenizer = open_clip.tokenizer.HFTokenizer(str(tmp_path / "tok"), context_length=16)
    view = zeroshot.LengthSortedText(model)
    assert view.rule == ("pad", 0)
    names = ["red circle", "blue square", "big star"]
    templates = ["a photo of the {}", "{}", "a big {}"]
    reference = zeroshot.classifier_one_class_at_a_time(model, tokenizer, names, templates)
    got = zeroshot.classifier(model, tokenizer, names, templates, batch_size=2, classes_per_batch=2)
    assert (got - reference).abs().max() <= 1e-6


def test_shared_prefix_plan_caches_each_template_once():
    # Three templates x four classes: each template's prompts share "<start> + template words", so the cheapest
    # cover caches one prefix per template; a lone prompt is encoded whole.
    from clipxai.models import shared_prefix

    start, end = 1000, 9999
    templates = [[11, 12, 13], [11, 14], [15, 16, 17, 18]]
    classes = [[21], [22, 23], [24], [25, 26, 27]]
    rows = [[start, *t, *c, end] for t in templates for c in classes] + [[start, 30, end]]
    width = max(map(len, rows))
    tokens = np.array([row + [0] * (width - len(row)) for row in rows])
    lengths = np.array([len(row) for row in rows])
    prefix, cluster = shared_prefix.plan(tokens, lengths)
    assert prefix.tolist() == [4] * 4 + [3] * 4 + [5] * 4 + [0]
    assert cluster[-1] == -1 and len(set(cluster[:-1].tolist())) == 3
    assert all(len(set(cluster[i:i + 4].tolist())) == 1 for i in (0, 4, 8))
    # Never more tokens than encoding every row whole, never a prefix reaching the pooled token.
    cost = int((lengths - prefix).sum()) + sum(int(prefix[cluster == k][0]) for k in set(cluster.tolist()) - {-1})
    assert cost < lengths.sum() and (prefix <= lengths - 1).all()


def test_shared_prefix_encoding_equals_encode_text(tiny):
    # Prompts that share prefixes, repeat, are prefixes of one another, or share nothing: the same features as
    # open_clip's encode_text at full length, in any batch size (rows of several clusters in one batch).
    from clipxai.models import shared_prefix

    model, tokenizer = tiny
    texts = ["a photo of a cat", "a photo of a dog", "a photo of a", "a photo of a cat", "a photo",
             "zebra", "a drawing of the big dog", "a drawing of the cat", "a photo of the cat"]
    tokens = tokenizer(texts)
    lengths = zeroshot.read_lengths(tokens, zeroshot.read_rule(model))
    assert shared_prefix.supports(model)
    prefix, _ = shared_prefix.plan(tokens.numpy(), lengths.numpy())
    assert prefix.max() >= 4  # sharing did happen
    with torch.no_grad():
        reference = model.encode_text(tokens)
        for batch_size in (1, 3, 256):
            got = shared_prefix.encode(model, tokens, lengths, batch_size)
            assert (got - reference).abs().max() <= 1e-5 * reference.abs().max()


def test_shared_prefix_refuses_towers_it_does_not_reimplement(tiny):
    import copy

    from clipxai.models import shared_prefix

    model, tokenizer = tiny
    assert not shared_prefix.supports(model.visual)  # no text tower there
    cross = copy.deepcopy(model)
    cross.transformer.resblocks[1].ln_1_kv = torch.nn.LayerNorm(32)
    biased = copy.deepcopy(model)
    biased.transformer.resblocks[0].attn = torch.nn.MultiheadAttention(32, 2, add_bias_kv=True, batch_first=True)
    assert not shared_prefix.supports(cross) and not shared_prefix.supports(biased)
    # A refused tower still gets the plain length-sorted encoding, equal to encode_text.
    tokens = tokenizer(["a photo of a cat", "a photo of a dog"])
    with torch.no_grad():
        expected = biased.encode_text(tokens)
    assert torch.allclose(zeroshot.LengthSortedText(biased).encode_text(tokens), expected, atol=1e-6)
