# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The wait options every waiting module shares (one Waiter: deadline, jittered backoff, fail fast)."""

    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Wait until the condition the module describes holds. The wait stops at once, with the cause and the fix,
        when the judge sees a state that waiting cannot change (see the module's description).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait in total. When not set, the module's automatic timeout applies. For an endpoint that is the S3
        tool install allowance, plus the checkpoint's size in S3 at C(min_download_rate), plus 15 minutes to load
        (4 hours when the size cannot be read).
    type: int
  wait_sleep:
    description:
      - Longest pause between two checks. The pauses start short and double up to this value, each with a little
        random jitter.
    type: float
    default: 5
"""
