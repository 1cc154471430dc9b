"""Small statistics for reports: mean ± std over seeds and a paired Student-t interval.

A claim such as "the distilled student beats the same network trained from scratch" is only as
good as its spread over seeds: one lucky seed proves nothing. The report therefore compares
paired per-seed differences and states a confidence interval of their mean.

Pure Python on purpose: the device side must not need scipy (or torch), and the t quantile is
computed here from the regularized incomplete beta function rather than from a table, so any
confidence level works.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

_EPS = 3e-16
_TINY = 1e-300


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1 in the denominator).

    The std is None below two values: a single seed says nothing about spread, and printing
    "± 0.00" would claim a precision the run never measured. Nothing at all gives (None, None).
    """
    xs = [float(v) for v in values]
    if not xs:
        return None, None
    mean = math.fsum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast only on one side of the mean; use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, by bisection on ``t_cdf`` (monotone, so bisection cannot miss)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs 0 < p < 1, got {p}")
    if df <= 0:
        raise ValueError(f"t_quantile needs df > 0, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def paired_interval(a: Sequence[float], b: Sequence[float], confidence: float) -> dict[str, Any]:
    """Two-sided Student-t interval of the mean of the paired differences a_i - b_i.

    Pairing (same seed for both) removes the seed-to-seed variation the two share, so a small
    but consistent gain can be proven with few seeds. With one pair there is no spread to
    estimate, so ``low`` and ``high`` are None and callers must treat the comparison as unproven.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_interval needs equal lengths, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired_interval needs at least one pair")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    differences = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    mean, std = mean_std(differences)
    n = len(differences)
    low = high = None
    if std is not None:
        half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
        low, high = mean - half, mean + half
    return {"n": n, "differences": differences, "mean": mean, "std": std, "low": low, "high": high}
