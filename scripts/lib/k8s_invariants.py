"""Invariants of journeyman's Kubernetes manifests that a schema cannot express.

Usage:
  k8s_invariants.py RENDERED.yaml...      check rendered overlays (`kubectl kustomize` output)
  k8s_invariants.py --repo DIR            scan every YAML file and kustomization under DIR for secrets
  k8s_invariants.py --self-test RENDERED  prove every check can fail: break a copy of the rendered
                                          manifests in one way per check and expect exactly that check
                                          to complain

Each check is a function from the list of rendered documents to a list of problems (empty: holds).
The reasons live next to the checks; DESIGN.md section 7 and k8s/base/*.yaml say more.
"""

import argparse
import copy
import os
import re
import sys
import tempfile

import yaml

WORKER = "journeyman"
PLACEHOLDER_NET = "192.0.2."  # RFC 5737 TEST-NET-1: k8s/base/networkpolicy.yaml's placeholders.
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
                  "CustomResourceDefinition", "PriorityClass"}
# Time the worker needs after the grace period ends: stop the agent, release the claim, comment.
SHUTDOWN_MARGIN_SECONDS = 30
DEFAULT_LISTEN = "127.0.0.1:8080"   # src/config/defaults.rs
DEFAULT_SHUTDOWN_GRACE = "5m"       # src/config/defaults.rs


# ---------------------------------------------------------------------------------------------- helpers

def of_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def worker_set(docs):
    sets = [d for d in of_kind(docs, "StatefulSet") if d["metadata"]["name"] == WORKER]
    return sets[0] if len(sets) == 1 else None


def pod_spec(docs):
    sts = worker_set(docs)
    return sts["spec"]["template"]["spec"] if sts else None


def worker_container(docs):
    spec = pod_spec(docs)
    if not spec:
        return None
    named = [c for c in spec.get("containers", []) if c.get("name") == "worker"]
    return named[0] if named else None


def container_env(docs, container):
    """The container's environment as the kubelet builds it: envFrom ConfigMaps first, then env."""
    env = {}
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in of_kind(docs, "ConfigMap")}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            env.update(configmaps.get(ref["name"], {}))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", var.get("valueFrom"))
    return env


UNITS = {"ms": 0.001, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
         "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600,
         "hours": 3600, "d": 86400, "day": 86400, "days": 86400}


def seconds(text):
    """A humantime duration (`5m`, `1h 30m`, `300s`) in seconds, as src/config/ reads it."""
    parts = re.findall(r"(\d+)\s*([a-z]+)", text.strip().lower())
    if not parts or re.sub(r"[\d\sa-z]", "", text.strip().lower()):
        raise ValueError(f"not a duration like `5m`: `{text}`")
    total = 0.0
    for number, unit in parts:
        if unit not in UNITS:
            raise ValueError(f"unknown unit `{unit}` in `{text}`")
        total += int(number) * UNITS[unit]
    return total


def selects_worker(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def worker_labels(docs):
    sts = worker_set(docs)
    return sts["spec"]["template"]["metadata"].get("labels", {}) if sts else {}


# ----------------------------------------------------------------------------------------------- checks

def check_workload_kind(docs):
    """Pod names are the board's pinning key: only a StatefulSet keeps them stable."""
    problems = [f"Deployment/{d['metadata']['name']}: workers must be a StatefulSet (stable pod names)"
                for d in of_kind(docs, "Deployment")]
    sts = worker_set(docs)
    if sts is None:
        problems.append(f"expected exactly one StatefulSet named `{WORKER}`")
    elif sts["spec"].get("podManagementPolicy") != "Parallel":
        problems.append("StatefulSet: podManagementPolicy must be Parallel (workers are independent)")
    elif not any(s["metadata"]["name"] == sts["spec"].get("serviceName")
                 and s["spec"].get("clusterIP") == "None" for s in of_kind(docs, "Service")):
        problems.append("StatefulSet: serviceName must name a headless Service (clusterIP: None)")
    return problems


def check_pod_name(docs):
    """JOURNEYMAN_POD_NAME is the StatefulSet pod name, from the downward API."""
    c = worker_container(docs)
    if c is None:
        return ["no container named `worker` in the StatefulSet"]
    for var in c.get("env", []):
        if var["name"] == "JOURNEYMAN_POD_NAME":
            ref = (var.get("valueFrom") or {}).get("fieldRef") or {}
            if ref.get("fieldPath") == "metadata.name":
                return []
            return ["JOURNEYMAN_POD_NAME must come from fieldRef metadata.name, got "
                    f"{var.get('value', var.get('valueFrom'))!r}"]
    return ["JOURNEYMAN_POD_NAME is not set from the downward API (fieldRef metadata.name)"]


def check_probes(docs):
    """Liveness /healthz and readiness /readyz, on the port JOURNEYMAN_LISTEN binds to all interfaces."""
    c = worker_container(docs)
    if c is None:
        return ["no container named `worker` in the StatefulSet"]
    problems = []
    listen = container_env(docs, c).get("JOURNEYMAN_LISTEN") or DEFAULT_LISTEN
    host, _, port = str(listen).rpartition(":")
    if host not in ("0.0.0.0", "[::]"):
        problems.append(f"JOURNEYMAN_LISTEN={listen}: the kubelet cannot reach it; use 0.0.0.0:{port}")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet")
        if not get:
            problems.append(f"{probe}: missing or not an httpGet probe")
            continue
        if get.get("path") != path:
            problems.append(f"{probe}: path must be {path}, got {get.get('path')}")
        target = ports.get(get.get("port"), get.get("port"))
        if str(target) != port:
            problems.append(f"{probe}: port {get.get('port')} ({target}) is not JOURNEYMAN_LISTEN's {port}")
        if isinstance(get.get("port"), int):
            problems.append(f"{probe}: use the named port, not the number {get.get('port')}")
    return problems


def check_shutdown_grace(docs):
    """The kubelet must not SIGKILL a worker before its shutdown grace (plus the release) is over."""
    c, spec = worker_container(docs), pod_spec(docs)
    if c is None:
        return ["no container named `worker` in the StatefulSet"]
    grace_text = container_env(docs, c).get("JOURNEYMAN_SHUTDOWN_GRACE") or DEFAULT_SHUTDOWN_GRACE
    try:
        grace = seconds(str(grace_text))
    except ValueError as e:
        return [f"JOURNEYMAN_SHUTDOWN_GRACE: {e}"]
    period = spec.get("terminationGracePeriodSeconds", 30)
    if period < grace + SHUTDOWN_MARGIN_SECONDS:
        return [f"terminationGracePeriodSeconds={period} must be at least JOURNEYMAN_SHUTDOWN_GRACE "
                f"({grace_text} = {grace:g}s) + {SHUTDOWN_MARGIN_SECONDS}s to release the claim"]
    return []


def check_service_account(docs):
    """The worker needs no Kubernetes API: no token in the pod."""
    spec = pod_spec(docs)
    if spec is None:
        return ["no worker StatefulSet"]
    problems = []
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("pod spec: automountServiceAccountToken must be false")
    name = spec.get("serviceAccountName")
    accounts = [a for a in of_kind(docs, "ServiceAccount") if a["metadata"]["name"] == name]
    if not name or not accounts:
        problems.append("pod spec: serviceAccountName must name a ServiceAccount of this kustomization")
    elif accounts[0].get("automountServiceAccountToken") is not False:
        problems.append(f"ServiceAccount/{name}: automountServiceAccountToken must be false")
    return problems


def check_network_policy(docs):
    """Egress is an allowlist: DNS plus named destinations, no rule open to everything, no placeholder."""
    labels = worker_labels(docs)
    policies = [p for p in of_kind(docs, "NetworkPolicy")
                if selects_worker(p["spec"].get("podSelector", {}).get("matchLabels", {}), labels)]
    if not policies:
        return ["no NetworkPolicy selects the worker pods"]
    problems = []
    for p in policies:
        name = p["metadata"]["name"]
        egress = p["spec"].get("egress") or []
        if "Egress" not in p["spec"].get("policyTypes", []):
            problems.append(f"NetworkPolicy/{name}: policyTypes must include Egress")
        if not egress:
            problems.append(f"NetworkPolicy/{name}: has no egress rules (nothing would resolve or connect)")
        for i, rule in enumerate(egress):
            if not rule.get("to"):
                problems.append(f"NetworkPolicy/{name}: egress/{i} has no `to`: it allows every destination")
            for peer in rule.get("to", []):
                cidr = (peer.get("ipBlock") or {}).get("cidr", "")
                if cidr in ("0.0.0.0/0", "::/0"):
                    problems.append(f"NetworkPolicy/{name}: egress/{i} allows the whole internet")
                if cidr.startswith(PLACEHOLDER_NET):
                    problems.append(f"NetworkPolicy/{name}: egress/{i} still has the base's placeholder "
                                    f"{cidr}; the overlay must set the real address")
        if not any(port.get("port") == 53 for rule in egress for port in rule.get("ports", [])):
            problems.append(f"NetworkPolicy/{name}: no egress rule for DNS (port 53)")
    return problems


def check_no_secret_values(docs):
    """Secrets are referenced, never shipped: their values must not be in the repository."""
    return [f"Secret/{d['metadata']['name']}: carries data/stringData; create it out of band instead"
            for d in of_kind(docs, "Secret") if d.get("data") or d.get("stringData")]


def check_secret_files(docs):
    """The *_FILE settings point into a mounted Secret volume, and the model key is a secret reference."""
    c, spec = worker_container(docs), pod_spec(docs)
    if c is None:
        return ["no container named `worker` in the StatefulSet"]
    env = container_env(docs, c)
    secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v or "projected" in v}
    secret_dirs = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", [])
                   if m["name"] in secret_volumes]
    problems = []
    for var in ("JOURNEYMAN_OPENPROJECT_TOKEN", "JOURNEYMAN_GIT_TOKEN"):
        if var in env:
            problems.append(f"{var} is set directly; mount the Secret and set {var}_FILE")
        path = env.get(var + "_FILE")
        if not path or not any(str(path).startswith(d) for d in secret_dirs):
            problems.append(f"{var}_FILE={path} is not inside a mounted Secret volume {secret_dirs}")
    key = env.get("ANTHROPIC_API_KEY")
    if not (isinstance(key, dict) and "secretKeyRef" in key):
        problems.append("ANTHROPIC_API_KEY must come from a secretKeyRef")
    return problems


def check_required_settings(docs):
    """The variables without defaults are set (src/config/ would refuse to start without them)."""
    c = worker_container(docs)
    if c is None:
        return ["no container named `worker` in the StatefulSet"]
    env = container_env(docs, c)
    return [f"{var} is not set" for var in ("JOURNEYMAN_OPENPROJECT_URL", "JOURNEYMAN_REPOS")
            if not env.get(var)]


def check_security_context(docs):
    """Non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp, read-only root."""
    spec = pod_spec(docs)
    if spec is None:
        return ["no worker StatefulSet"]
    pod = spec.get("securityContext", {})
    problems = []
    if pod.get("runAsNonRoot") is not True or not pod.get("runAsUser"):
        problems.append("pod securityContext: runAsNonRoot: true and a non-zero runAsUser are required")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        name = c["name"]
        seccomp = (sc.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            problems.append(f"container {name}: seccompProfile must be RuntimeDefault")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name}: allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            problems.append(f"container {name}: must not be privileged")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"] or (sc.get("capabilities") or {}).get("add"):
            problems.append(f"container {name}: capabilities must drop ALL and add none")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"container {name}: readOnlyRootFilesystem must be true")
        res = c.get("resources", {})
        if not res.get("requests") or not res.get("limits", {}).get("memory"):
            problems.append(f"container {name}: needs resource requests and a memory limit")
    return problems


def check_volumes(docs):
    """/nix and the workdir are per-pod claims; HOME and /tmp are writable."""
    sts, c = worker_set(docs), worker_container(docs)
    if c is None:
        return ["no container named `worker` in the StatefulSet"]
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
    env = container_env(docs, c)
    problems = []
    workdir = str(env.get("JOURNEYMAN_WORKDIR") or "").rstrip("/")
    for path, what in (("/nix", "the Nix store"), (workdir, "JOURNEYMAN_WORKDIR")):
        if mounts.get(path) not in claims:
            problems.append(f"{what} ({path or 'unset'}) must be a volumeClaimTemplate mount")
    for path in (str(env.get("HOME") or ""), "/tmp"):
        if path.rstrip("/") not in mounts:
            problems.append(f"{path or 'HOME (unset)'} must be a writable volume (root filesystem is read-only)")
    return problems


def check_disruption_and_metrics(docs):
    """A PDB and a metrics Service cover the worker pods."""
    labels = worker_labels(docs)
    problems = []
    if not any(selects_worker(p["spec"].get("selector", {}).get("matchLabels", {}), labels)
               for p in of_kind(docs, "PodDisruptionBudget")):
        problems.append("no PodDisruptionBudget selects the worker pods")
    if not any(s["spec"].get("clusterIP") != "None" and selects_worker(s["spec"].get("selector"), labels)
               and any(p.get("targetPort") == "http" for p in s["spec"].get("ports", []))
               for s in of_kind(docs, "Service")):
        problems.append("no (non-headless) metrics Service targets the worker port `http`")
    return problems


def check_namespaces(docs):
    """Every namespaced object lands in the same, explicit namespace."""
    spaces = {d.get("metadata", {}).get("namespace") for d in docs if d["kind"] not in CLUSTER_SCOPED}
    if len(spaces) != 1 or None in spaces:
        return [f"namespaced objects must share one explicit namespace, found {sorted(map(str, spaces))}"]
    return []


def check_scaler(docs):
    """An optional KEDA ScaledObject scales this StatefulSet on the eligible-work gauge, never to zero."""
    problems = []
    for so in of_kind(docs, "ScaledObject"):
        target = so["spec"].get("scaleTargetRef", {})
        if target.get("kind") != "StatefulSet" or target.get("name") != WORKER:
            problems.append(f"ScaledObject: must target StatefulSet/{WORKER}, got {target}")
        if so["spec"].get("minReplicaCount", 0) < 1:
            problems.append("ScaledObject: minReplicaCount must be >= 1 (the workers report the queue)")
        queries = [t.get("metadata", {}).get("query", "") for t in so["spec"].get("triggers", [])]
        if not any("journeyman_eligible_work" in q for q in queries):
            problems.append("ScaledObject: no trigger queries journeyman_eligible_work")
    return problems


CHECKS = [check_workload_kind, check_pod_name, check_probes, check_shutdown_grace, check_service_account,
          check_network_policy, check_no_secret_values, check_secret_files, check_required_settings,
          check_security_context, check_volumes, check_disruption_and_metrics, check_namespaces,
          check_scaler]


def run_checks(docs):
    """{check name: [problems]} for every check that fails."""
    failed = {}
    for check in CHECKS:
        try:
            problems = check(docs)
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            problems = [f"manifest shape not understood ({type(e).__name__}: {e})"]
        if problems:
            failed[check.__name__] = problems
    return failed


# ------------------------------------------------------------------------------------------ repo scan

def scan_repo(root):
    """Secret values anywhere in the repository's YAML, or kustomize generating Secrets from files."""
    problems, scanned = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", "target", "node_modules")]
        for name in filenames:
            if not name.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(dirpath, name)
            scanned += 1
            try:
                with open(path, encoding="utf-8") as f:
                    docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                problems.append(f"{path}: cannot be read as YAML ({e})")
                continue
            for d in docs:
                if d.get("kind") == "Secret" and (d.get("data") or d.get("stringData")):
                    problems.append(f"{path}: Secret/{d.get('metadata', {}).get('name')} carries values")
                if d.get("secretGenerator"):
                    problems.append(f"{path}: secretGenerator puts secret values into the build; "
                                    "create the Secret out of band and reference it")
    return scanned, problems


# ------------------------------------------------------------------------------------------ self-test

def _worker(docs):
    return worker_container(docs)


def _set_env(docs, name, value):
    c = _worker(docs)
    c["env"] = [v for v in c.get("env", []) if v["name"] != name] + [{"name": name, "value": value}]
    for cm in of_kind(docs, "ConfigMap"):
        cm.get("data", {}).pop(name, None)


def _spec(docs):
    return pod_spec(docs)


def _to_deployment(docs):
    sts = worker_set(docs)
    sts["kind"] = "Deployment"


def _egress(docs):
    return of_kind(docs, "NetworkPolicy")[0]["spec"]["egress"]


# (what is broken, the check that must catch it, how to break a deep copy of the rendered manifests)
BREAKAGES = [
    ("workers as a Deployment", "check_workload_kind", _to_deployment),
    ("ordered pod management", "check_workload_kind",
     lambda d: worker_set(d)["spec"].update(podManagementPolicy="OrderedReady")),
    ("POD_NAME as a fixed value", "check_pod_name", lambda d: _set_env(d, "JOURNEYMAN_POD_NAME", "pod-0")),
    ("POD_NAME from the node name", "check_pod_name",
     lambda d: [v for v in _worker(d)["env"] if v["name"] == "JOURNEYMAN_POD_NAME"][0]
     .update(valueFrom={"fieldRef": {"fieldPath": "spec.nodeName"}})),
    ("readiness on /healthz", "check_probes",
     lambda d: _worker(d)["readinessProbe"]["httpGet"].update(path="/healthz")),
    ("listening on another port", "check_probes", lambda d: _set_env(d, "JOURNEYMAN_LISTEN", "0.0.0.0:9000")),
    ("listening on loopback", "check_probes", lambda d: _set_env(d, "JOURNEYMAN_LISTEN", "127.0.0.1:8080")),
    ("LISTEN left at its default", "check_probes",
     lambda d: [cm.get("data", {}).pop("JOURNEYMAN_LISTEN", None) for cm in of_kind(d, "ConfigMap")]),
    ("grace period shorter than the shutdown grace", "check_shutdown_grace",
     lambda d: _spec(d).update(terminationGracePeriodSeconds=300)),
    ("shutdown grace raised past the grace period", "check_shutdown_grace",
     lambda d: _set_env(d, "JOURNEYMAN_SHUTDOWN_GRACE", "1h")),
    ("grace period left at the default 30s", "check_shutdown_grace",
     lambda d: _spec(d).pop("terminationGracePeriodSeconds")),
    ("token automounted in the pod", "check_service_account",
     lambda d: _spec(d).pop("automountServiceAccountToken")),
    ("token automounted by the ServiceAccount", "check_service_account",
     lambda d: of_kind(d, "ServiceAccount")[0].update(automountServiceAccountToken=True)),
    ("no egress rules", "check_network_policy", lambda d: of_kind(d, "NetworkPolicy")[0]["spec"].pop("egress")),
    ("egress open to everything", "check_network_policy", lambda d: _egress(d).append({})),
    ("egress to 0.0.0.0/0", "check_network_policy",
     lambda d: _egress(d).append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})),
    ("placeholder address left", "check_network_policy",
     lambda d: _egress(d)[1]["to"][0]["ipBlock"].update(cidr="192.0.2.10/32")),
    ("a Secret with a value", "check_no_secret_values",
     lambda d: d.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "journeyman"},
                         "stringData": {"token": "hunter2"}})),
    ("token as a plain variable", "check_secret_files",
     lambda d: _set_env(d, "JOURNEYMAN_OPENPROJECT_TOKEN", "hunter2")),
    ("model key as a plain value", "check_secret_files", lambda d: _set_env(d, "ANTHROPIC_API_KEY", "sk-x")),
    ("board URL missing", "check_required_settings",
     lambda d: [cm.get("data", {}).pop("JOURNEYMAN_OPENPROJECT_URL", None) for cm in of_kind(d, "ConfigMap")]),
    ("root user", "check_security_context", lambda d: _spec(d)["securityContext"].pop("runAsNonRoot")),
    ("writable root filesystem", "check_security_context",
     lambda d: _worker(d)["securityContext"].update(readOnlyRootFilesystem=False)),
    ("a capability added", "check_security_context",
     lambda d: _worker(d)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"])),
    ("init container escalates", "check_security_context",
     lambda d: _spec(d)["initContainers"][0]["securityContext"].update(allowPrivilegeEscalation=True)),
    ("/nix on an emptyDir", "check_volumes",
     lambda d: [m for m in _worker(d)["volumeMounts"] if m["mountPath"] == "/nix"][0].update(name="tmp")),
    ("no PDB", "check_disruption_and_metrics",
     lambda d: d.remove(of_kind(d, "PodDisruptionBudget")[0])),
    ("an object without namespace", "check_namespaces", lambda d: d[-1]["metadata"].pop("namespace", None)),
    ("scaling to zero", "check_scaler", lambda d: of_kind(d, "ScaledObject")[0]["spec"].update(minReplicaCount=0)),
    ("scaling a Deployment", "check_scaler",
     lambda d: of_kind(d, "ScaledObject")[0]["spec"]["scaleTargetRef"].update(kind="Deployment")),
]

# Files the repository scan must reject, one per kind of leak.
LEAKY_FILES = {
    "secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\ndata: {token: aHVudGVyMg==}\n",
    "kustomization.yaml": "secretGenerator:\n  - name: x\n    literals: [token=hunter2]\n",
}


def self_test_repo_scan():
    """The repository scan finds each kind of leak in a scratch directory."""
    with tempfile.TemporaryDirectory() as root:
        for name, text in LEAKY_FILES.items():
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(text)
        _, problems = scan_repo(root)
    missed = [n for n in LEAKY_FILES if not any(p.startswith(os.path.join(root, n)) for p in problems)]
    for name in LEAKY_FILES:
        print(f"  {'MISSED' if name in missed else 'caught'}   secret values in {name}")
    return len(missed)


def self_test(docs):
    if not of_kind(docs, "ScaledObject"):
        print("self-test: run it on an overlay with the KEDA component, so every check can be broken")
        return 1
    baseline = run_checks(docs)
    if baseline:
        print("self-test: the unbroken manifests must pass first:")
        report(baseline)
        return 1
    failures = 0
    for what, expected, breaker in BREAKAGES:
        broken = copy.deepcopy(docs)
        breaker(broken)
        failed = run_checks(broken)
        if expected in failed:
            print(f"  caught   {what}: {failed[expected][0]}")
        else:
            failures += 1
            print(f"  MISSED   {what}: {expected} did not fail (failed: {sorted(failed) or 'none'})")
    untested = {c.__name__ for c in CHECKS} - {e for _, e, _ in BREAKAGES}
    if untested:
        failures += 1
        print(f"  MISSED   checks without a breakage: {sorted(untested)}")
    failures += self_test_repo_scan()
    total = len(BREAKAGES) + len(LEAKY_FILES)
    print(f"self-test: {total - failures} breakages caught, {failures} missed")
    return 1 if failures else 0


def report(failed):
    for name, problems in failed.items():
        for p in problems:
            print(f"  FAIL {name}: {p}")


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", help="scan this directory's YAML for secret values")
    parser.add_argument("--self-test", action="store_true", help="prove that every check can fail")
    parser.add_argument("rendered", nargs="*")
    args = parser.parse_args()
    status = 0
    if args.repo:
        scanned, problems = scan_repo(args.repo)
        for p in problems:
            print(f"  FAIL no secret values in the repository: {p}")
        print(f"repository scan: {scanned} YAML files, {len(problems)} with secret values")
        status |= 1 if problems else 0
    for path in args.rendered:
        docs = load(path)
        if args.self_test:
            print(f"self-test on {path}:")
            status |= self_test(docs)
            continue
        failed = run_checks(docs)
        report(failed)
        passed = len(CHECKS) - len(failed)
        print(f"invariants of {path}: {passed} passed, {len(failed)} failed")
        status |= 1 if failed else 0
    return status


if __name__ == "__main__":
    sys.exit(main())
