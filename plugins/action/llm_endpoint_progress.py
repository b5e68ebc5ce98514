# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of llm_endpoint_progress: with ``wait``, repeat the module on the controller and print each
progress line as it comes (the shape of ansible-core's wait_for_connection), using the collection's Waiter."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.errors import WaitError

display = Display()
MODULE = "odp.model_engine.llm_endpoint_progress"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _check(self, args, previous, task_vars):
        return self._execute_module(module_name=MODULE, module_args=dict(args, wait=False, previous=previous), task_vars=task_vars)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        wait = boolean(args.get("wait", False), strict=False)
        if not wait:
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result
        sleep = float(args.get("wait_sleep") or 5)
        state = {"previous": dict(args.pop("previous", None) or {}), "last": None}
        host = task_vars.get("inventory_hostname", "localhost") if task_vars else "localhost"

        def step(_elapsed):
            res = self._check(args, state["previous"], task_vars)
            state["last"] = res
            if res.get("failed"):
                return waiter.failed(res, res.get("msg") or "the check failed", reason="error")
            state["previous"] = res.get("sample") or {}
            display.display("%s | %s" % (host, res.get("line")))
            outcome = {waiter.DONE: waiter.done, waiter.FAIL: waiter.failed}.get(res.get("outcome"), waiter.keep_waiting)
            return outcome(res, res.get("reason"), reason=res.get("cause"), sleep=sleep)

        first = step(0)  # the first check says how long the whole wait may take
        timeout = float(args.get("wait_timeout") or (first.value or {}).get("wait_timeout") or 3600)
        pending = [first]

        def replay_then_step(elapsed):
            return pending.pop() if pending else step(elapsed)

        w = waiter.Waiter(timeout, sleep=sleep, initial_sleep=sleep)
        try:
            w.wait(replay_then_step)
        except WaitError as e:
            result.update(state["last"] or {})
            result.update(failed=True, msg=str(e), lines=w.lines, failure=e.result.get("failure"))
            return result
        result.update(state["last"] or {})
        result.update(lines=w.lines, changed=False)
        return result
