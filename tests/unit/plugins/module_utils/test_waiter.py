"""The one Waiter: deadline, fail-now, backoff with jitter, per-step pauses, progress lines (a fake clock)."""

from __future__ import annotations

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.errors import WaitError


class Clock(waiter.Clock):
    def __init__(self, rand=0.5, jitter=0.1):
        self.t = 0.0
        self.pauses = []
        self.rand = rand
        self.jitter = jitter

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.pauses.append(round(seconds, 3))
        self.t += seconds

    def random(self):
        return self.rand


def make(timeout=100, **kw):
    clock = Clock()
    return clock, waiter.Waiter(timeout, clock=clock, **kw)


def test_done_returns_the_value_and_the_time_it_took():
    clock, w = make(sleep=4, initial_sleep=1)
    answers = iter([waiter.keep_waiting(message="a"), waiter.keep_waiting(message="a"), waiter.keep_waiting(message="b"),
                    waiter.done("v", "c")])
    value, elapsed = w.wait(lambda _e: next(answers))
    assert value == "v" and clock.pauses == [1, 2, 4] and elapsed == 7
    assert [line.split("] ")[1] for line in w.lines] == ["a", "b", "c"]  # one line per change


def test_failed_stops_at_once_with_the_reason_and_the_result():
    _clock, w = make()
    with pytest.raises(WaitError) as err:
        w.wait(lambda _e: waiter.failed(message="pod p cannot be scheduled", reason="unschedulable_gpu", result={"state": "failed"}))
    assert err.value.result["failure"] == "unschedulable_gpu" and err.value.result["state"] == "failed"
    assert str(err.value) == "pod p cannot be scheduled" and w.steps == 1


def test_the_deadline_names_the_last_observation():
    clock, w = make(timeout=30, sleep=10)
    with pytest.raises(WaitError) as err:
        w.wait(lambda _e: waiter.keep_waiting(message="downloading 40%"))
    assert err.value.result["failure"] == "timeout" and "downloading 40%" in str(err.value)
    assert clock.t == 30  # the last pause is cut to the deadline


def test_a_step_may_ask_for_its_own_pause():
    clock, w = make(sleep=10)
    answers = iter([waiter.keep_waiting(sleep=30), waiter.keep_waiting(sleep=0.2), waiter.done()])
    w.wait(lambda _e: next(answers))
    assert clock.pauses == [30, 0.2]


def test_jitter_spreads_pauses():
    clock = Clock(rand=1.0)
    w = waiter.Waiter(100, sleep=10, initial_sleep=10, clock=clock)
    answers = iter([waiter.keep_waiting(), waiter.done()])
    w.wait(lambda _e: next(answers))
    assert clock.pauses == [11.0]
