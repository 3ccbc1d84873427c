"""deploy/kubernetes/ as the Flink Kubernetes Operator reads it: valid against its CRD, and naming what the image holds.

No Kubernetes runs here. The FlinkDeployment is validated against the
operator's own schema (tests/fixtures/flink-kubernetes-operator/README.md says
where it comes from), including fields the API server would prune without a
word, and every path it names is checked against the Dockerfile and the
installed Flink distribution.
"""

import copy
import importlib.util
import pathlib
import subprocess

import jsonschema
import pytest
import yaml

from jobs.cli.parser import build_parser, settings_from_args
from tests.support.models import ROOT
from tests.test_deployment import ENTRYPOINT, SERVICES, _copied, _dockerfile_env, _entrypoint_env, _instructions

CRD = yaml.safe_load((ROOT / "tests/fixtures/flink-kubernetes-operator/flinkdeployments.flink.apache.org-v1.yml").read_text())
MANIFEST = ROOT / "deploy" / "kubernetes" / "riverflink.yaml"
RESOURCES = list(yaml.safe_load_all(MANIFEST.read_text()))
FLINK_HOME = pathlib.Path(importlib.util.find_spec("pyflink").origin).parent


def _resource(kind: str) -> dict:
    (found,) = [resource for resource in RESOURCES if resource["kind"] == kind]
    return found


DEPLOYMENT = _resource("FlinkDeployment")
SPEC = DEPLOYMENT["spec"]
CONFIG = SPEC["flinkConfiguration"]


def _served_schema(api_version: str) -> dict:
    group, version = api_version.split("/")
    assert group == CRD["spec"]["group"], api_version
    (served,) = [v for v in CRD["spec"]["versions"] if v["name"] == version and v["served"]]
    return served["schema"]["openAPIV3Schema"]


def _pruned(value, schema: dict, path: str = "") -> list[str]:
    """Fields of ``value`` the API server would drop without a word: not in the structural schema."""
    if isinstance(value, list) and "items" in schema:
        return [field for i, item in enumerate(value) for field in _pruned(item, schema["items"], f"{path}[{i}]")]
    if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    properties = schema.get("properties")
    if properties is None:  # a map: every value follows one schema, or any goes
        extra = schema.get("additionalProperties")
        if not isinstance(extra, dict):
            return []
        return [field for key, item in value.items() for field in _pruned(item, extra, f"{path}.{key}")]
    found = []
    for key, item in value.items():
        if key in properties:
            found += _pruned(item, properties[key], f"{path}.{key}")
        else:
            found.append(f"{path}.{key}")
    return found


def _problems(deployment: dict) -> list[str]:
    schema = _served_schema(deployment["apiVersion"])
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(deployment)]
    return errors + [f"{field}: not in the CRD, pruned" for field in _pruned(deployment["spec"], schema["properties"]["spec"], "spec")]


@pytest.mark.unit
def test_the_flink_deployment_is_valid_against_the_operators_crd():
    assert DEPLOYMENT["apiVersion"] == "flink.apache.org/v1beta1"
    assert _problems(DEPLOYMENT) == []
    assert SPEC["flinkVersion"] == "v2_2"  # the Flink of the apache-flink pin
    assert FLINK_HOME.joinpath("lib/flink-dist-2.2.1.jar").exists()


@pytest.mark.unit
@pytest.mark.parametrize("mistake, expected", [
    (lambda spec: spec.update(flinkVersion="v2_9"), "'v2_9' is not one of"),
    (lambda spec: spec["job"].update(upgradeMode="rolling"), "'rolling' is not one of"),
    (lambda spec: spec["taskManager"].update(resources={"cpu": 2}), "spec.taskManager.resources: not in the CRD"),
    (lambda spec: spec["taskManager"]["podTemplate"]["spec"]["containers"][0].update(envs=[]), "envs: not in the CRD"),
])
def test_the_validation_catches_what_the_operator_would_refuse_or_drop(mistake, expected):
    wrong = copy.deepcopy(DEPLOYMENT)
    mistake(wrong["spec"])
    assert any(expected in problem for problem in _problems(wrong)), _problems(wrong)


@pytest.mark.unit
def test_the_deployment_runs_the_projects_image_with_paths_that_exist_in_it():
    env = _dockerfile_env()
    assert SPEC["image"] == SERVICES["jobmanager"]["image"]  # what `docker build -t riverflink:local .` makes
    assert _instructions("FROM")[0].startswith("python:")  # whose python3 is /usr/local/bin/python3
    assert CONFIG["python.executable"] == CONFIG["python.client.executable"] == "/usr/local/bin/python3"

    workdir = _instructions("WORKDIR")[0]
    entry = pathlib.PurePosixPath(CONFIG["kubernetes.entry.path"])
    assert entry.is_relative_to(workdir) and entry.relative_to(workdir).parts[0] in _copied()
    assert (ROOT / entry.relative_to(workdir)).is_file()
    assert _instructions("ENTRYPOINT")[0] == f'["bash", "{entry}"]'

    flink_home = pathlib.PurePosixPath(env["FLINK_HOME"])  # the wheel's Flink, as in the image
    jar = pathlib.PurePosixPath(SPEC["job"]["jarURI"].removeprefix("local://"))
    assert jar.parent == flink_home / "opt" and (FLINK_HOME / "opt" / jar.name).is_file()
    assert SPEC["job"]["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    (tm_container,) = SPEC["taskManager"]["podTemplate"]["spec"]["containers"]
    (pythonpath,) = [variable["value"] for variable in tm_container["env"] if variable["name"] == "PYTHONPATH"]
    assert pythonpath == str(flink_home.parent / "jobs" / "runtime" / "worker_boot")
    assert (ROOT / "jobs" / "runtime" / "worker_boot" / "sitecustomize.py").is_file()


@pytest.mark.unit
def test_the_job_is_riverflinks_command_line_with_state_on_the_volume():
    args = SPEC["job"]["args"]
    assert args[:2] == ["-pym", "jobs.cli"]
    parsed = build_parser().parse_args(args[2:])
    settings = settings_from_args(parsed)
    workdir = _instructions("WORKDIR")[0]
    model_file = pathlib.PurePosixPath(settings.model.split(":")[0])
    assert (ROOT / model_file.relative_to(workdir)).is_file() and model_file.relative_to(workdir).parts[0] in _copied()
    assert settings.kafka.topics == ("events",) and settings.state_backend == CONFIG["state.backend.type"]

    (mount,) = [m["mountPath"] for c in SPEC["podTemplate"]["spec"]["containers"] for m in c["volumeMounts"]]
    for directory in (settings.checkpoint_dir, CONFIG["execution.checkpointing.dir"],
                      CONFIG["execution.checkpointing.savepoint-dir"]):
        assert pathlib.PurePosixPath(directory.removeprefix("file://")).is_relative_to(mount), directory
    assert CONFIG["execution.checkpointing.dir"] == f"file://{settings.checkpoint_dir}"
    (claim,) = [v["persistentVolumeClaim"]["claimName"] for v in SPEC["podTemplate"]["spec"]["volumes"]]
    assert _resource("PersistentVolumeClaim")["metadata"]["name"] == claim
    assert SPEC["job"]["upgradeMode"] == "savepoint"  # an upgrade resumes from a savepoint on that volume


@pytest.mark.minicluster  # Flink's scripts run Java
def test_the_entry_point_runs_the_operators_pod_commands_with_the_mounted_configuration(tmp_path):
    env = _entrypoint_env(tmp_path, "", "pod")
    conf = tmp_path / "pod" / "conf"
    conf.mkdir(parents=True)
    mounted = "jobmanager.rpc.address: riverflink\njobmanager.memory.process.size: 1600m\n"  # as the operator mounts it
    (conf / "config.yaml").write_text(mounted)
    # The operator's command with no entry point name: Flink's own script runs and refuses it, quickly.
    done = subprocess.run(["bash", str(ENTRYPOINT), "bash", "-c", "kubernetes-jobmanager.sh"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Usage: flink-console.sh" in done.stdout + done.stderr, done.stdout + done.stderr
    assert [p.name for p in conf.iterdir()] == ["config.yaml"], "the mounted configuration was written to"
    assert (conf / "config.yaml").read_text() == mounted
    assert (tmp_path / "pod" / "lib" / "flink-python-2.2.1.jar").exists()
