"""Adaptive readiness polling: slow while the model downloads (at its ETA), fast once the files are complete."""

from __future__ import annotations

import itertools
import types

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import readiness as R
from ansible_collections.odp.model_engine.plugins.module_utils.kube import container_restarted


@pytest.mark.parametrize("names, complete", [
    (["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], True),
    (["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors.a1B2c3D4"], False),  # awscli temp
    (["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors8812331"], False),  # s5cmd temp
    (["model-00001-of-00002.safetensors"], False),   # no config.json yet
    (["config.json", "tokenizer.json"], False),      # no weights yet
    ([], False),
])
def test_files_look_complete_is_the_runbooks_guard(names, complete):
    assert R.files_look_complete({n: {"size": 1} for n in names}) is complete


class FakeObserver:
    """Each measure appends bytes as a download at ``rate`` would, with ``expected`` bytes in total."""

    def __init__(self, expected, rate, clock):
        self.expected, self.rate, self.clock = expected, rate, clock
        self.present = 0

    def measure_pod_download(self, pod, dl, checkpoint=None, history=None):
        self.present = min(self.expected, self.present + self.rate * 10)
        now = self.clock()
        files = {"config.json": {"size": 10}, "model.safetensors" if self.present >= self.expected else "model.safetensors.abcd1234": {"size": 1}}
        dl.update(listing=files, bytes_present=self.present, bytes_expected=self.expected, complete=self.present >= self.expected)
        history.setdefault("samples", []).append([now, self.present, "p"])


def make(expected, rate, wait_sleep=5.0):
    t = {"now": 0.0}
    obs = FakeObserver(expected, rate, lambda: t["now"])
    module = types.SimpleNamespace(params={"container": "main", "checkpoint_path": "s3://b/m/", "wait_sleep": wait_sleep})
    r = R.Readiness(module, kube=types.SimpleNamespace(requests=0), observer=obs, gateway=None)
    r.pod = {"status": {"containerStatuses": [{"name": "main", "ready": False}]}}
    r.summary = {"name": "p"}
    return r, t


def test_downloading_polls_at_the_eta_and_never_faster_than_needed():
    r, t = make(expected=10_000_000, rate=10_000)   # 1000 s to go at 10 kB/s
    pauses = []
    for _sample in range(3):
        pauses.append(r._download_pause())
        t["now"] += 10
    assert pauses[0] == R.NO_RATE_FIRST          # one sample: no rate yet, a second one soon
    assert pauses[1] == R.SLOW and pauses[2] == R.SLOW   # far from done: the slowest pace
    assert r.requests["exec"] == 3


def test_near_the_end_it_looks_at_the_eta_then_switches_to_fast_health_checks():
    r, t = make(expected=300_000, rate=10_000)
    first = r._download_pause()
    t["now"] += 10
    second = r._download_pause()        # 100 kB/s... 0.8 x ETA of the remaining bytes
    assert first == R.NO_RATE_FIRST and R.FAST <= second < R.SLOW
    while r._download_pause() is not None:
        t["now"] += 10
    assert r.files_complete is True


def test_while_no_bytes_arrive_the_looks_back_off_to_the_slow_pace():
    """The download tool still installs (the runbook: 5-10 min) or waits for its first object: no rate, no ETA.
    The pause doubles from NO_RATE_FIRST to SLOW instead of a look every few seconds for minutes."""
    r, t = make(expected=10_000_000, rate=0)
    pauses = []
    for _look in range(10):
        pauses.append(r._download_pause())
        t["now"] += pauses[-1]
    assert pauses[:3] == [R.NO_RATE_FIRST, 2 * R.NO_RATE_FIRST, 4 * R.NO_RATE_FIRST]
    assert pauses[-1] == R.SLOW and all(b >= a for a, b in itertools.pairwise(pauses))
    assert r.requests["exec"] == 10
    r.observer.rate = 10_000                # bytes arrive: the ETA decides again, and the backoff starts over
    r._download_pause()
    t["now"] += 10
    assert r._download_pause() == R.SLOW and r.no_rate_pause is None


class CountingKube:
    """Pods and logs as the Kubernetes API would answer them, counting the requests (as Kube.requests does)."""

    def __init__(self, pod):
        self.pod, self.requests, self.log_reads = pod, 0, []

    def find_pods(self, *args):
        self.requests += 1
        return [self.pod]

    def events(self, *args, **kwargs):
        self.requests += 1
        return []

    def logs(self, ns, pod, container, lines=30, head_bytes=None):
        restarted = container_restarted(pod, container)  # as Kube.logs decides (tested in test_kube_logs_*)
        self.log_reads.append((container, head_bytes, restarted))
        self.requests += (1 if head_bytes else 0) + (2 if restarted else 1)
        return ["line"]


def downloading_pod():
    return {"metadata": {"name": "p", "creationTimestamp": "2026-12-01T00:00:00Z"},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "main", "ready": False, "restartCount": 0, "state": {"running": {"startedAt": "2026-12-01T00:00:00Z"}}}]}}


def make_waiting(monkeypatch, rate):
    """A Readiness on a Running pod whose download moves at ``rate`` bytes per 10 s look; the clock is the test's."""
    from ansible_collections.odp.model_engine.plugins.module_utils.observe import Observer

    t = {"now": 0.0}
    monkeypatch.setattr(R.time, "monotonic", lambda: t["now"])
    kube = CountingKube(downloading_pod())
    obs = FakeObserver(10_000_000, rate, lambda: t["now"])
    observer = Observer({"container": "main"}, kube=kube)

    def measure(*args, **kwargs):
        kube.requests += 1  # the exec, counted by the client like every request
        obs.measure_pod_download(*args, **kwargs)

    observer.measure_pod_download = measure
    module = types.SimpleNamespace(params={"container": "main", "checkpoint_path": "s3://b/m/", "wait_sleep": 5.0, "namespace": "llm-core",
                                           "endpoint_name": "e", "adaptive": True, "port": 5005, "smoke": "none"})
    return R.Readiness(module, kube, observer, None), kube, obs, t


def test_a_look_while_bytes_arrive_reads_the_pod_and_the_folder_only(monkeypatch):
    """While the download moves, a look is one pod read and one exec: the download log (read to explain a download
    that stopped) is read on the first look only; a container that never restarted has no previous log to ask for."""
    from ansible_collections.odp.model_engine.plugins.module_utils.observe import HEAD_BYTES

    r, kube, _obs, t = make_waiting(monkeypatch, 10_000)
    polls = []
    for _look in range(4):
        polls.append(r.step(t["now"]))
        t["now"] += 10
    assert [p.outcome for p in polls] == [R.waiter.WAIT] * 4 and all("not complete yet" in p.message for p in polls)
    assert kube.log_reads == [("main", HEAD_BYTES, False)]
    assert r.requests == {"kubernetes": 4 + 2, "exec": 4, "proxy": 0}
    assert "main_logs" not in polls[-1].result  # a look that keeps waiting reads no log for its result


def test_when_the_bytes_stop_the_log_is_read_at_most_once_a_minute(monkeypatch):
    r, kube, obs, t = make_waiting(monkeypatch, 10_000)
    for _look in range(3):
        r.step(t["now"])
        t["now"] += 10
    assert len(kube.log_reads) == 1
    obs.rate = 0                       # the download stops (its error is in the log, the container runs on)
    for _look in range(12):            # two minutes of looks every 10 s
        r.step(t["now"])
        t["now"] += 10
    assert 2 <= len(kube.log_reads) - 1 <= 3, kube.log_reads


def test_near_the_end_the_folder_is_looked_at_often_and_the_pod_at_most_every_two_seconds(monkeypatch):
    r, kube, _obs, t = make_waiting(monkeypatch, 10_000)
    r.step(t["now"])
    reads = []
    for _look in range(10):          # looks 0.25 s apart (the ETA is near)
        t["now"] += 0.25
        before = kube.requests
        r.step(t["now"])
        reads.append(kube.requests - before)
    assert r.counts["exec"] == 11     # the folder at every look
    assert sum(reads) - 10 == 1       # and the pod once more in 2.5 s (POD_RECHECK)
