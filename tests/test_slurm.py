"""The workflow on a real SLURM cluster through its profiles (issue 6).

A one-node cluster (tests/slurm/local_slurm.py: munged, slurmctld, slurmd on 127.0.0.1, partitions `cpu` and
`gpu` with fake GPUs) runs the embedded-default DAG (its grounding branch) on a tiny configuration through
`--profile profiles/slurm --profile tests/slurm/profile`. Checked: every non-local job went to the partition its
`gpu` resource calls for and was given the threads, memory, time and GPUs its rule declares; localrules stayed on
the head node; the result tables equal a local run's byte for byte; the step that runs a GPU job's command sees
the GPU SLURM gave it (CUDA_VISIBLE_DEVICES, what `device: auto` reads); a job that fails on the cluster is retried
as the profile says, reported, and makes the run exit non-zero.

When it runs: only where asked for, because it needs root and the `slurm-wlm` and `munge` packages and takes
minutes. Asked for = selected explicitly (`pytest -m slurm`, or this file named on the command line) or `CI=true`
in the environment. Then a missing package is a FAILURE naming the apt-get line, never a skip. In any other run
(a developer's plain `pytest`) the test is skipped with that reason, shown in the `-ra` summary.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO / "profiles" / "slurm"
TEST_PROFILE = REPO / "tests" / "slurm" / "profile"
TINY_CONFIG = REPO / "tests" / "data" / "config_tiny.yaml"
GPU_PROBE = REPO / "tests" / "slurm" / "gpu_probe.smk"
# Wall-clock bounds (SIGKILL): a run that hangs (e.g. a lost status query) fails the test instead of CI.
RUN_TIMEOUT_S = 600
FAILING_RUN_TIMEOUT_S = 300
# A start_layer no tiny model has: the job's `clipxai ground` rejects it on the compute node (exit status 2).
BROKEN_METHOD = ("chefer2021-broken", {"method": "chefer2021", "start_layer": 99})
# Configuration sections of the workflow's branches beside grounding (see tiny_slurm_config).
OPTIONAL_BRANCHES = ("heads", "segmentation", "zeroshot")

pytestmark = pytest.mark.slurm


def _load_harness():
    spec = importlib.util.spec_from_file_location("local_slurm", REPO / "tests" / "slurm" / "local_slurm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


local_slurm = _load_harness()


def slurm_test_requested(config: pytest.Config) -> bool:
    """True when this run asked for the SLURM test: `-m` naming `slurm`, this file named, or CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        return True
    markexpr = config.getoption("markexpr") or ""
    if re.search(r"\bslurm\b", markexpr) and not re.search(r"\bnot\s+slurm\b", markexpr):
        return True
    return any(Path(arg.split("::")[0]).name == Path(__file__).name for arg in config.args)


# ---- what a Snakemake run printed ----
@dataclass
class SnakemakeJob:
    """One job as Snakemake announced it: rule, its resources, and the SLURM job IDs of its attempts."""

    rule: str
    local: bool
    wildcards: str = ""
    threads: int = 1
    resources: dict[str, str] = field(default_factory=dict)
    slurm_ids: list[int] = field(default_factory=list)


@dataclass
class Run:
    returncode: int
    output: str
    workdir: Path
    seconds: float

    @property
    def run_id(self) -> str:
        """The SLURM run ID: the plugin names every SLURM job of the run after it."""
        match = re.search(r"SLURM run ID: (\S+)", self.output)
        assert match, f"no SLURM run ID in the output:\n{self.output[-3000:]}"
        return match.group(1)

    def jobs(self) -> dict[int, SnakemakeJob]:
        """Snakemake jobs by job ID, from the `rule X:` blocks and `Job N has been submitted ...` lines."""
        jobs: dict[int, SnakemakeJob] = {}
        current = None
        for line in self.output.splitlines():
            header = re.fullmatch(r"(local)?rule (\w+):", line.strip())
            if header:
                current = SnakemakeJob(rule=header.group(2), local=bool(header.group(1)))
                continue
            if current is not None:
                key, _, value = line.strip().partition(": ")
                if key == "jobid":
                    # A retried job is announced again under its job ID: keep the SLURM IDs of earlier attempts.
                    current = jobs.setdefault(int(value), current)
                elif key == "wildcards":
                    current.wildcards = value
                elif key == "threads":
                    current.threads = int(value)
                elif key == "resources":
                    current.resources = dict(item.split("=", 1) for item in value.split(", ") if "=" in item)
                elif not line.startswith(" "):
                    current = None
            submitted = re.match(r"Job (\d+) has been submitted with SLURM jobid (\d+)", line)
            if submitted:
                jobs[int(submitted.group(1))].slurm_ids.append(int(submitted.group(2)))
        return jobs


def tiny_slurm_config(path: Path, extra_methods: dict | None = None) -> Path:
    """The end-to-end test's tiny configuration, cut to its grounding branch with one method, `device: auto`.

    `device: auto` makes GPU rules ask for a GPU (rules/common.smk, gpu_request). The optional branches (heads,
    segmentation, zero-shot classification) only add more jobs of kinds this test already covers, GPU ones routed
    by the same gpu_request: dropping them, one attribution method and one example per figure keep the DAG at
    data, training, two attribution shards, scores, figures, tables and the report (minutes, not a quarter hour).
    """
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["device"] = "auto"
    for branch in OPTIONAL_BRANCHES:
        config.pop(branch, None)
    grounding = config["grounding"]
    used = set(grounding["datasets"]) | {config["models"][m].get("train_on") for m in grounding["models"]}
    config["datasets"] = {name: spec for name, spec in config["datasets"].items() if name in used}
    methods = grounding["methods"]
    label = next(label for label, params in methods.items() if (params or {}).get("method", label) != "random")
    grounding["methods"] = {label: methods[label], **(extra_methods or {})}
    config.setdefault("report", {}).update(qualitative=1, saliency_images=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(timeout_s: int, config: Path, *options: str) -> list[str]:
    # --snakefile from outside the repository: the working directory holds only this run's files, and Snakefile's
    # `configfile: "config.yaml"` finds none there, so the run's configuration is exactly `config`.
    return ["timeout", "-s", "KILL", str(timeout_s), sys.executable, "-m", "snakemake",
            "--snakefile", str(REPO / "Snakefile"), "--configfile", str(config), *options]


def run_snakemake(workdir: Path, command: list[str], env: dict[str, str]) -> Run:
    start = time.monotonic()
    result = subprocess.run(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    return Run(result.returncode, result.stdout, workdir, time.monotonic() - start)


def result_tables(workdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(workdir)): p.read_bytes() for p in sorted((workdir / "results").rglob("*.csv"))}


# ---- fixtures: one cluster, one local reference run, one SLURM run, one failing SLURM run ----
@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    if not slurm_test_requested(request.config):
        pytest.skip("real-SLURM test runs only when asked for: `pytest -m slurm`, this file named, or CI=true")
    missing = local_slurm.missing_programs()
    if missing:
        pytest.fail(f"SLURM test selected but SLURM is not installed (missing: {', '.join(missing)}); "
                    f"install with: {local_slurm.APT_INSTALL}", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("SLURM test selected but not running as root: slurmd must start jobs as their user",
                    pytrace=False)
    slurm = local_slurm.LocalSlurm(tmp_path_factory.mktemp("cluster"))
    request.addfinalizer(slurm.stop)
    try:
        slurm.start()
    except local_slurm.SlurmUnavailable as err:
        pytest.fail(f"could not start the local SLURM cluster: {err}", pytrace=False)
    return slurm


def start_snakemake(workdir: Path, command: list[str], env: dict[str, str]):
    """Start a Snakemake run in the background; return (wait: () -> Run, stop: () -> None)."""
    log = (workdir / "snakemake.out").open("w")
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    start = time.monotonic()

    def wait() -> Run:
        returncode = process.wait()
        log.flush()
        return Run(returncode, (workdir / "snakemake.out").read_text(), workdir, time.monotonic() - start)

    def stop() -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # our own session: the timeout wrapper and Snakemake under it
            process.wait()
        log.close()

    return wait, stop


@pytest.fixture(scope="module")
def reference_run(cluster, tmp_path_factory):
    """A local run of the same DAG, started in the background: it overlaps the SLURM run's queueing waits."""
    workdir = tmp_path_factory.mktemp("local")
    config = tiny_slurm_config(workdir / "run-config" / "config.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    wait, stop = start_snakemake(workdir, snakemake_command(RUN_TIMEOUT_S, config, "--cores", "2"), env)
    yield wait
    stop()


@pytest.fixture(scope="module")
def gpu_probe(cluster, tmp_path_factory):
    """One GPU job (tests/slurm/gpu_probe.smk) through the same profiles, in the background."""
    workdir = tmp_path_factory.mktemp("probe")
    command = ["timeout", "-s", "KILL", str(FAILING_RUN_TIMEOUT_S), sys.executable, "-m", "snakemake",
               "--snakefile", str(GPU_PROBE), "--profile", str(SLURM_PROFILE), "--profile", str(TEST_PROFILE)]
    wait, stop = start_snakemake(workdir, command, cluster.env())
    yield wait
    stop()


@pytest.fixture(scope="module")
def slurm_run(cluster, reference_run, gpu_probe, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm")
    config = tiny_slurm_config(workdir / "run-config" / "config.yaml")
    command = snakemake_command(RUN_TIMEOUT_S, config, "--profile", str(SLURM_PROFILE), "--profile",
                                str(TEST_PROFILE))
    run = run_snakemake(workdir, command, cluster.env())
    print(f"SLURM run: {run.seconds:.0f} s, exit {run.returncode}")
    return run, cluster.jobs()


@pytest.fixture(scope="module")
def failing_run(cluster, slurm_run):
    """The SLURM run's directory again, with one more method whose attribution jobs fail on the node."""
    workdir = slurm_run[0].workdir
    label, params = BROKEN_METHOD
    config = tiny_slurm_config(workdir / "run-config" / "config-broken.yaml", {label: params})
    command = snakemake_command(FAILING_RUN_TIMEOUT_S, config, "--profile", str(SLURM_PROFILE), "--profile",
                                str(TEST_PROFILE))
    run = run_snakemake(workdir, command, cluster.env())
    print(f"failing SLURM run: {run.seconds:.0f} s, exit {run.returncode}")
    return run, cluster.jobs()


# ---- tests ----
def test_jobs_go_to_partitions_with_the_resources_their_rules_declare(slurm_run):
    run, records = slurm_run
    assert run.returncode == 0, f"SLURM run failed ({run.returncode}):\n{run.output[-5000:]}"
    jobs = run.jobs()
    submitted = [job for job in jobs.values() if not job.local]
    assert submitted and all(len(job.slurm_ids) == 1 for job in submitted), \
        [(job.rule, job.slurm_ids) for job in submitted]
    for job in submitted:
        record = records[job.slurm_ids[0]]
        gpus = int(job.resources.get("gpu", 0))
        assert record.name == run.run_id
        assert record.rule == job.rule
        assert record.state == "COMPLETED", record
        assert record.partition == ("gpu" if gpus else "cpu"), (job, record)
        assert record.gpus == gpus, (job, record)
        assert record.cpus == job.threads, (job, record)
        assert record.mem_mb == int(job.resources["mem_mb"]), (job, record)
        assert record.time_limit_min == int(job.resources["runtime"]), (job, record)
    # The GPU rule asked for its GPU (device: auto) and the CPU rules for none.
    ground = [job for job in submitted if job.rule == "ground"]
    assert ground and all(job.resources.get("gpu") == "1" for job in ground)
    assert any(job.resources.get("gpu", "0") == "0" for job in submitted)
    # Local rules ran on the head node: no SLURM job of this run carries their name.
    local_rules = {job.rule for job in jobs.values() if job.local} - {"all"}
    assert local_rules, "expected localrules (tables, report) in the DAG"
    cluster_rules = {record.rule for record in records.values() if record.name == run.run_id}
    assert not local_rules & cluster_rules


def test_slurm_results_equal_a_local_run_byte_for_byte(slurm_run, reference_run):
    run, _ = slurm_run
    assert run.returncode == 0, f"SLURM run failed ({run.returncode}):\n{run.output[-5000:]}"
    local = reference_run()
    print(f"local run: {local.seconds:.0f} s, exit {local.returncode}")
    assert local.returncode == 0, f"local run failed ({local.returncode}):\n{local.output[-5000:]}"
    on_slurm, on_host = result_tables(run.workdir), result_tables(local.workdir)
    assert "results/tables/grounding.csv" in on_host
    assert sorted(on_slurm) == sorted(on_host)
    differing = [name for name in on_host if on_slurm[name] != on_host[name]]
    assert not differing, f"tables differ between SLURM and local runs: {differing}"


def test_a_gpu_job_step_sees_the_gpu_it_was_given(gpu_probe, cluster):
    run = gpu_probe()
    assert run.returncode == 0, f"GPU probe failed ({run.returncode}):\n{run.output[-5000:]}"
    (job,) = [job for job in run.jobs().values() if not job.local]
    record = cluster.jobs()[job.slurm_ids[0]]
    assert (record.partition, record.gpus) == ("gpu", 1), record
    # The step running the command (srun inside the batch job) sees one of the node's GPUs, by its index.
    seen = (run.workdir / "gpu_probe.txt").read_text().strip()
    assert seen in {f"CUDA_VISIBLE_DEVICES={index}" for index in range(len(local_slurm.FAKE_GPU_FILES))}, seen


def test_a_failing_job_is_retried_reported_and_fails_the_run(failing_run):
    run, records = failing_run
    assert run.returncode not in (0, 124, 137, -9), f"exit {run.returncode}:\n{run.output[-5000:]}"
    label = BROKEN_METHOD[0]
    assert re.search(r"Error in rule ground:", run.output), run.output[-5000:]
    jobs = [job for job in run.jobs().values() if not job.local and job.slurm_ids]
    # Only the attribution jobs (every method of a shard, the broken one among them) were left to run; each was
    # tried 1 + retries times.
    retries = int(yaml.safe_load((TEST_PROFILE / "config.yaml").read_text())["retries"])
    assert jobs and all(job.rule == "ground" for job in jobs), jobs
    for job in jobs:
        assert len(job.slurm_ids) == 1 + retries, job
        for slurm_id in job.slurm_ids:
            record = records[slurm_id]
            # The job's exit status is the job-step Snakemake's (1), not clipxai's (2): the logs say why.
            assert record.state == "FAILED" and record.exit_code != "0:0", record
            assert f"SLURM-job '{slurm_id}' failed" in run.output
    logs = list((run.workdir / "logs" / "ground").rglob("*.log"))
    assert logs and all("start_layer" in log.read_text() for log in logs), logs
    assert not list((run.workdir / "results").rglob(f"maps/{label}/*.npz")), "a failed job left an output"
