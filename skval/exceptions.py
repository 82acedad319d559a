"""The errors skval raises besides scikit-learn's own."""

from __future__ import annotations

__all__ = ["NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """Raised when the LossVal loss becomes NaN or infinite during ``fit``.

    A subclass of ``FloatingPointError``. The message names the epoch and what to
    try: a smaller ``lr`` or ``weight_lr``, standardised features, or
    ``ot_method="exact"``.

    Examples
    --------
    >>> from skval.exceptions import NonFiniteLossError
    >>> issubclass(NonFiniteLossError, FloatingPointError)
    True
    """
