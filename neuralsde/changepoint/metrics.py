"""Segmentation metrics missing from ``ruptures.metrics``: F1 with a margin and covering."""

from __future__ import annotations


def _check(true_bkps, pred_bkps) -> tuple[list[int], list[int]]:
    t, p = [int(b) for b in true_bkps], [int(b) for b in pred_bkps]
    if not t or not p or t[-1] != p[-1]:
        raise ValueError(
            f"true_bkps and pred_bkps must both end with the series length n; got "
            f"{t[-1:] or 'empty'} and {p[-1:] or 'empty'}"
        )
    return t, p


def f1_score(true_bkps, pred_bkps, margin: int) -> float:
    """F1 of the change points (the final ``n`` excluded) with a tolerance ``margin``.

    Precision and recall come from ``ruptures.metrics.precision_recall`` (each true point is
    matched at most once within ``margin``); with no true and no predicted change F1 = 1, with
    exactly one of the two empty F1 = 0.

    Example:
        >>> f1_score([100, 300], [103, 200, 300], margin=5)
        0.6666666666666666
    """
    from ruptures.metrics import precision_recall

    t, p = _check(true_bkps, pred_bkps)
    if len(t) == 1 and len(p) == 1:
        return 1.0
    if len(t) == 1 or len(p) == 1:
        return 0.0
    prec, rec = precision_recall(t, p, margin=margin)
    return 0.0 if prec + rec == 0 else float(2 * prec * rec / (prec + rec))


def covering(true_bkps, pred_bkps) -> float:
    """Covering of the true segmentation by the predicted one (Arbelaez et al. 2011; van den
    Burg & Williams 2020): ``1/n sum_{A true} |A| max_{A' predicted} |A & A'| / |A | A'|``.

    Example:
        >>> covering([50, 100], [50, 100]), round(covering([50, 100], [100]), 3)
        (1.0, 0.5)
    """
    t, p = _check(true_bkps, pred_bkps)
    seg_t = list(zip([0, *t[:-1]], t, strict=True))
    seg_p = list(zip([0, *p[:-1]], p, strict=True))
    total = 0.0
    for a0, a1 in seg_t:
        best = 0.0
        for b0, b1 in seg_p:
            inter = max(0, min(a1, b1) - max(a0, b0))
            union = max(a1, b1) - min(a0, b0)
            best = max(best, inter / union)
        total += (a1 - a0) * best
    return float(total / t[-1])


__all__ = ["covering", "f1_score"]
