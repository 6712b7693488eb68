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
    assert zeroshot._needed_lengths(tokens, view.rule).tolist() == [3, 8]
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
