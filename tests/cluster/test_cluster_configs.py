"""Cluster launcher configs and KubeRay manifests: valid, sized by the planner, naming scripts that exist."""

from __future__ import annotations

import ast
import copy
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from perk_ray.plan import estimate_memory, resolve_architecture
from perk_ray.plan.__main__ import parse
from perk_ray.plan.gpus import evaluate, get_gpu

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
LAUNCHERS = sorted(CLUSTER.glob("*.yaml"))
MANIFESTS = sorted((CLUSTER / "kuberay").glob("*.yaml"))
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
GIB = 2**30


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _quantity_bytes(text: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    number, unit = re.fullmatch(r"([\d.]+)([A-Za-z]*)", str(text)).groups()
    return float(number) * units.get(unit, 1)


def _planned(note: str):
    """The planner's option for a ``perk-ray/plan`` note (planner command-line arguments naming one GPU)."""
    inputs = parse(shlex.split(note))
    arch = resolve_architecture(inputs.cfg.model)
    return inputs.cfg, evaluate(inputs.cfg, arch, get_gpu(inputs.gpu), inputs.headroom)


def test_there_are_launchers_and_manifests():
    assert {p.name for p in LAUNCHERS} >= {"aws-meta-train.yaml", "gcp-meta-train.yaml"}
    assert {_load(p)["kind"] for p in MANIFESTS} == {"RayCluster", "RayJob", "RayService"}


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_launcher_validates_against_the_autoscaler_schema(path):
    config = _load(path)
    jsonschema.validate(config, SCHEMA)
    validate_config(prepare_config(copy.deepcopy(config)))  # what `ray up` runs before touching the cloud
    assert config["available_node_types"][config["head_node_type"]]["resources"].get("CPU") == 0
    assert 0 < config["idle_timeout_minutes"] and config["max_workers"] >= 1


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_launcher_worker_types_are_sized_by_the_planner(path):
    config = _load(path)
    cloud = config["provider"]["type"]
    notes = config["metadata"]["perk-ray/plan"]
    assert set(notes) == {n for n in config["available_node_types"] if n != config["head_node_type"]}
    for node_type, note in notes.items():
        cfg, option = _planned(note)
        spec = config["available_node_types"][node_type]
        instance = spec["node_config"].get("InstanceType") or spec["node_config"].get("machineType")
        assert option.fits, (node_type, note)
        assert instance == getattr(option.gpu, cloud), (node_type, instance, option.gpu)
        assert spec["resources"]["GPU"] >= cfg.train.num_workers * cfg.train.gpus_per_worker
        assert spec["resources"]["CPU"] >= cfg.train.num_workers * cfg.train.cpus_per_worker
        assert 0 == spec["min_workers"] < spec["max_workers"]


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_launcher_installs_the_project(path):
    config = _load(path)
    commands = " && ".join(config["setup_commands"])
    assert "pip install -q torch==2.13.0" in commands and "-e ~/perk-ray" in commands
    assert f"ray[default,train,tune,serve]=={ray.__version__}" in commands
    assert config["file_mounts"]["~/perk-ray"] == "."
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)


def _cluster_specs(manifest: dict) -> list[dict]:
    spec = manifest["spec"]
    return [spec.get("rayClusterSpec") or spec.get("rayClusterConfig") or spec]


def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_has_the_fields_kuberay_requires(path):
    manifest = _load(path)
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] in {"RayCluster", "RayJob", "RayService"}
    assert manifest["metadata"]["name"]
    for cluster in _cluster_specs(manifest):
        assert cluster["enableInTreeAutoscaling"] is True
        head = cluster["headGroupSpec"]
        assert isinstance(head["rayStartParams"], dict)
        groups = cluster["workerGroupSpecs"]
        assert groups
        for group in [head, *groups]:
            for container in _containers(group["template"]):
                assert container["image"] and container["name"]
                assert container["resources"]["limits"] == container["resources"]["requests"]
        for group in groups:
            assert group["groupName"] and isinstance(group["rayStartParams"], dict)
            assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
            assert group["maxReplicas"] > group["minReplicas"]  # room to autoscale


def _planned_groups():
    for path in MANIFESTS:
        for cluster in _cluster_specs(_load(path)):
            for group in cluster["workerGroupSpecs"]:
                note = group["template"].get("metadata", {}).get("annotations", {}).get("perk-ray.io/plan")
                if note:
                    yield pytest.param(group, note, id=f"{path.stem}-{group['groupName']}")


@pytest.mark.parametrize("group, note", list(_planned_groups()))
def test_gpu_worker_groups_match_the_planner(group, note):
    cfg, option = _planned(note)
    assert option.fits, note
    limits = _containers(group["template"])[0]["resources"]["limits"]
    gpus = int(limits["nvidia.com/gpu"])
    assert gpus == cfg.train.num_workers  # one pod holds the whole job's workers
    assert group["template"]["spec"]["nodeSelector"]["cloud.google.com/gke-accelerator"] == option.gpu.gke
    per_device = estimate_memory(cfg, resolve_architecture(cfg.model)).total
    assert _quantity_bytes(limits["memory"]) >= gpus * per_device
    assert float(limits["cpu"]) >= gpus * cfg.train.cpus_per_worker


def test_every_gpu_worker_group_carries_a_plan():
    gpu_groups = [g["groupName"] for p in MANIFESTS for c in _cluster_specs(_load(p)) for g in c["workerGroupSpecs"]
                  if "nvidia.com/gpu" in _containers(g["template"])[0]["resources"]["limits"]]
    assert len(gpu_groups) == len(list(_planned_groups())) >= 3


def test_rayjob_runs_the_meta_training_script():
    job = _load(CLUSTER / "kuberay" / "rayjob-meta-train-7b.yaml")
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:4] == ["python", "jobs/meta_train.py", "--preset", "qwen2.5-7b"]
    assert yaml.safe_load(job["spec"]["runtimeEnvYAML"])["working_dir"] == "/app"
    strategy, workers = argv[argv.index("--strategy") + 1], int(argv[argv.index("--workers") + 1])
    note = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["metadata"]["annotations"]
    assert f"train.strategy={strategy} train.num_workers={workers}" in note["perk-ray.io/plan"]


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))} | {
        t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


def test_rayservice_serves_the_app_with_autoscaling():
    service = _load(CLUSTER / "kuberay" / "rayservice.yaml")
    serve = yaml.safe_load(service["spec"]["serveConfigV2"])
    (app,) = serve["applications"]
    module, attr = app["import_path"].split(":")
    assert app["import_path"] == "serving.app:perk"
    assert attr in _defined_names(ROOT / Path(*module.split(".")).with_suffix(".py"))
    deployments = {d["name"]: d for d in app["deployments"]}
    defined = _defined_names(ROOT / "serving" / "deployments.py")
    assert set(deployments) <= defined, set(deployments) - defined
    scaling = deployments["Encoder"]["autoscaling_config"]
    assert 1 <= scaling["min_replicas"] < scaling["max_replicas"]
    workers = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    pod_cpus = float(_containers(workers["template"])[0]["resources"]["limits"]["cpu"])
    replica_cpus = max(d["ray_actor_options"]["num_cpus"] for d in deployments.values())
    assert workers["maxReplicas"] * pod_cpus >= scaling["max_replicas"] * replica_cpus


def test_commands_name_files_that_exist():
    text = "\n".join(p.read_text() for p in [*LAUNCHERS, *MANIFESTS, CLUSTER / "README.md", CLUSTER / "Dockerfile"])
    scripts = set(re.findall(r"python3? (?:-m \S+ )?((?:jobs|serving|cluster)/\w+\.py)", text))
    assert {"jobs/meta_train.py", "cluster/planner_validation.py"} <= scripts
    assert all((ROOT / s).is_file() for s in scripts), [s for s in scripts if not (ROOT / s).is_file()]
    copied = re.findall(r"^COPY (\S+) ", (CLUSTER / "Dockerfile").read_text(), flags=re.M)
    assert {"perk_ray", "jobs", "serving"} <= set(copied) and all((ROOT / c).exists() for c in copied)
