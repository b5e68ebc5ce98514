"""Adaptive readiness polling: slow while the model downloads (at its ETA), fast once the files are complete."""

from __future__ import annotations

import types

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import readiness as R


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
    r = R.Readiness(module, kube=None, observer=obs, gateway=None)
    r.pod = {"status": {"containerStatuses": [{"name": "main", "ready": False}]}}
    r.summary = {"name": "p"}
    return r, t


def test_downloading_polls_at_the_eta_and_never_faster_than_needed():
    r, t = make(expected=10_000_000, rate=10_000)   # 1000 s to go at 10 kB/s
    pauses = []
    for _sample in range(3):
        pauses.append(r._download_pause())
        t["now"] += 10
    assert pauses[0] == R.FIRST_RATE_SAMPLE      # one sample: no rate yet, a second one soon
    assert pauses[1] == R.SLOW and pauses[2] == R.SLOW   # far from done: the slowest pace
    assert r.requests["exec"] == 3


def test_near_the_end_it_looks_at_the_eta_then_switches_to_fast_health_checks():
    r, t = make(expected=300_000, rate=10_000)
    first = r._download_pause()
    t["now"] += 10
    second = r._download_pause()        # 100 kB/s... 0.8 x ETA of the remaining bytes
    assert first == R.FIRST_RATE_SAMPLE and R.FAST <= second < R.SLOW
    while r._download_pause() is not None:
        t["now"] += 10
    assert r.files_complete is True
