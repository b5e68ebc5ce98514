# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""llm_endpoint_progress: one check of an endpoint on its way to serving, as the judge sees it.

The runbook's "Monitor Endpoint Progress" (kubectl get pods, ls/du of model_files, logs) in one call: the
judge's verdict, each pod as ``kubectl get pods`` shows it (0/2 -> 2/2), and the bytes downloaded against
the checkpoint with rate and ETA from the samples of earlier calls (passed back as ``previous``). The module's
action plugin loops on it when ``wait`` is set and prints each line as it comes.
"""

from __future__ import annotations

import time

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.follow import Follow, auto_timeout, limits, make_observer
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import pod_summary


def _short(pod_name):
    """The ReplicaSet hash and pod suffix of ``launch-endpoint-id-end-...-<hash>-<suffix>``."""
    parts = (pod_name or "?").rsplit("-", 2)
    return "-".join(parts[-2:]) if len(parts) == 3 else pod_name


def snapshot(module):
    p = module.params
    previous = dict(p.get("previous") or {})
    now = time.time()
    started = previous.get("started", now)
    observer = make_observer(module)
    follow = Follow(observer, p["name"], dict(limits(p), transition_timeout=max(30, 3 * p["wait_sleep"])),
                    baseline=p.get("baseline") or previous.get("baseline"), history=previous)
    follow.record = None if previous else p.get("record")   # only the first check of a wait uses it
    elapsed = now - started
    poll = follow.step(elapsed)
    verdict = follow.verdict
    history = dict(follow.history, started=started)
    if follow.baseline:
        history["baseline"] = follow.baseline
    if "wait_timeout" not in history and (poll.outcome == waiter.WAIT or p.get("wait_timeout")):
        # sized from the checkpoint's size in S3, only when there is something to wait for: a check that already
        # decided (serving, or failed) costs no S3 listing
        history["wait_timeout"] = p.get("wait_timeout") or auto_timeout(observer, follow.obs.record, limits(p))
    pods = [pod_summary(x) for x in follow.obs.pods]
    rec = follow.obs.record
    pods_text = ", ".join("%s %s" % (_short(x["name"]), x["display"]) for x in pods) or "no pod yet"
    out = dict(follow.result(), status=rec.get("status") if rec else None, pods=pods, download=verdict.download, sample=history,
               elapsed=round(elapsed, 1), wait_timeout=history.get("wait_timeout"), outcome=poll.outcome,
               reason=poll.message,
               line="[%5.0fs] %s: %s; pods: %s" % (elapsed, p["name"], verdict.summary, pods_text))
    return out
