# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes resource quantities (``50Gi``, ``16Gi``, ``500m``, ``4``, ``1e3``).

Follows the grammar of k8s.io/apimachinery ``resource.Quantity``:
``<signed number><suffix>`` where suffix is a binary SI suffix (Ki..Ei), a decimal SI suffix
(n, u, m, "", k, M, G, T, P, E) or a decimal exponent (``e3``, ``E-2``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from ansible_collections.odp.model_engine.plugins.module_utils.errors import SpecError

_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY_RE = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)$"
)


class QuantityError(SpecError):
    """A value is not a valid Kubernetes quantity (a SpecError, so a ValueError too)."""


def parse_quantity(value, field="quantity"):
    """Return the quantity as a Decimal in base units (bytes, cores, ...).

    ``field`` names the option in error messages. Booleans, empty strings, negative values and
    unknown suffixes are rejected.
    """
    if isinstance(value, bool) or value is None:
        raise QuantityError("%s: %r is not a Kubernetes quantity (expected e.g. 50Gi, 16Gi, 500m or 4)" % (field, value))
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise QuantityError("%s: %r is not a finite number" % (field, value))
        number = Decimal(str(value))
    else:
        text = str(value).strip()
        match = _QUANTITY_RE.match(text)
        if not match:
            raise QuantityError(
                "%s: %r is not a Kubernetes quantity (expected a number with an optional suffix: "
                "Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E, or an exponent like 1e3)" % (field, value)
            )
        try:
            number = Decimal(match.group("number"))
        except InvalidOperation:  # pragma: no cover - the regex only lets valid decimals through
            raise QuantityError("%s: %r has an invalid number" % (field, value))
        suffix = match.group("suffix")
        if suffix in _BINARY:
            number *= _BINARY[suffix]
        elif suffix[:1] in ("e", "E") and len(suffix) > 1:
            number = number.scaleb(int(suffix[1:]))
        else:
            number *= _DECIMAL[suffix]
    if number < 0:
        raise QuantityError("%s: %r must not be negative" % (field, value))
    return number


def quantity_to_bytes(value, field="quantity"):
    """Bytes as an int, rounded up like the Kubernetes API rounds fractional byte quantities."""
    return int(parse_quantity(value, field).to_integral_value(rounding="ROUND_CEILING"))


def quantity_to_cores(value, field="quantity"):
    """CPU cores as a float (``500m`` -> 0.5)."""
    return float(parse_quantity(value, field))


def format_bytes(num):
    """Human-readable binary size, e.g. ``53687091200`` -> ``50.0 GiB``."""
    num = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(num) < 1024 or unit == "PiB":
            return "%d %s" % (num, unit) if unit == "B" else "%.1f %s" % (num, unit)
        num /= 1024.0
    return "%.1f EiB" % num  # pragma: no cover
