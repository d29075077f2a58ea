"""qmskpi.spc.factors: the control chart factors against their definitions and the printed table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qmskpi import spc


def _phi(x: np.ndarray) -> np.ndarray:
    erf: np.ndarray = np.vectorize(math.erf)(x / math.sqrt(2.0))
    return 0.5 * (1.0 + erf)


@pytest.mark.parametrize("n", range(2, 26))
def test_constants_match_their_definitions(n: int) -> None:
    k = spc.constants(n)
    # c4 = sqrt(2/(n-1)) Γ(n/2)/Γ((n-1)/2), printed to 4 decimals
    c4 = math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    assert k.c4 == pytest.approx(c4, abs=5e-5)
    # d2 = ∫ 1 - Φ(x)^n - (1 - Φ(x))^n dx, printed to 3 decimals
    x = np.linspace(-10, 10, 20001)
    big_phi = _phi(x)
    d2 = float(np.sum(1 - big_phi**n - (1 - big_phi) ** n) * (x[1] - x[0]))
    assert k.d2 == pytest.approx(d2, abs=5e-4)
    a2, a3, d3_, d4_, b3, b4 = k.A2, k.A3, k.D3, k.D4, k.B3, k.B4
    # A2 = 3/(d2 √n), A3 = 3/(c4 √n): the table rounds each factor separately
    assert a2 == pytest.approx(3 / (k.d2 * math.sqrt(n)), abs=1e-3)
    assert a3 == pytest.approx(3 / (k.c4 * math.sqrt(n)), abs=1e-3)
    # D3, D4 = max(0, 1 ∓ 3 d3/d2) from the printed d3, d2: their rounding (±0.0005)
    # moves 3·d3/d2 by up to ~0.0017 (n = 2: 1 + 3·0.853/1.128 = 3.2686 vs 3.267).
    assert d3_ == pytest.approx(max(0.0, 1 - 3 * k.d3 / k.d2), abs=2e-3)
    assert d4_ == pytest.approx(1 + 3 * k.d3 / k.d2, abs=2e-3)
    # B3, B4 = max(0, 1 ∓ 3 √(1 - c4²)/c4)
    spread = 3 * math.sqrt(1 - c4**2) / c4
    assert b3 == pytest.approx(max(0.0, 1 - spread), abs=1e-3)
    assert b4 == pytest.approx(1 + spread, abs=1e-3)


def test_constants_for_n5_are_the_printed_table() -> None:
    # Montgomery Appendix VI, n = 5: A2 0.577, A3 1.427, c4 0.9400, B4 2.089,
    # d2 2.326, d3 0.864, D4 2.114; and the XmR factors 2.66 = 3/1.128, 3.267 = D4(2).
    k = spc.constants(5)
    assert (k.A2, k.A3, k.c4, k.B3, k.B4, k.d2, k.d3, k.D3, k.D4) == (
        0.577, 1.427, 0.9400, 0.0, 2.089, 2.326, 0.864, 0.0, 2.114,
    )  # fmt: skip
    assert spc.constants(2).D4 == spc.MR_LIMIT == 3.267
    assert round(3 / spc.constants(2).d2, 2) == spc.XMR_LIMIT


@pytest.mark.parametrize("n", [0, 1, 26])
def test_constants_outside_table_raise(n: int) -> None:
    with pytest.raises(spc.SpcError, match=r"2\.\.25"):
        spc.constants(n)
