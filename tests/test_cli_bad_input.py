"""Bad input to any verb: exit 2, exactly one line on stderr naming the file or argument and what was expected,
and nothing written. Generated cases cover every argument of every verb (unknown options, missing required
arguments, non-numbers, values outside the choices, outputs that name a directory or a file); the table below
covers the file contents a user can get wrong (pickles, garbage weights, broken and hostile images, model
configs, training settings)."""

from __future__ import annotations

import argparse
import json
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clipxai import cli
from clipxai.commands import COMMAND_MODULES, _args

TINY = {"embed_dim": 16,
        "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
VERBS = [m.replace("_", "-") for m in COMMAND_MODULES]


def verb_parser(verb: str) -> argparse.ArgumentParser:
    parser, _ = cli.build_parser([verb.replace("-", "_")])
    return parser.verbs[verb]


def options(verb: str) -> list[argparse.Action]:
    return [a for a in verb_parser(verb)._actions if a.option_strings and a.dest not in ("help", "debug")]


def dummy(action: argparse.Action, root: Path) -> str:
    """A syntactically valid value; files point into ``root`` (outputs into root/out, inputs into root/in)."""
    if action.choices:
        return list(action.choices)[0]
    if action.type in (int, float):
        return "1"
    if _args.is_output(action):
        return str(root / "out" / action.dest)
    return str(root / "in" / action.dest)


def base_argv(verb: str, root: Path, without: str | None = None) -> list[str]:
    argv = [verb]
    parser = verb_parser(verb)
    # a required either-or group (fetch-weights: --pretrained or --checkpoint) needs one of its members
    chosen = [group._group_actions[0] for group in parser._mutually_exclusive_groups if group.required
              and not any(action.dest == without for action in group._group_actions)]
    for action in parser._actions:
        if (action.required or action in chosen) and action.dest != without:
            argv += [action.option_strings[-1], dummy(action, root)] if action.option_strings else [
                dummy(action, root)]
    return argv


def written(root: Path) -> list[str]:
    out = root / "out"
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) if out.exists() else []


def run_bad(argv: list[str], capsys) -> str:
    """Run the CLI in-process; assert exit 2 and one stderr line; return it."""
    status = cli.main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------------- generated: every argument


def _generated_cases() -> list[tuple[str, str, str]]:
    """(verb, kind, option) for every verb and every argument it has."""
    cases = []
    for verb in VERBS:
        cases.append((verb, "unknown-option", "--no-such-option"))
        for action in options(verb):
            flag = action.option_strings[-1]
            if action.required:
                cases.append((verb, "missing", flag))
            if action.type in (int, float) and action.nargs is None:
                cases.append((verb, "not-a-number", flag))
            if action.choices:
                cases.append((verb, "bad-choice", flag))
            if _args.is_output(action):
                cases.append((verb, "output-is-dir" if _args.output_dir not in action.clipxai_checks
                              else "output-is-file", flag))
        for action in verb_parser(verb)._actions:
            if not action.option_strings and action.dest != "help":  # a positional (download's SOURCE)
                cases.append((verb, "missing", action.dest))
    return cases


GENERATED = _generated_cases()


@pytest.mark.parametrize("verb, kind, flag", GENERATED, ids=[f"{v}:{k}:{f}" for v, k, f in GENERATED])
def test_every_argument_of_every_verb(verb, kind, flag, tmp_path, capsys):
    action = next((a for a in verb_parser(verb)._actions if flag in a.option_strings or a.dest == flag), None)
    argv = base_argv(verb, tmp_path, without=action.dest if kind == "missing" else None)
    expect = flag
    if kind == "unknown-option":
        argv += [flag]
    elif kind == "not-a-number":
        argv += [flag, "many"]
    elif kind == "bad-choice":
        argv += [flag, "no-such-choice"]
    elif kind in ("output-is-dir", "output-is-file"):
        target = tmp_path / "out" / "taken"
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "output-is-dir":
            target.mkdir()
        else:
            target.write_text("a file where a folder should be")
        argv += [flag, f"k={target}" if action.nargs == "*" else str(target)]
        expect = str(target)
    line = run_bad(argv, capsys)
    # argparse reports an unknown option from the top-level parser ("clipxai: error: ..."), the rest per verb
    prefix = "clipxai: error: " if kind == "unknown-option" else f"clipxai {verb}: error: "
    assert line.startswith(prefix) and expect.lower() in line.lower(), line  # a positional shows as its METAVAR
    assert [w for w in written(tmp_path) if w != "taken"] == []


def test_the_generated_sweep_reaches_every_verb():
    assert {verb for verb, _, _ in GENERATED} == set(VERBS)
    kinds = {kind for _, kind, _ in GENERATED}
    assert kinds == {"unknown-option", "missing", "not-a-number", "bad-choice", "output-is-dir", "output-is-file"}


# ----------------------------------------------------------------------------------- table: bad file contents


class _MakesMarker:
    """A pickle payload: unpickling it would create the marker file (open(path, "w"))."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header) and no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    (root / "tiny.json").write_text(json.dumps(TINY))
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(root / "ok.png")
    good = (root / "ok.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "not-an-image.png").write_bytes(b"GIF? no: plain text")
    (root / "bomb.png").write_bytes(_png_header(100_000, 100_000))  # 10^10 pixels: 5x PIL's hard limit
    (root / "notes.txt").write_text("these are notes, not maps\n")
    np.save(root / "array.npy", np.zeros(3))
    with open(root / "evil.pt", "wb") as fh:  # a plain pickle, the legacy torch format
        pickle.dump({"weight": _MakesMarker(root / "PWNED")}, fh)
    with open(root / "evil-p2.pt", "wb") as fh:  # protocol 2, the one torch.load's unpickler speaks
        pickle.dump({"weight": _MakesMarker(root / "PWNED")}, fh, protocol=2)
    torch.save({"weight": _MakesMarker(root / "PWNED")}, root / "evil-zip.pt")  # torch's zip format
    torch.save([torch.zeros(2)], root / "list.pt")
    (root / "garbage.safetensors").write_bytes(b"\xff" * 64)
    (root / "garbage.pt").write_bytes(b"\x00garbage" * 8)
    for name, change in {
        "unknown-top.json": lambda c: c.update(embed_dimension=16),
        "unknown-vision.json": lambda c: c["vision_cfg"].update(patch=8),
        "unknown-text.json": lambda c: c["text_cfg"].update(heads_=2),
        "wrong-type.json": lambda c: c["vision_cfg"].update(width="wide"),
        "float-layers.json": lambda c: c["text_cfg"].update(layers=1.5),
    }.items():
        cfg = json.loads(json.dumps(TINY))
        change(cfg)
        (root / name).write_text(json.dumps(cfg))
    (root / "folder").mkdir()
    (root / "folder" / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY}))
    (root / "folder" / "open_clip_model.safetensors").write_bytes(b"not safetensors at all")
    return root


def _attribute(f, *extra, image="ok.png", text="a red circle", model="tiny.json", method="random"):
    return ["attribute", "--model", str(f / model), "--method", method, "--image", str(f / image),
            "--text", text, *extra]


# (case id, argv builder given the fixture folder and the output folder, words the one line must contain)
CONTENT_CASES = [
    ("checkpoint-pickle", lambda f, o: _attribute(f, "--checkpoint", str(f / "evil.pt"), "--out", f"{o}/m.npz"),
     ["evil.pt", "--checkpoint", "tensors only", "nothing in it was executed"]),
    ("checkpoint-pickle-protocol-2", lambda f, o: _attribute(f, "--checkpoint", str(f / "evil-p2.pt"),
                                                             "--out", f"{o}/m.npz"),
     ["evil-p2.pt", "tensors only", "construct", "open", "nothing in it was executed"]),
    ("checkpoint-pickle-zip", lambda f, o: _attribute(f, "--checkpoint", str(f / "evil-zip.pt"),
                                                      "--out", f"{o}/m.npz"),
     ["evil-zip.pt", "tensors only", "construct io.open", "nothing in it was executed"]),
    ("checkpoint-zeroshot", lambda f, o: ["zeroshot", "--data", str(f), "--model", str(f / "tiny.json"),
                                          "--checkpoint", str(f / "evil.pt"), "--out", f"{o}/z.csv"],
     ["evil.pt", "tensors only"]),
    ("checkpoint-not-a-dict", lambda f, o: _attribute(f, "--checkpoint", str(f / "list.pt"), "--out", f"{o}/m.npz"),
     ["list.pt", "a mapping of names to tensors"]),
    ("checkpoint-garbage-pt", lambda f, o: _attribute(f, "--checkpoint", str(f / "garbage.pt"),
                                                      "--out", f"{o}/m.npz"),
     ["garbage.pt", "tensors only", "refused"]),
    ("checkpoint-garbage-safetensors", lambda f, o: _attribute(f, "--checkpoint", str(f / "garbage.safetensors"),
                                                               "--out", f"{o}/m.npz"),
     ["garbage.safetensors", "a valid .safetensors file"]),
    ("model-folder-garbage-weights", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", model="folder"),
     ["open_clip_model.safetensors", "--model", "a valid .safetensors file"]),
    ("model-unknown-top-level-key", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", model="unknown-top.json"),
     ["unknown-top.json", "embed_dimension", "a known top-level key"]),
    ("model-unknown-vision-key", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", model="unknown-vision.json"),
     ["unknown-vision.json", "vision_cfg.patch", "a known key of vision_cfg"]),
    ("model-unknown-text-key", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", model="unknown-text.json"),
     ["text_cfg.heads_"]),
    ("model-wrong-type", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", model="wrong-type.json"),
     ["wrong-type.json", "vision_cfg.width", "an integer", '"wide"']),
    ("model-float-layers", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", model="float-layers.json"),
     ["text_cfg.layers", "1.5"]),
    ("image-bomb-attribute", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", image="bomb.png"),
     ["bomb.png", "--image", "decompression bomb"]),
    ("image-bomb-decompose", lambda f, o: ["decompose", "--model", str(f / "tiny.json"), "--image",
                                           str(f / "bomb.png"), "--out", f"{o}/d.npz"],
     ["bomb.png", "decompression bomb"]),
    ("image-not-an-image", lambda f, o: ["decompose", "--model", str(f / "tiny.json"), "--image",
                                         str(f / "not-an-image.png"), "--out", f"{o}/d.npz"],
     ["not-an-image.png", "no image format PIL knows"]),
    ("image-truncated-decompose", lambda f, o: ["decompose", "--model", str(f / "tiny.json"), "--image",
                                                str(f / "ok.png"), str(f / "truncated.png"), "--out", f"{o}/d.npz"],
     ["truncated.png", "corrupt or truncated"]),
    ("image-missing", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", image="nope.png"),
     ["nope.png", "an existing image file"]),
    ("text-empty", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", text=""),
     ["--text", "a non-empty text"]),
    ("text-blank-repeated", lambda f, o: _attribute(f, "--text", "  ", "--out", f"{o}/m.npz"),
     ["--text", "a non-empty text"]),
    ("batch-size-zero", lambda f, o: _attribute(f, "--batch-size", "0", "--out", f"{o}/m.npz"),
     ["--batch-size", "a positive integer"]),
    ("unknown-method", lambda f, o: _attribute(f, "--out", f"{o}/m.npz", method="no-such-method"),
     ["no-such-method"]),
    ("text-file-as-maps-score", lambda f, o: ["score-grounding", "--data", str(f), "--maps", str(f / "notes.txt"),
                                              "--out", f"{o}/s.csv", "--summary", f"{o}/sum.csv"],
     ["notes.txt", "--maps", "not a zip archive"]),
    ("npy-as-maps-segmentation", lambda f, o: ["score-segmentation", "--data", str(f), "--maps",
                                               str(f / "array.npy"), "--out", f"{o}/s.csv"],
     ["array.npy", "an .npy array"]),
    ("text-file-as-maps-figure", lambda f, o: ["figure-grounding", "--data", str(f), "--maps", str(f / "notes.txt"),
                                               "--labels", "a", "--out", f"{o}/f.png"],
     ["notes.txt", "not a zip archive"]),
    ("text-file-as-decomposition", lambda f, o: ["explain-heads", "--decomposition", str(f / "notes.txt"),
                                                 "--texts", str(f / "notes.txt"), "--out", f"{o}/h.csv"],
     ["notes.txt", "--decomposition"]),
    ("settings-unknown-key", lambda f, o: ["train-toy", "--data", str(f), "--settings", '{"stepz": 3}',
                                           "--out", f"{o}/m"], ["--settings", "stepz"]),
    ("settings-unknown-architecture-key", lambda f, o: ["train-toy", "--data", str(f), "--settings",
                                                        '{"architecture": {"widht": 64}}', "--out", f"{o}/m"],
     ["--settings", "architecture.widht", "one of"]),
    ("settings-float-architecture", lambda f, o: ["train-toy", "--data", str(f), "--settings",
                                                  '{"architecture": {"width": 64.5}}', "--out", f"{o}/m"],
     ["architecture.width", "a positive integer", "64.5"]),
    ("settings-wrong-type", lambda f, o: ["train-toy", "--data", str(f), "--settings", '{"steps": "many"}',
                                          "--out", f"{o}/m"], ["--settings", "steps", "an integer"]),
    ("settings-not-json", lambda f, o: ["train-toy", "--data", str(f), "--settings", "{steps: 3",
                                        "--out", f"{o}/m"], ["--settings", "JSON"]),
]


@pytest.mark.parametrize("argv_of, words", [c[1:] for c in CONTENT_CASES], ids=[c[0] for c in CONTENT_CASES])
def test_bad_file_contents(argv_of, words, files, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    line = run_bad(argv_of(files, out), capsys)
    for word in words:
        assert word in line, line
    assert written(tmp_path) == []
    assert not (files / "PWNED").exists()  # no pickle payload ever ran


def test_malicious_checkpoint_in_a_fresh_process(files, tmp_path):
    """The whole stderr of the real command (logging at its default level included) is the one line."""
    marker = files / "PWNED"
    result = subprocess.run([sys.executable, "-m", "clipxai", "attribute", "--model", str(files / "tiny.json"),
                             "--checkpoint", str(files / "evil.pt"), "--method", "random", "--image",
                             str(files / "ok.png"), "--text", "a red circle", "--out", str(tmp_path / "m.npz")],
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert str(files / "evil.pt") in lines[0] and "tensors only" in lines[0]
    assert not marker.exists() and not (tmp_path / "m.npz").exists()


def test_bomb_warning_turned_error_is_one_line(files, tmp_path, capsys, monkeypatch):
    """Between PIL's warning and error limits PIL only warns; with warnings as errors the warning is the error."""
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # ok.png: 1600 pixels, over 1000, under 2 x 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        line = run_bad(_attribute(files, "--out", str(tmp_path / "m.npz")), capsys)
    assert "ok.png" in line and "decompression bomb" in line
    assert not (tmp_path / "m.npz").exists()


def test_case_count():
    """The sweep's size, for the record (printed with -s); it must not shrink unnoticed."""
    total = len(GENERATED) + len(CONTENT_CASES) + 2
    print(f"bad-input cases: {len(GENERATED)} generated + {len(CONTENT_CASES)} file contents + 2 = {total}")
    assert len(GENERATED) > 4 * len(VERBS) and len(CONTENT_CASES) >= 30
