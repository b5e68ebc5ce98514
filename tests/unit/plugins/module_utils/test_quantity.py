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
