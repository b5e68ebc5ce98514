from __future__ import annotations

from decimal import Decimal

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.quantity import (
    QuantityError,
    format_bytes,
    parse_quantity,
    quantity_to_bytes,
    quantity_to_cores,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("50Gi", 50 * 2 ** 30),
        ("16Gi", 16 * 2 ** 30),
        ("189Gi", 189 * 2 ** 30),
        ("100M", 100 * 10 ** 6),
        ("1G", 10 ** 9),
        ("512Ki", 512 * 1024),
        ("1.5Gi", 3 * 2 ** 29),
        ("1e3", 1000),
        ("1E3", 1000),
        ("2E", 2 * 10 ** 18),  # E alone is the exa suffix, not an exponent
        ("4", 4),
        (4, 4),
        (" 8Mi ", 8 * 2 ** 20),
        ("0", 0),
    ],
)
def test_bytes(value, expected):
    assert quantity_to_bytes(value) == expected


def test_fractional_bytes_round_up_like_kubernetes():
    assert quantity_to_bytes("1500m") == 2


@pytest.mark.parametrize("value, expected", [("500m", 0.5), ("4", 4.0), (2.5, 2.5), ("100m", 0.1), ("1", 1.0)])
def test_cores(value, expected):
    assert quantity_to_cores(value) == pytest.approx(expected)


def test_decimal_precision_kept():
    assert parse_quantity("0.1") + parse_quantity("0.2") == Decimal("0.3")


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("50GB", "not a Kubernetes quantity"),
        ("fifty", "not a Kubernetes quantity"),
        ("", "not a Kubernetes quantity"),
        ("Gi", "not a Kubernetes quantity"),
        ("50 Gi", "not a Kubernetes quantity"),
        ("-1Gi", "must not be negative"),
        (-3, "must not be negative"),
        (True, "not a Kubernetes quantity"),
        (None, "not a Kubernetes quantity"),
        (float("nan"), "not a finite number"),
        ("1.2.3", "not a Kubernetes quantity"),
        ("50gi", "not a Kubernetes quantity"),
    ],
)
def test_bad_inputs_name_the_field_and_rule(value, fragment):
    with pytest.raises(QuantityError) as err:
        parse_quantity(value, field="storage")
    assert str(err.value).startswith("storage: ")
    assert fragment in str(err.value)


@pytest.mark.parametrize("num, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (50 * 2 ** 30, "50.0 GiB")])
def test_format_bytes(num, text):
    assert format_bytes(num) == text


# ------------------------------------------------------------------ against the kubernetes client's parser
# Every form both parsers accept must read the same; where they differ, ours follows apimachinery's
# resource.Quantity (the API server decides, not the client) and is stricter on purpose.
SAME = ["50Gi", "16Gi", "1Mi", "512Ki", "1.5Gi", "1Ei", "100M", "1G", "100k", "2E", "1e3", "1E3", "1e-3", "4", "0", ".5", "5.",
        "+5", "500m", "1m", "1u", "1n", "0.1", 4, 0, 2.5]
OURS_STRICTER = {
    "1K": "apimachinery has no upper-case K (kubernetes.utils reads it as k)",
    "-1Gi": "a resource request cannot be negative",
    "NaN": "not a number",
    "Infinity": "not a number",
}
BOTH_REFUSE = ["1ki", "50gi", "12e", "Gi", "50GB", "fifty", "1.2.3"]


@pytest.mark.parametrize("form", SAME, ids=[repr(f) for f in SAME])
def test_reads_like_the_kubernetes_client(form):
    kubernetes_utils = pytest.importorskip("kubernetes.utils")
    assert parse_quantity(form) == kubernetes_utils.parse_quantity(form)


@pytest.mark.parametrize("form", sorted(OURS_STRICTER), ids=sorted(OURS_STRICTER))
def test_stricter_than_the_kubernetes_client_where_the_api_server_refuses(form):
    kubernetes_utils = pytest.importorskip("kubernetes.utils")
    kubernetes_utils.parse_quantity(form)  # the client takes it ...
    with pytest.raises(QuantityError):  # ... we do not (OURS_STRICTER says why)
        parse_quantity(form)


@pytest.mark.parametrize("form", BOTH_REFUSE)
def test_both_refuse(form):
    kubernetes_utils = pytest.importorskip("kubernetes.utils")
    with pytest.raises(ValueError):
        kubernetes_utils.parse_quantity(form)
    with pytest.raises(QuantityError):
        parse_quantity(form)
