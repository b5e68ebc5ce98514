# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for Deployment rollouts and verify the images the running pods use.

What ``kubectl rollout status`` and the runbook's ``kubectl describe pod | grep Image`` do, plus what
kubernetes.core's waiter lacks: it stops at once when the rollout cannot finish (ProgressDeadlineExceeded,
new pods in ImagePullBackOff or CrashLoopBackOff) and says why.
"""

from __future__ import annotations

import time

from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import pod_summary


def deployment_state(dep, pods, expected_images):
    """(done, problem, facts) for one Deployment and its pods; ``expected_images``: {container: image}."""
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    want = spec.get("replicas", 1)
    facts = {
        "name": meta.get("name"),
        "revision": (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision"),
        "replicas": want, "updated": status.get("updatedReplicas", 0), "ready": status.get("readyReplicas", 0),
        "available": status.get("availableReplicas", 0), "unavailable": status.get("unavailableReplicas", 0),
        "template_images": {c["name"]: c.get("image") for c in (spec.get("template") or {}).get("spec", {}).get("containers", [])},
    }
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running" and not (p.get("metadata") or {}).get("deletionTimestamp")]
    facts["pod_images"] = sorted({"%s=%s" % (cs.get("name"), cs.get("image")) for p in running
                                  for cs in (p.get("status") or {}).get("containerStatuses") or []})
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, "rollout of %s exceeded its progress deadline: %s" % (meta.get("name"), cond.get("message")), facts
    for p in pods:
        s = pod_summary(p)
        if s["problem"] and s["ready"] < s["total"]:
            return False, "rollout of %s cannot finish: pod %s %s" % (meta.get("name"), s["name"], s["problem"]), facts
    for container, image in (expected_images or {}).items():
        if facts["template_images"].get(container) != image:
            current = facts["template_images"].get(container)
            return False, "Deployment %s container %s runs %s, not %s" % (meta.get("name"), container, current, image), facts
    done = (status.get("observedGeneration", 0) >= meta.get("generation", 0) and facts["updated"] == want
            and facts["available"] == want and not facts["unavailable"] and status.get("replicas", want) == want)
    if done and expected_images:
        wrong = [p["metadata"]["name"] for p in running for cs in (p.get("status") or {}).get("containerStatuses") or []
                 if cs.get("name") in expected_images and cs.get("image") != expected_images[cs["name"]]]
        if wrong:
            done = False  # old pods still terminating
        facts["all_pods_on_expected_image"] = not wrong
    return done, None, facts


def run(module):
    from ansible_collections.odp.model_engine.plugins.module_utils import kube

    p = module.params
    try:
        client = kube.api_client(p)
    except KubeError as e:
        module.fail_json(msg=str(e))
    apps, core = kube.AppsV1Api(client), kube.CoreV1Api(client)
    start = time.monotonic()
    expected = {k: dict(v) for k, v in (p["images"] or {}).items()}
    if p.get("image"):
        for dep, container in (p["containers"] or {}).items():
            expected.setdefault(dep, {})[container] = p["image"]
    while True:
        results, problems, pending = [], [], []
        for name in p["deployments"]:
            dep = kube.read_or_none(apps.read_namespaced_deployment, name, p["namespace"], api_client=client)
            if dep is None:
                problems.append("Deployment %s/%s does not exist" % (p["namespace"], name))
                continue
            sel = ",".join("%s=%s" % kv for kv in sorted(((dep.get("spec") or {}).get("selector") or {}).get("matchLabels", {}).items()))
            pods = client.sanitize_for_serialization(core.list_namespaced_pod(p["namespace"], label_selector=sel)).get("items", [])
            want = expected.get(name) or {}
            done, problem, facts = deployment_state(dep, pods, want)
            results.append(facts)
            if problem:
                problems.append(problem)
            elif not done:
                pending.append(name)
        elapsed = round(time.monotonic() - start, 1)
        if problems and (p["fail_fast"] or not p["wait"]):
            module.fail_json(msg="; ".join(problems), deployments=results, elapsed=elapsed, verified=False)
        if not pending and not problems:
            module.exit_json(changed=False, verified=True, deployments=results, elapsed=elapsed)
        if not p["wait"] or elapsed >= p["wait_timeout"]:
            module.fail_json(msg="rollout not finished after %ss: %s" % (elapsed, ", ".join(pending) or "; ".join(problems)),
                             deployments=results, elapsed=elapsed, verified=False)
        time.sleep(p["wait_sleep"])
