"""envs/*.yaml (the conda environments for `snakemake --sdm conda`) agree with pyproject.toml.

Results must be byte-identical however clipxai is installed, so every package an env installs is pinned to
exactly the version pyproject.toml pins; the torch env holds every runtime dependency (any step can run in it);
and the clipxai verbs an env declares import nothing that the env does not install.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
# Needed by the workflow engine on the submit host only, never inside a job's environment.
ENGINE_ONLY = {"snakemake"}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def pyproject_pins() -> dict[str, str]:
    """Runtime dependency -> its exact version, from pyproject.toml (every dependency there is `==` pinned)."""
    pins = {}
    for line in pyproject()["project"]["dependencies"]:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"pyproject.toml: {line} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def env_spec(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def env_pins(path: Path) -> dict[str, str]:
    """The pip packages an env installs, name -> version; each must be an exact `name==version` pin."""
    pip_lists = [item["pip"] for item in env_spec(path)["dependencies"] if isinstance(item, dict) and "pip" in item]
    assert len(pip_lists) == 1, f"{path.name}: expected one `pip:` list"
    pins = {}
    for line in pip_lists[0]:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert match, f"{path.name}: `{line}` is not an exact `name==version` pin"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def env_verbs(path: Path) -> list[str]:
    """The clipxai verbs an env is for, from its `# clipxai verbs:` header comment (continued on `#   ` lines)."""
    verbs, reading = [], False
    for line in path.read_text().splitlines():
        if line.startswith("# clipxai verbs:"):
            reading, line = True, line.removeprefix("# clipxai verbs:")
        elif reading and line.startswith("#   "):
            line = line[1:]
        elif reading:
            break
        else:
            continue
        verbs += [verb.strip() for verb in line.split(",") if verb.strip()]
    return verbs


def closure(names: set[str]) -> set[str]:
    """The distributions ``names`` install, with their runtime requirements, transitively (from this venv)."""
    seen, todo = set(), list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_envs_exist_for_each_kind_of_step():
    assert {path.stem for path in ENV_FILES} >= {"data", "torch", "report"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_equal_pyproject_pins(path):
    expected = pyproject_pins()
    pins = env_pins(path)
    assert pins, f"{path.name} installs nothing"
    unknown = sorted(set(pins) - set(expected))
    assert not unknown, f"{path.name} installs packages pyproject.toml does not depend on: {unknown}"
    differing = {name: (version, expected[name]) for name, version in pins.items() if version != expected[name]}
    assert not differing, f"{path.name}: (env, pyproject) versions differ: {differing}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_python_satisfies_requires_python(path):
    conda = [item for item in env_spec(path)["dependencies"] if isinstance(item, str)]
    pythons = [item for item in conda if re.match(r"python\b", item)]
    assert len(pythons) == 1 and "pip" in conda, f"{path.name}: expected `python=X.Y` and `pip`, got {conda}"
    version = re.fullmatch(r"python\s*=+\s*([\d.]+)", pythons[0]).group(1)
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert requires.contains(version + ".0"), f"{path.name}: python {version} outside requires-python {requires}"


def test_torch_env_holds_every_runtime_dependency():
    missing = sorted(set(pyproject_pins()) - ENGINE_ONLY - set(env_pins(REPO / "envs" / "torch.yaml")))
    assert not missing, f"envs/torch.yaml lacks runtime dependencies of pyproject.toml: {missing}"


def test_declared_verbs_exist():
    from clipxai.commands import COMMAND_MODULES

    for path in ENV_FILES:
        verbs = env_verbs(path)
        assert verbs, f"{path.name}: no `# clipxai verbs:` line"
        unknown = sorted(set(verbs) - set(COMMAND_MODULES))
        assert not unknown, f"{path.name} names verbs clipxai does not have: {unknown}"


# The distributions a verb module imports when loaded (what running that verb needs, beyond lazy imports).
_IMPORTED_DISTRIBUTIONS = r"""
import importlib, importlib.metadata as md, json, sys
top_to_dists = md.packages_distributions()
found = {}
for verb in sys.argv[1:]:
    before = set(sys.modules)
    importlib.import_module("clipxai.commands." + verb)
    tops = {name.split(".")[0] for name in set(sys.modules) - before}
    found[verb] = sorted({dist for top in tops for dist in top_to_dists.get(top, [])})
print(json.dumps(found))
"""


@pytest.mark.parametrize("name", ["data", "report"])
def test_verbs_import_only_what_their_env_installs(name):
    # Each verb in a fresh interpreter would be exact but slow; imports accumulate in one process instead,
    # which can only hide a package already imported by an earlier verb of the same env (that env has it).
    path = REPO / "envs" / f"{name}.yaml"
    provided = closure(set(env_pins(path))) | {"clipxai"}
    result = subprocess.run([sys.executable, "-c", _IMPORTED_DISTRIBUTIONS, *env_verbs(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lacking = {verb: sorted({canonicalize_name(d) for d in dists} - provided)
               for verb, dists in json.loads(result.stdout).items()}
    lacking = {verb: dists for verb, dists in lacking.items() if dists}
    assert not lacking, f"envs/{name}.yaml lacks what these verbs import: {lacking}"
