"""`cluster export --format mpijob` checked field by field against the Kubeflow MPI Operator's
v2beta1 API as the operator defines it (kubeflow/mpi-operator, pkg/apis/kubeflow/v2beta1/types.go
json tags, default.go, and validation/validation.go's ValidateMPIJob — read at its commit of
2026-07-02 and restated here as data: no Kubernetes is needed or run). What is checked: every key
the export writes is a field of that version (a typo or a v1-only field fails), the operator's
defaulting and validation accept it (Launcher replicas 1, Worker >= 1, slotsPerWorker >= 0,
runPolicy.cleanPodPolicy in None|Running|All, backoffLimit >= 0, restartPolicy Never|OnFailure,
mpiImplementation OpenMPI|Intel|MPICH, sshAuthMountPath set, the worker pods' host names valid
DNS-1035 labels), and the pod templates use only core/v1 container fields we write."""
from __future__ import annotations

import re

import yaml

from conftest import ROOT, cli

LOCAL = ROOT / "examples" / "hosts-local-selftest.yaml"

# types.go json tags (v2beta1; MPIJobSpec, RunPolicy, SchedulingPolicy, ReplicaSpec)
MPIJOB = {"apiVersion", "kind", "metadata", "spec", "status"}
SPEC = {"slotsPerWorker", "runLauncherAsWorker", "runPolicy", "mpiReplicaSpecs",
        "sshAuthMountPath", "launcherCreationPolicy", "mpiImplementation"}
RUN_POLICY = {"cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds",
              "backoffLimit", "schedulingPolicy", "suspend", "managedBy"}
REPLICA_SPEC = {"replicas", "template", "restartPolicy"}
REPLICA_TYPES = {"Launcher", "Worker"}
# validation.go's sets
CLEAN = {"None", "Running", "All"}
IMPL = {"OpenMPI", "Intel", "MPICH"}
RESTART = {"Never", "OnFailure"}
# default.go
DEFAULT_RESTART = {"Launcher": "OnFailure", "Worker": "Never"}
# the core/v1 fields the export may use in a pod template
POD_TEMPLATE = {"metadata", "spec"}
POD_SPEC = {"containers", "volumes", "nodeSelector", "tolerations", "hostNetwork",
            "restartPolicy"}
CONTAINER = {"name", "image", "command", "args", "env", "resources", "volumeMounts",
             "securityContext", "workingDir", "ports"}
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def validate(doc: dict) -> list[str]:
    """The operator's defaulting + ValidateMPIJob, plus unknown-field checks (the API server
    prunes unknown fields of a structural CRD silently: a misspelt field would be lost)."""
    errs = [f"unknown field {k}" for k in set(doc) - MPIJOB]
    if doc.get("apiVersion") != "kubeflow.org/v2beta1" or doc.get("kind") != "MPIJob":
        errs.append("apiVersion/kind")
    spec = doc.get("spec") or {}
    errs += [f"unknown field spec.{k}" for k in set(spec) - SPEC]
    rp = spec.get("runPolicy") or {}
    errs += [f"unknown field spec.runPolicy.{k}" for k in set(rp) - RUN_POLICY]
    reps = spec.get("mpiReplicaSpecs")
    if not reps:
        errs.append("spec.mpiReplicaSpecs: must have replica specs")
        return errs
    errs += [f"spec.mpiReplicaSpecs[{k}]: unknown replica type" for k in set(reps) - REPLICA_TYPES]
    # defaulting (default.go)
    slots = spec.get("slotsPerWorker", 1)
    clean = rp.get("cleanPodPolicy", "None")
    impl = spec.get("mpiImplementation", "OpenMPI")
    ssh = spec.get("sshAuthMountPath", "/root/.ssh")
    if not isinstance(slots, int) or slots < 0:
        errs.append(f"spec.slotsPerWorker {slots!r}: must be a non-negative integer")
    if clean not in CLEAN:
        errs.append(f"spec.runPolicy.cleanPodPolicy {clean!r}: not in {sorted(CLEAN)}")
    for k in ("ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit"):
        if k in rp and (not isinstance(rp[k], int) or rp[k] < 0):
            errs.append(f"spec.runPolicy.{k} {rp[k]!r}: must be non-negative")
    if impl not in IMPL:
        errs.append(f"spec.mpiImplementation {impl!r}: not in {sorted(IMPL)}")
    if not ssh:
        errs.append("spec.sshAuthMountPath: must have a mount path for SSH credentials")
    for kind in REPLICA_TYPES:
        r = reps.get(kind)
        if r is None:
            if kind == "Launcher":
                errs.append("spec.mpiReplicaSpecs[Launcher]: must have Launcher replica spec")
            continue
        errs += [f"unknown field spec.mpiReplicaSpecs[{kind}].{k}" for k in set(r) - REPLICA_SPEC]
        n = r.get("replicas", 1 if kind == "Launcher" else 0)
        if kind == "Launcher" and n != 1:
            errs.append(f"spec.mpiReplicaSpecs[Launcher].replicas {n}: must be 1")
        if kind == "Worker" and (not isinstance(n, int) or n < 1):
            errs.append(f"spec.mpiReplicaSpecs[Worker].replicas {n}: must be >= 1")
        if r.get("restartPolicy", DEFAULT_RESTART[kind]) not in RESTART:
            errs.append(f"spec.mpiReplicaSpecs[{kind}].restartPolicy: not in {sorted(RESTART)}")
        tpl = r.get("template") or {}
        errs += [f"unknown field {kind}.template.{k}" for k in set(tpl) - POD_TEMPLATE]
        pod = tpl.get("spec") or {}
        errs += [f"unknown field {kind}.template.spec.{k}" for k in set(pod) - POD_SPEC]
        cs = pod.get("containers") or []
        if not cs:
            errs.append(f"spec.mpiReplicaSpecs[{kind}].template.spec.containers: must define "
                        "at least one container")
        for c in cs:
            errs += [f"unknown field {kind} container.{k}" for k in set(c) - CONTAINER]
            if not c.get("name") or not c.get("image"):
                errs.append(f"{kind} container: name and image are required")
            if "command" in c and not all(isinstance(x, str) for x in c["command"]):
                errs.append(f"{kind} container.command: strings only")
            for e in c.get("env") or []:
                if set(e) - {"name", "value", "valueFrom"} or not isinstance(e.get("value", ""),
                                                                            str):
                    errs.append(f"{kind} container.env {e}: name/value strings")
    # validateMPIJobName: the last worker's pod host name must be a DNS-1035 label
    workers = (reps.get("Worker") or {}).get("replicas") or 1
    host = f"{(doc.get('metadata') or {}).get('name', '')}-worker-{workers - 1}"
    if len(host) > 63 or not DNS1035.match(host):
        errs.append(f"metadata.name: pod host name {host!r} is not a DNS-1035 label")
    return errs


def _export(*extra: str, hosts=LOCAL) -> dict:
    r = cli("cluster", "export", "--format", "mpijob", "--hosts", str(hosts), "-b", "1K",
            "-e", "64K", "--image", "a=registry.local/cpu-selftest:1",
            "--image", "b=registry.local/cpu-selftest:1", *extra)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def test_mpijob_export_passes_the_operators_v2beta1_validation():
    doc = _export()
    assert validate(doc) == []
    spec = doc["spec"]
    assert spec["mpiImplementation"] == "MPICH" and spec["slotsPerWorker"] == 2
    assert spec["runPolicy"]["cleanPodPolicy"] in CLEAN
    assert spec["mpiReplicaSpecs"]["Launcher"]["replicas"] == 1
    assert spec["mpiReplicaSpecs"]["Worker"]["replicas"] == 2


def test_the_validator_can_fail():
    """Every rule above rejects what the operator rejects (so a pass means something)."""
    good = _export()
    import copy
    bad = []
    d = copy.deepcopy(good)
    d["spec"]["mpiReplicaSpecs"]["Launcher"]["replicas"] = 2
    bad.append(d)
    d = copy.deepcopy(good)
    d["spec"]["mpiImplementation"] = "mpich"
    bad.append(d)
    d = copy.deepcopy(good)
    d["spec"]["runPolicy"]["cleanPodPolicy"] = "Always"
    bad.append(d)
    d = copy.deepcopy(good)
    d["spec"]["slotPerWorker"] = 2
    bad.append(d)
    d = copy.deepcopy(good)
    d["spec"]["mpiReplicaSpecs"]["Worker"]["restartPolicy"] = "Always"
    bad.append(d)
    d = copy.deepcopy(good)
    d["metadata"]["name"] = "cctl-demo.x-hetero"
    bad.append(d)
    d = copy.deepcopy(good)
    del d["spec"]["mpiReplicaSpecs"]["Launcher"]
    bad.append(d)
    for d in bad:
        assert validate(d), d


def test_mpijob_name_of_a_dotted_cluster_is_a_valid_pod_host_name(tmp_path):
    """Cluster names may hold '.', which a pod host name (DNS-1035) may not."""
    inv = tmp_path / "hosts.yaml"
    inv.write_text(LOCAL.read_text().replace("name: selftest", "name: lab.a"))
    doc = _export(hosts=inv)
    assert validate(doc) == [], validate(doc)
