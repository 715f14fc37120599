"""The example workflow's required check, "perf / merge", read as YAML in both copies (this
repository's and the one ``pytest-tfserving init`` writes). GitHub counts a skipped job as a passing
required check, so every run the workflow starts measures or fails "merge", saying why: a fork's PR,
shards cancelled by a newer run (docs/GATE.md, "Skipped is passing"). The steps that decide it are
shell scripts: they run here, under bash as a GitHub runner runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = (".github/workflows/perf.yml", "pytest_tfserving/scaffold_templates/perf.yml.txt")
# The perf job's condition and the merge job's fork step: each other's negation.
HEAD_REPOSITORY = "github.event.pull_request.head.repo.full_name"
SAME_REPOSITORY = f"github.event_name != 'pull_request' || {HEAD_REPOSITORY} == github.repository"
FORK = f"github.event_name == 'pull_request' && {HEAD_REPOSITORY} != github.repository"
GATE_RUN_TYPES = {"opened", "synchronize", "reopened"}
CLEAN_ENV = {"PATH": os.environ["PATH"], "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.fixture(params=WORKFLOWS)
def workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((REPO / request.param).read_text())
    loaded["on"] = loaded.pop(True)  # YAML 1.1 reads the key `on` as true
    return loaded


def run_step(step: dict[str, Any], env: dict[str, str],
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A step's ``run`` script under the shell GitHub runs it with, and no git identity configured."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env={**CLEAN_ENV, **env}, cwd=cwd, capture_output=True, text=True, check=False, timeout=60,
    )


def merge_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"]["merge"]["steps"]
    return steps


def test_every_run_it_starts_is_a_gate_run(workflow: dict[str, Any]) -> None:
    """No trigger starts a run that skips the perf job but for a fork's PR: not "labeled" (a run for
    any label), nor any other pull_request activity, nor pull_request_target."""
    assert set(workflow["on"]) == {"pull_request", "workflow_dispatch"}
    assert set(workflow["on"]["pull_request"]["types"]) <= GATE_RUN_TYPES
    assert set(workflow["on"]["workflow_dispatch"]["inputs"]) == {"record", "allow_gate_changes", "base"}
    assert " ".join(workflow["jobs"]["perf"]["if"].split()) == SAME_REPOSITORY


def test_merge_is_never_skipped(workflow: dict[str, Any]) -> None:
    """`always()`: not `!cancelled()` (skipped in a cancelled run), nor a condition on the shards'
    result; the check's name is "merge" but in a recording, which is no gate run."""
    merge = workflow["jobs"]["merge"]
    assert merge["needs"] == "perf"
    assert merge["if"] == "always()"
    assert merge["name"] == "${{ inputs.record && 'merge (a recording, not a gate run)' || 'merge' }}"
    assert "concurrency" not in merge and "concurrency" not in workflow  # a newer run cancels no merge


def test_a_fork_pr_fails_merge_before_anything_is_checked_out(workflow: dict[str, Any]) -> None:
    steps = merge_steps(workflow)
    assert steps[0]["if"] == FORK
    done = run_step(steps[0], {})
    assert done.returncode == 1
    assert done.stdout == (
        "::error::the perf gate does not run fork PRs on self-hosted runners; a maintainer pushes the"
        " branch to this repository to have it measured\n"
    )
    checkout = next(i for i, step in enumerate(steps) if step.get("uses", "").startswith("actions/checkout"))
    assert checkout == 2  # after the two refusals, which nothing skips but the fork step's failure
    assert "if" not in steps[1]


@pytest.mark.parametrize(("result", "judged"), [
    ("success", True), ("failure", True),  # every shard ran to its end: the merge says what failed
    ("cancelled", False), ("skipped", False), ("", False),
])
def test_shards_that_did_not_run_to_their_end_fail_merge(workflow: dict[str, Any], result: str,
                                                          judged: bool) -> None:
    step = merge_steps(workflow)[1]
    assert step["env"] == {"PERF_SHARDS": "${{ needs.perf.result }}"}
    done = run_step(step, {"PERF_SHARDS": result})
    assert (done.returncode == 0) is judged, done
    assert done.stdout.startswith(f"::error::the perf shards ended '{result}'") is not judged


def test_a_newer_run_cancels_the_shards_of_an_older_one_on_the_same_branch(workflow: dict[str, Any]) -> None:
    """Keyed by branch, so a maintainer's run on a PR's branch and the PR's own runs take turns, and
    by the head repository, so a fork's branch named like ours never joins our group."""
    concurrency = workflow["jobs"]["perf"]["concurrency"]
    assert concurrency == {
        "group": "perf-${{ github.event.pull_request.head.repo.full_name || github.repository }}"
                 "-${{ github.head_ref || github.ref_name }}-shard-${{ matrix.shard }}",
        "cancel-in-progress": True,
    }


def test_gate_changes_are_accepted_by_the_label_or_a_dispatch_input(workflow: dict[str, Any]) -> None:
    assert workflow["env"]["PERF_ALLOW_GATE_CHANGES"] == (
        "${{ (contains(github.event.pull_request.labels.*.name, 'perf-gate-change')"
        " || inputs.allow_gate_changes) && '--allow-gate-changes' || '' }}"
    )
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    assert sum("${{ env.PERF_ALLOW_GATE_CHANGES }}" in run for run in runs) == 2  # perf and merge
    assert not any("--allow-gate-changes" in run for run in runs)


def test_a_dispatched_gate_run_is_judged_like_a_pull_requests_run(workflow: dict[str, Any]) -> None:
    """Against the base branch's baselines with --ab-baseline, unless it records."""
    assert workflow["env"]["PERF_BASE"] == (
        "${{ github.base_ref || inputs.base || github.event.repository.default_branch }}"
    )
    steps = {step.get("name"): step for step in workflow["jobs"]["perf"]["steps"]}
    suite = steps["Perf suite against the base branch's baselines"]["run"]
    assert """${{ !inputs.record && '--baseline-ref="origin/$PERF_BASE" --ab-baseline' || '' }}""" in suite
    assert "${{ inputs.record && '--update-baselines' || '' }}" in suite
    assert steps["Fetch the base branch"]["if"] == "${{ !inputs.record }}"
    merge_in = steps["Merge the base branch in, as a pull request's run does"]
    assert merge_in["if"] == "${{ github.event_name == 'workflow_dispatch' && !inputs.record }}"


def test_the_dispatch_merges_the_base_branch_in_and_fails_on_a_conflict(workflow: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    """A pull_request run checks out the PR merged into its target; a dispatch makes that merge itself."""
    steps = workflow["jobs"]["perf"]["steps"]
    step = next(s for s in steps if s.get("name") == "Merge the base branch in, as a pull request's run does")

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=tmp_path,
                       env=CLEAN_ENV, check=True, capture_output=True)

    def commit(name: str, text: str) -> None:
        (tmp_path / name).write_text(text)
        git("add", name)
        git("commit", "-qm", name)
        git("update-ref", "refs/remotes/origin/main", "main")  # what the "Fetch" step leaves

    git("init", "-q", "-b", "main")
    commit("shared.txt", "base\n")
    git("checkout", "-qb", "pr")
    commit("pr.txt", "the PR\n")
    git("checkout", "-q", "main")
    commit("main.txt", "main moved on\n")
    git("checkout", "-q", "pr")
    done = run_step(step, {"PERF_BASE": "main"}, cwd=tmp_path)
    assert done.returncode == 0, done
    assert (tmp_path / "main.txt").is_file() and (tmp_path / "pr.txt").is_file()

    commit("shared.txt", "the PR's\n")
    git("checkout", "-q", "main")
    commit("shared.txt", "main's\n")
    git("checkout", "-q", "pr")
    done = run_step(step, {"PERF_BASE": "main"}, cwd=tmp_path)
    assert done.returncode != 0 and "CONFLICT" in done.stdout
