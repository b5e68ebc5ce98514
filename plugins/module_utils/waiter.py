# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection waits (the shape of kubernetes.core's ``Waiter``).

A deadline on a monotonic clock, a step that observes and says what it saw — done, keep waiting, or failed
now — jittered backoff between steps (the step may ask for a different pause: slow while a download runs,
fast once vLLM loads), and progress lines whenever what is seen changes. Every module that waits uses it:
``llm_endpoint``, ``llm_endpoint_progress``, ``vllm_ready``, ``rollout_verify``, ``s3_sync_verify``.
"""

from __future__ import annotations

import random
import time

from ansible_collections.odp.model_engine.plugins.module_utils.errors import WaitError

DONE, WAIT, FAIL = "done", "wait", "fail"


class Poll(object):
    """What one step saw. ``value`` is returned (DONE) or carried in the error (FAIL, deadline);
    ``message`` is the progress line; ``sleep`` overrides the next pause; ``result`` goes into a failure;
    ``reason`` names the failure (the verdict's cause)."""

    def __init__(self, outcome, value=None, message="", **kw):
        self.outcome = outcome
        self.value = value
        self.message = message
        self.sleep = kw.get("sleep")
        self.result = kw.get("result") or {}
        self.reason = kw.get("reason")


def done(value=None, message="", **kw):
    return Poll(DONE, value, message, **kw)


def keep_waiting(value=None, message="", **kw):
    return Poll(WAIT, value, message, **kw)


def failed(value=None, message="", **kw):
    return Poll(FAIL, value, message, **kw)


class Clock(object):
    """Time as the Waiter sees it (tests substitute a fake one): a monotonic clock, sleep, and the jitter's
    random source; pauses are jittered by +-``jitter`` of their length."""

    jitter = 0.1

    def now(self):
        return time.monotonic()

    def sleep(self, seconds):
        time.sleep(seconds)

    def random(self):
        return random.random()


class Waiter(object):
    """Call ``step(elapsed)`` until it is done, it fails, or ``timeout`` seconds have passed.

    Pauses start at ``initial_sleep`` and double up to ``sleep`` (each jittered), unless the step asks for its
    own. ``progress(elapsed, message)`` is called when the step's message changes.
    """

    def __init__(self, timeout, sleep=5.0, initial_sleep=None, progress=None, clock=None):
        self.timeout = float(timeout)
        self.sleep = max(0.0, float(sleep))
        self.initial_sleep = self.sleep if initial_sleep is None else min(float(initial_sleep), self.sleep)
        self.progress = progress
        self.clock = clock or Clock()
        self.steps = 0
        self.lines = []

    def _pause(self, delay, remaining):
        delay = delay * (1 + self.clock.jitter * (2 * self.clock.random() - 1))
        return max(0.0, min(delay, remaining))

    def wait(self, step):
        """(value, elapsed) once ``step`` is done; WaitError (with the last value's result) otherwise."""
        start = self.clock.now()
        delay = self.initial_sleep
        last_message = None
        while True:
            elapsed = self.clock.now() - start
            self.steps += 1
            poll = step(elapsed)
            if poll.message and poll.message != last_message:
                last_message = poll.message
                self.lines.append("[%5.0fs] %s" % (elapsed, poll.message))
                if self.progress:
                    self.progress(elapsed, poll.message)
            if poll.outcome == DONE:
                return poll.value, elapsed
            if poll.outcome == FAIL:
                raise WaitError(poll.message, elapsed=round(elapsed, 1), failure=poll.reason or "failed", progress=list(self.lines),
                                **poll.result)
            if elapsed >= self.timeout:
                raise WaitError("Timed out after %ds: %s" % (elapsed, poll.message or "still waiting"), elapsed=round(elapsed, 1),
                                failure="timeout", progress=list(self.lines), **poll.result)
            pause = poll.sleep if poll.sleep is not None else delay
            self.clock.sleep(self._pause(pause, self.timeout - elapsed))
            delay = min(self.sleep, max(delay * 2, 0.05))
