"""A non-editable install works away from the source tree: what the package reads (the config schema, the report's
templates and published numbers) ships inside it, and nothing is looked up beside a checkout.

The package is built into a wheel from a copy of the source files (pyproject.toml, README.md, LICENSE, src/) and
installed into a fresh venv. Its dependencies are not installed again (offline, fast): the venv sees the test
interpreter's site-packages as plain path entries (a ``.pth`` of paths, so that interpreter's own ``.pth`` files,
its editable clipxai among them, are not processed). Every command then runs with the working directory in a
temporary folder and no PYTHONPATH, and the test checks that the clipxai that ran is the installed copy.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from test_report import CONFIG, GOLDEN, build_run, normalised

SOURCE_FILES = ["pyproject.toml", "README.md", "LICENSE"]


def _run(cmd: list, cwd: Path, env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if ok:
        assert result.returncode == 0, f"{cmd[:3]}: {(result.stdout + result.stderr)[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A venv holding a non-editable clipxai built from this checkout; returns its python, clipxai and env."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in SOURCE_FILES:
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheels = root / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels,
          source], cwd=root, env=env)
    wheel = next(wheels.glob("clipxai-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=root, env=env)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "--quiet", "--no-deps", wheel], cwd=root, env=env)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root,
                        env=env).stdout.strip())
    # dependencies only: the test interpreter's site-packages as path entries, after the venv's own
    (purelib / "zz_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    shutil.rmtree(source)  # nothing of the checkout is left to fall back on
    work = root / "work"
    work.mkdir()
    return {"python": python, "clipxai": venv / "bin" / "clipxai", "env": env, "work": work, "venv": venv}


def test_the_installed_package_is_the_one_that_runs(installed):
    out = _run([installed["python"], "-c", "import clipxai, sys; print(clipxai.__file__); print(sys.path)"],
               cwd=installed["work"], env=installed["env"]).stdout.splitlines()
    assert Path(out[0]).is_relative_to(installed["venv"]), out[0]
    # neither this checkout nor its src/ is on the path (a .venv inside the checkout, as in CI, may be)
    import ast

    entries = {str(Path(p).resolve()) for p in ast.literal_eval(out[1]) if p}
    assert not entries & {str(REPO.resolve()), str((REPO / "src").resolve())}, entries


def test_help_lists_the_verbs(installed):
    out = _run([installed["clipxai"], "--help"], cwd=installed["work"], env=installed["env"]).stdout
    assert "report" in out and "table-grounding" in out and "make-shapes" in out


def test_config_is_validated_with_the_packaged_schema(installed):
    work = installed["work"]
    shutil.copy2(REPO / "config.yaml", work / "config.yaml")
    check = ("import sys; from clipxai.config import load; from clipxai.errors import InputError\n"
             "try:\n    config = load(sys.argv[1])\nexcept InputError as err:\n    sys.exit(str(err))\n"
             "print(config['grounding']['bootstrap'], sorted(config['datasets']))")
    out = _run([installed["python"], "-c", check, "config.yaml"], cwd=work, env=installed["env"]).stdout
    assert out.split()[0] == str(yaml.safe_load((REPO / "config.yaml").read_text())["grounding"]["bootstrap"])
    broken = yaml.safe_load((REPO / "config.yaml").read_text())
    broken["datasets"]["shapes"]["n_train"] = "10k"
    (work / "broken.yaml").write_text(yaml.safe_dump(broken))
    result = _run([installed["python"], "-c", check, "broken.yaml"], cwd=work, env=installed["env"], ok=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "broken.yaml: datasets.shapes.n_train: expected integer, got '10k'"


def test_report_renders_with_the_packaged_templates_and_published_numbers(installed):
    """No --reported, no --template-dir: the page is the golden page of tests/test_report.py, byte for byte (apart
    from time, commit and machine), so the packaged reported.yaml and templates are the ones the workflow uses."""
    run_dir = installed["work"] / "run"
    run_dir.mkdir()
    run = build_run(run_dir)
    env, clipxai = installed["env"], installed["clipxai"]
    _run([clipxai, "table-grounding", "--summaries", *run["summaries"], "--entries", *run["entries"],
          "--out-csv", "results/tables/grounding.csv", "--out-md", "results/tables/grounding.md"], cwd=run_dir, env=env)
    result = _run([clipxai, "report", "--config-json", json.dumps(CONFIG), "--tables", *run["tables"],
                   "--figures", *run["figures"], "--inputs", *run["inputs"], "--checksum-dirs", *run["checksum_dirs"],
                   "--benchmarks-dir", "benchmarks", "--out-dir", "results/report"], cwd=run_dir, env=env)
    assert f"from {installed['venv']}" in result.stderr  # the log's first line: which clipxai ran
    html = (run_dir / "results" / "report" / "index.html").read_text(encoding="utf-8")
    assert "published 0.4917" in " ".join(html.split())  # CLIP T2I, from the packaged reported.yaml
    assert normalised(html) == GOLDEN.read_text(encoding="utf-8")
