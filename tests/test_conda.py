"""`snakemake --sdm conda`: every rule names the environment of envs/ its verb belongs to, and jobs run the
clipxai of this source tree inside whatever environment Snakemake activates.

There is no conda here (no internet to conda-forge), so the end-to-end test puts a stand-in `conda` on PATH. It
answers Snakemake's version and configuration queries and, for `conda env create --file F --prefix P`, makes P a
Python environment that holds this venv's third-party packages but not clipxai itself, plus the `activate` script
Snakemake sources before each job. Everything Snakemake does around it is real: hashing the env files, creating one
environment per file, wrapping each job's shell command in its activation. What it cannot show is conda-forge
solving the files, which needs a real conda.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from conftest import REPO

from test_envs import ENV_FILES, env_verbs

RULE_FILES = sorted((REPO / "rules").glob("*.smk")) + [REPO / "Snakefile"]


def rule_blocks() -> dict[str, str]:
    """Rule name -> its text, from every .smk file (a rule ends where the next unindented line starts)."""
    blocks = {}
    for path in RULE_FILES:
        for match in re.finditer(r"(?ms)^rule (\w+):\n(.*?)(?=^\S)", path.read_text() + "\nEND"):
            blocks[match.group(1)] = match.group(2)
    return blocks


def verb_envs() -> dict[str, list[str]]:
    """clipxai verb (module name) -> the envs/ files declaring it."""
    declared: dict[str, list[str]] = {}
    for path in ENV_FILES:
        for verb in env_verbs(path):
            declared.setdefault(verb, []).append(path.name)
    return declared


def test_every_verb_belongs_to_exactly_one_env():
    from clipxai.commands import COMMAND_MODULES

    declared = verb_envs()
    assert {verb: envs for verb, envs in declared.items() if len(envs) > 1} == {}
    assert sorted(set(COMMAND_MODULES) - set(declared)) == [], "verbs no envs/*.yaml declares"


def test_every_shell_rule_runs_clipxai_in_the_env_of_its_verb():
    blocks, declared = rule_blocks(), verb_envs()
    shell_rules = {name: text for name, text in blocks.items() if "    shell:" in text}
    assert len(shell_rules) >= 40
    for name, text in shell_rules.items():
        verb = re.search(r'"python -m clipxai ([a-z][a-z\-]*)', text)
        assert verb, f"rule {name}: its shell command does not run `python -m clipxai VERB`"
        env = re.search(r'    conda:\n\s+"\.\./envs/(\w+\.yaml)"', text)
        assert env, f"rule {name}: no `conda:` directive naming an envs/ file"
        module = verb.group(1).replace("-", "_")
        assert declared.get(module) == [env.group(1)], \
            f"rule {name}: runs `{verb.group(1)}` in envs/{env.group(1)}, which does not declare it"


def test_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile"),
                             "--directory", str(REPO)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


# ---- the stand-in conda ----

FAKE_CONDA = r'''#!{python}
"""Stand-in for conda: just what Snakemake's conda deployment calls (see tests/test_conda.py)."""
import json, os, re, subprocess, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("conda 24.11.0")
elif args[:2] == ["info", "--json"]:
    print(json.dumps({{"conda_prefix": {prefix!r}, "platform": "linux-64"}}))
elif args[:2] == ["config", "--get"]:
    print(json.dumps({{"get": {{"channel_priority": "strict"}}}}))
elif args[:2] == ["env", "create"]:
    spec = re.search(r"--file \"?([^\" ]+)", " ".join(args)).group(1)
    target = re.search(r"--prefix \"?([^\" ]+)", " ".join(args)).group(1)
    subprocess.run([{base_python!r}, "-m", "venv", "--without-pip", target], check=True)
    site = subprocess.run([target + "/bin/python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the packages, not clipxai: a directory named in a .pth file is added without running its own .pth files,
    # so the venv's editable install of clipxai stays invisible
    with open(os.path.join(site, "packages.pth"), "w") as fh:
        fh.write({packages!r} + "\n")
    name = re.search(r"(?m)^name: *(\S+)", open(spec).read()).group(1)
    with open(os.path.join(target, "env_name"), "w") as fh:
        fh.write(name)
    with open({created!r}, "a") as fh:
        fh.write(name + "\n")
elif args[:1] == ["clean"]:
    pass  # no package cache to clean
else:
    sys.exit("stand-in conda: unsupported arguments " + " ".join(args))
'''

ACTIVATE = 'export PATH="$1/bin:$PATH"\nexport CONDA_PREFIX="$1"\n'


@pytest.fixture(scope="module")
def conda_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("conda")
    prefix, workdir = root / "conda", root / "work"
    (prefix / "bin").mkdir(parents=True)
    workdir.mkdir()
    created = root / "created.txt"
    base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    conda = prefix / "bin" / "conda"
    conda.write_text(FAKE_CONDA.format(python=sys.executable, prefix=str(prefix), base_python=str(base_python),
                                       packages=sysconfig.get_path("purelib"), created=str(created)))
    conda.chmod(0o755)
    (prefix / "bin" / "activate").write_text(ACTIVATE)
    config = root / "config.yaml"
    config.write_text((REPO / "tests/data/config_tiny.yaml").read_text())
    # data env (text pool), torch env (shapes, training, zero-shot) and report env (the table)
    targets = ["resources/text/shapes.txt", "results/tables/zeroshot_shapes.csv"]
    env = {**os.environ, "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--cores", "2", "--sdm", "conda", "--conda-prefix", str(root / "envs"),
           *targets]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    return result, workdir, created


def test_jobs_run_in_their_conda_env_with_clipxai_from_the_source_tree(conda_run):
    result, workdir, created = conda_run
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert sorted(created.read_text().split()) == ["clipxai-data", "clipxai-report", "clipxai-torch"]
    expected = {"generate_text_pool": "clipxai-data", "make_shapes": "clipxai-torch",
                "train_toy_clip": "clipxai-torch", "zeroshot_shapes": "clipxai-torch",
                "table_zeroshot_shapes": "clipxai-report"}
    for rule, env_name in expected.items():
        (log,) = (workdir / "logs" / rule).rglob("*.log")
        first = re.search(r"clipxai \S+ from (\S+), python (\S+)", log.read_text())
        assert first, f"{log}: no interpreter line"
        assert Path(first.group(1)) == REPO / "src" / "clipxai", f"{rule} ran clipxai from {first.group(1)}"
        env_dir = Path(first.group(2)).parent.parent
        assert (env_dir / "env_name").read_text() == env_name, f"{rule} ran in {env_dir}"
    assert (workdir / "results/tables/zeroshot_shapes.csv").stat().st_size > 0
