"""Arguments several verbs share, declared once so every verb names and documents them the same way.

Besides the shared arguments, this module attaches *checks* to arguments: functions of one value that raise an
``InputError`` naming the file, the argument and what was expected. The CLI runs every check of the verb it runs
(:func:`run_checks`) after parsing and before the verb's body, so a mistake in a file argument (an output path that
is a directory, a checkpoint that is not a state dict of tensors, a text file given as maps) is found before the
minutes or hours of compute, not after them.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Callable

from clipxai.errors import InputError
from clipxai.data.kinds import formats_serving

Check = Callable[[str, str], None]  # (value, option name) -> None or raise InputError

_CHECKS = "clipxai_checks"  # attribute of an argparse Action: its checks, run in order on every value


def non_negative_int(value: str) -> int:
    """argparse type: an integer >= 0 (argparse names the option in its one-line error)."""
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


non_negative_int.__name__ = "non-negative integer"  # argparse's message: "invalid non-negative integer value"


def checked(action: argparse.Action, *checks: Check) -> argparse.Action:
    """Attach ``checks`` to an argument (an ``add_argument`` result); returns it."""
    setattr(action, _CHECKS, getattr(action, _CHECKS, ()) + checks)
    return action


def add_checked(parser, *flags: str, check: Check, **kwargs) -> argparse.Action:
    """``parser.add_argument(*flags, **kwargs)`` with ``check`` run on its value(s) before the verb runs."""
    return checked(parser.add_argument(*flags, **kwargs), check)


def run_checks(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Run the checks of every argument of ``parser`` given a value in ``args`` (each value of a list), those of
    the outputs first: a run whose results could not be written should not even read its inputs."""
    actions = sorted(parser._actions, key=lambda a: not is_output(a))  # argparse has no public list of them
    for action in actions:
        checks = getattr(action, _CHECKS, ())
        value = getattr(args, action.dest, None)
        if not checks or value is None:
            continue
        option = action.option_strings[-1] if action.option_strings else action.dest
        for item in value if isinstance(value, list) else [value]:
            for check in checks:
                check(str(item), option)


def is_output(action: argparse.Action) -> bool:
    """Whether an argument names something the verb writes (declared through :func:`add_output`)."""
    return any(getattr(check, "output", False) for check in getattr(action, _CHECKS, ()))


class ExtendDefault(argparse.Action):
    """``action="extend"`` for a list argument with a non-empty default: the values given replace the default
    (argparse's own "extend" would add them to it); ``--x a --x b`` and ``--x a b`` both give [a, b]."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        items = [] if current is None or current is self.default else list(current)
        setattr(namespace, self.dest, items + list(values))


# --------------------------------------------------------------------------------------------- output paths


def _writable_parent(path: Path, option: str) -> None:
    """The nearest existing ancestor of ``path`` is a directory we may write into (it creates the rest)."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(parent, option, "a directory to write into, not a file")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(parent, option, "a directory this user may write into")
            return


def output_file(value: str, option: str) -> None:
    path = Path(value)
    if path.is_dir():
        raise InputError(path, option, "a file name to write, not an existing directory")
    _writable_parent(path, option)


def output_dir(value: str, option: str) -> None:
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise InputError(path, option, "a directory to write, not an existing file")
    _writable_parent(path, option)


def output_pair(value: str, option: str) -> None:
    """``KEY=PATH`` of a file to write."""
    key, sep, path = value.partition("=")
    if not sep or not key or not path:
        raise InputError(option, value, "KEY=PATH")
    output_file(path, option)


for _check in (output_file, output_dir, output_pair):
    _check.output = True

_OUTPUT_KINDS = {"file": output_file, "dir": output_dir, "pairs": output_pair}


def add_bootstrap_arguments(parser: argparse.ArgumentParser) -> None:
    """--seed and --bootstrap of a table verb's confidence intervals (resampling draws from the seed)."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000)


def add_output(parser: argparse.ArgumentParser, *flags: str, kind: str = "file", **kwargs) -> argparse.Action:
    """An output argument, checked before the verb runs: ``kind`` "file" (not an existing directory), "dir"
    (not an existing file) or "pairs" (``KEY=PATH`` values naming files); its folder must be writable."""
    return checked(parser.add_argument(*flags, **kwargs), _OUTPUT_KINDS[kind])


# --------------------------------------------------------------------------------------------- input files


def _existing_file(path: Path, option: str, what: str) -> None:
    if not path.exists():
        raise InputError(path, option, f"an existing {what}")
    if not path.is_file():
        raise InputError(path, option, f"{what}, not a directory")


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip (np.savez writes a zip)


def npz_file(value: str, option: str) -> None:
    """An ``.npz`` archive (a zip): a text file, an .npy or a pickle given instead is named as such, not unpickled."""
    path = Path(value)
    _existing_file(path, option, ".npz file")
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head[:4] not in _ZIP_MAGIC:
        found = "an .npy array" if head == b"\x93NUMPY" else "an empty file" if not head else "not a zip archive"
        raise InputError(path, option, f"an .npz file written by clipxai (np.savez), got {found}")


def npz_file_or_dir(value: str, option: str) -> None:
    """A decomposition shard: a folder (memory-mapped shard) or an ``.npz``."""
    if not Path(value).is_dir():
        npz_file(value, option)


def image_file(value: str, option: str) -> None:
    """An image PIL can open whose header is sane (size within PIL's decompression-bomb limit)."""
    from clipxai.data.images import image_size

    image_size(value, option)


def model_source(value: str, option: str) -> None:
    """A model-config JSON or model folder given as ``--model`` is validated (keys, types, weights) up front."""
    from clipxai.models.registry import check_model_source

    check_model_source(value, option)


def checkpoint_file(value: str, option: str) -> None:
    """A local state dict that loads as tensors only (``weights_only``): nothing in it is ever executed."""
    from clipxai.models.registry import check_checkpoint

    check_checkpoint(value, option)


def nonempty_text(value: str, option: str) -> None:
    """A caption with at least one non-blank character: an empty one would be explained as just its start and end
    tokens, a map of nothing the user asked about."""
    if not value.strip():
        raise InputError(option, repr(value), "a non-empty text")


# --------------------------------------------------------------------------------------------- shared arguments


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = True, *,
                        model_help: str = "open_clip model name, model-config JSON or model folder",
                        pretrained_help: str = "open_clip pretrained tag", exclusive: bool = True) -> None:
    """``--model`` plus ``--pretrained`` and ``--checkpoint`` (see clipxai.models.registry.load_model), one or the
    other where ``exclusive`` (zeroshot and segment-voc load CLIPpy too, whose loader takes both)."""
    checked(parser.add_argument("--model", required=required, help=model_help), model_source)
    weights = parser.add_mutually_exclusive_group() if exclusive else parser
    weights.add_argument("--pretrained", default=None, help=pretrained_help)
    checked(weights.add_argument("--checkpoint", default=None, help="local state dict (.pt/.safetensors)"),
            checkpoint_file)


def add_reported_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--reported``: the published numbers, by default the packaged reported.yaml (as the ``report`` verb)."""
    parser.add_argument("--reported", default=None, help=f"{what} (default: the packaged clipxai/report/reported.yaml)")


def reported_file(value: str | None) -> str:
    """The ``--reported`` given, else the packaged clipxai/report/reported.yaml."""
    if value is not None:
        return value
    from clipxai.report.reported import REPORTED  # read only when needed: --help stays light

    return str(REPORTED)


def add_grounding_data_arguments(parser: argparse.ArgumentParser, model: bool = True) -> None:
    """``--data`` and ``--split`` of the verbs that read a PNG-format grounding data set (clipxai.data.png), and
    where ``model``, the model arguments (:func:`add_model_arguments`)."""
    parser.add_argument("--data", required=True, help="data set root (COCO panoptic + PNG layout)")
    parser.add_argument("--split", default="val")
    if model:
        add_model_arguments(parser)


def parse_layers(text: str) -> tuple[int, ...]:
    """``"10,11"`` -> (10, 11); empty -> ()."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError("--spatial-layers", "value", f"comma-separated integers, got {text!r}") from None


def add_image_set_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--format`` and ``--devkit`` of the verbs that open a labelled image set (clipxai.heads.data)."""
    parser.add_argument("--data", required=True, help="data set root")
    parser.add_argument("--format", required=True, choices=formats_serving("heads-explain"),
                        help="on-disk format of the data set (real or the shapes world's)")
    parser.add_argument("--devkit", help="ImageNet: the ILSVRC2012_devkit_t12 folder if not beside --data")


# ------------------------------------------------------------------ several methods in one job: LABEL=PATH values

LABEL = re.compile(r"[A-Za-z0-9_\-]+")


def labelled_path(value: str) -> str:
    """The path in a LABEL=PATH value, for the checks run before the verb, or the value itself (the single-method
    form; a file of that name wins over reading it as LABEL=PATH)."""
    label, sep, path = value.partition("=")
    return path if sep and LABEL.fullmatch(label) and path and not Path(value).exists() else value


def labelled_npz_file(value: str, option: str) -> None:
    npz_file(labelled_path(value), option)


def labelled_output_file(value: str, option: str) -> None:
    output_file(labelled_path(value), option)


labelled_output_file.output = True


def add_labelled_maps(parser: argparse.ArgumentParser, *, method_help: str, maps_help: str) -> None:
    """``--method LABEL ...`` and ``--maps`` (grounding maps .npz, every shard; LABEL=PATH of each method with
    ``--method``) of the verbs that read the maps of one method or several (:func:`group_by_label`)."""
    parser.add_argument("--method", nargs="+", action="extend", default=None, metavar="LABEL", help=method_help)
    add_checked(parser, "--maps", nargs="+", action="extend", required=True, help=maps_help, check=labelled_npz_file)


def group_by_label(args, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> dict[str, dict[str, list[str]]]:
    """``--method LABEL ...`` with LABEL=PATH values of each option: label -> option -> paths, in the order of
    ``--method``. Every label has at least one path of each input option and exactly one of each output option, and
    no output path belongs to two labels."""
    labels = list(args.method)
    for label in labels:
        if not LABEL.fullmatch(label):
            raise InputError("--method", label, "a label of letters, digits, '_' and '-'")
        if labels.count(label) > 1:
            raise InputError("--method", label, "each label once")
    grouped = {label: {option: [] for option in inputs + outputs} for label in labels}
    for option in inputs + outputs:
        for value in getattr(args, option):
            label, sep, path = value.partition("=")
            if not sep or not path:
                raise InputError(f"--{option}", value, "LABEL=PATH (with --method)")
            if label not in grouped:
                raise InputError(f"--{option}", value, f"a label given to --method ({', '.join(labels)})")
            grouped[label][option].append(path)
    written: dict[str, str] = {}
    for label, paths in grouped.items():
        for option in inputs:
            if not paths[option]:
                raise InputError(f"--{option}", label, f"at least one {option} file of each --method")
        for option in outputs:
            if len(paths[option]) != 1:
                raise InputError(f"--{option}", label, f"one file of each --method, got {len(paths[option])}")
            path = paths[option][0]
            if path in written:
                raise InputError(path, f"--{option}", f"a file of one method only; {written[path]} writes it too")
            written[path] = f"{label} (--{option})"
    return grouped


def one_output_per_method(methods: list[str], outs: list[str]) -> None:
    """``--method A B ... --out a b ...``: as many outputs as methods, no file written by two of them."""
    if len(outs) != len(methods):
        raise InputError("--out", "count", f"one output per --method ({len(methods)}), got {len(outs)}")
    seen: dict[str, int] = {}
    for i, out in enumerate(outs):
        if out in seen:
            raise InputError(out, "--out", f"a different file for each method; methods {seen[out] + 1} and {i + 1} "
                             "both write it")
        seen[out] = i
