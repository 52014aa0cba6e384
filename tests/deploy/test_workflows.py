"""The GitHub workflows, checked offline: the workflow schema that check-jsonschema vendors,
and the properties the pipeline promises (every suite in CI; one image, scanned, promoted by
digest through dev to an approved prod, after its migration, with a smoke test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def commands(workflow: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", []))


def uses(workflow: dict[str, Any]) -> list[str]:
    return [step["uses"] for job in workflow["jobs"].values() for step in job.get("steps", []) if "uses" in step]


def test_every_workflow_validates_against_the_github_workflow_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) >= 2
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                              "vendor.github-workflows", *files], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_ci_runs_every_check_of_the_ci_script() -> None:
    ci = load("ci.yml")
    run = commands(ci)
    for needed in ("ruff check", "mypy", ".ci/check-deploy", "pytest tests/deploy", "pytest tests/unit tests/contract",
                   "pytest tests/prometheus"):
        assert needed in run, f"CI does not run {needed}"
    matrix = ci["jobs"]["suites"]["strategy"]["matrix"]
    assert set(matrix["suite"]) == {"integration", "e2e", "faults", "security"}
    assert any("15" in p for p in matrix["postgres"]) and any("18" in p for p in matrix["postgres"])
    check_deploy = (REPO / ".ci" / "check-deploy").read_text()
    for tool in ("--framework terraform", "--framework github_actions", "--framework dockerfile",
                 "vendor.github-workflows"):
        assert tool in check_deploy
    for suite in matrix["suite"]:
        assert (REPO / "tests" / suite).is_dir(), suite


def test_every_action_is_pinned_to_a_release_and_tokens_are_least_privilege() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        workflow = load(path.name)
        assert workflow["permissions"] == {"contents": "read"}, path.name
        for action in uses(workflow):
            assert "@" in action and not action.endswith(("@main", "@master", "@latest")), action
        for name, job in workflow["jobs"].items():
            if "id-token" in job.get("permissions", {}):  # only to log in to Azure, or to let deploy.yml do so
                logs_in = any("azure/login" in s.get("uses", "") for s in job.get("steps", []))
                assert logs_in or job.get("uses") == "./.github/workflows/deploy.yml", (path.name, name)


def test_the_jobs_calling_deploy_grant_what_it_asks_for() -> None:
    """A called workflow cannot raise its caller's permissions: GitHub rejects the run."""
    deploy = load("deploy.yml")
    asked = {k: v for job in deploy["jobs"].values() for k, v in job.get("permissions", {}).items()}
    for name, job in load("cd.yml")["jobs"].items():
        if job.get("uses") == "./.github/workflows/deploy.yml":
            granted = job.get("permissions", load("cd.yml")["permissions"])
            for scope, level in asked.items():
                assert granted.get(scope) == level, (name, scope)


def test_cd_builds_once_scans_before_pushing_and_promotes_that_digest_through_dev_to_prod() -> None:
    cd = load("cd.yml")
    jobs = cd["jobs"]
    builds = [n for n, j in jobs.items() for s in j.get("steps", []) if "docker/build-push-action" in s.get("uses", "")]
    assert builds == ["image"], builds
    steps = jobs["image"]["steps"]
    names = [s.get("uses", "") + s.get("name", "") for s in steps]
    scan = next(i for i, n in enumerate(names) if "trivy" in n.lower())
    push = next(i for i, s in enumerate(steps) if "docker push" in s.get("run", ""))
    assert scan < push
    assert steps[scan]["with"]["exit-code"] == "1"
    assert jobs["image"]["needs"] == "ci"
    for env, needs in (("dev", ["image"]), ("prod", ["dev", "image"])):
        job = jobs[env]
        assert job["uses"] == "./.github/workflows/deploy.yml"
        assert job["with"] == {"environment": env, "image": "${{ needs.image.outputs.image }}"}
        assert sorted([job["needs"]] if isinstance(job["needs"], str) else job["needs"]) == needs


def test_deploy_migrates_first_then_moves_the_apps_then_smoke_tests_with_a_token() -> None:
    deploy = load("deploy.yml")
    (job,) = deploy["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    runs = [s.get("run", "") for s in job["steps"]]
    migrate = next(i for i, r in enumerate(runs) if "job start" in r)
    apps = next(i for i, r in enumerate(runs) if "containerapp update" in r)
    smoke = next(i for i, r in enumerate(runs) if "/readyz" in r)
    assert migrate < apps < smoke
    assert "Authorization: Bearer" in runs[smoke] and "add-mask" in runs[smoke]
    assert "latestReadyRevisionName" in runs[apps] and '"404"' in runs[smoke]
    assert '--image "$IMAGE"' in runs[apps] and job["env"]["IMAGE"] == "${{ inputs.image }}"


def test_the_image_workflow_builds_the_repository_dockerfile() -> None:
    cd = load("cd.yml")
    build = next(s for s in cd["jobs"]["image"]["steps"] if "docker/build-push-action" in s.get("uses", ""))
    assert build["with"]["context"] == "."
    assert Path(REPO / "Dockerfile").is_file()
