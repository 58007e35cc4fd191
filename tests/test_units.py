"""Human-readable numbers: SI prefixes, durations, ratios."""

import pytest

from torchcost.units import duration, ratio, si


@pytest.mark.parametrize(
    ("value", "reference", "shown"),
    [
        (3, 100, "0.03x"),
        (2, 1, "2.00x"),
        (1, 100, "0.01x"),
        (1, 8100, "0.00012x"),  # 1.23e-4, two significant digits instead of "0.00x"
        (5, 1e9, "0.0000000050x"),
        (0, 7, "0.00x"),
        (1, 0, "n/a"),
    ],
)
def test_ratio_keeps_two_significant_digits_below_one_percent(value, reference, shown):
    assert ratio(value, reference) == shown


def test_si_and_duration():
    assert si(4_089_184_256) == "4.09 G" and si(102_228_128, "B") == "102.23 MB" and si(999) == "999"
    assert duration(0.0123) == "12.30 ms" and duration(4.5e-5) == "45.00 µs" and duration(3e-9) == "3 ns"
