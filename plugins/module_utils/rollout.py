# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for Deployment rollouts and verify the images the running pods use.

What ``kubectl rollout status`` and the runbook's ``kubectl describe pod | grep Image`` do, plus what
kubernetes.core's waiter lacks: it stops at once when the rollout cannot finish (ProgressDeadlineExceeded,
new pods in ImagePullBackOff or CrashLoopBackOff) and says why.
"""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.errors import WaitError
from ansible_collections.odp.model_engine.plugins.module_utils.judge import judge_pods
from ansible_collections.odp.model_engine.plugins.module_utils.observe import Observation


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
    obs = Observation(meta.get("name"))
    obs.pods = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    problem = judge_pods(obs)
    if problem is not None:
        return False, "rollout of %s cannot finish: %s (fix: %s)" % (meta.get("name"), problem.summary, problem.fix), facts
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


def _expected(p):
    expected = {k: dict(v) for k, v in (p["images"] or {}).items()}
    if p.get("image"):
        for dep, container in (p["containers"] or {}).items():
            expected.setdefault(dep, {})[container] = p["image"]
    return expected


def check(kube, p, expected):
    """(results, problems, pending) for every Deployment of ``p["deployments"]``."""
    results, problems, pending = [], [], []
    for name in p["deployments"]:
        dep = kube.get("Deployment", name, p["namespace"])
        if dep is None:
            problems.append("Deployment %s/%s does not exist" % (p["namespace"], name))
            continue
        sel = ",".join("%s=%s" % kv for kv in sorted(((dep.get("spec") or {}).get("selector") or {}).get("matchLabels", {}).items()))
        done, problem, facts = deployment_state(dep, kube.list("Pod", p["namespace"], sel), expected.get(name) or {})
        results.append(facts)
        if problem:
            problems.append(problem)
        elif not done:
            pending.append(name)
    return results, problems, pending


def run(module):
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    kube = Kube(p)
    expected = _expected(p)

    def step(_elapsed):
        results, problems, pending = check(kube, p, expected)
        res = {"deployments": results, "verified": False}
        if problems and (p["fail_fast"] or not p["wait"]):
            return waiter.failed(results, "; ".join(problems), result=res, reason="rollout")
        if not pending and not problems:
            return waiter.done(results, "verified")
        return waiter.keep_waiting(results, "rollout not finished: %s" % (", ".join(pending) or "; ".join(problems)), result=res)

    if not p["wait"]:
        poll = step(0)
        if poll.outcome != waiter.DONE:
            raise WaitError(poll.message, **poll.result)
        return dict(changed=False, verified=True, deployments=poll.value, elapsed=0.0)
    results, elapsed = waiter.Waiter(p.get("wait_timeout") or 600, sleep=p["wait_sleep"], initial_sleep=min(1.0, p["wait_sleep"])).wait(step)
    return dict(changed=False, verified=True, deployments=results, elapsed=round(elapsed, 1))
