"""The core's error types.

One class for every refused argument, after scikit-learn's ``InvalidParameterError``: it is
both a :class:`ValueError` and a :class:`TypeError`, so ``except ValueError`` and
``except TypeError`` keep working, and it carries the argument's name in ``.param`` so that
callers (the service maps it to a request field) never parse the message.
"""
from __future__ import annotations

from typing import Any

__all__ = ["InvalidParameterError"]


class InvalidParameterError(ValueError, TypeError):
    """An argument of a public function of the core was refused.

    Parameters
    ----------
    message : str
        What is wrong, with the argument's name, its shape or value and the fix.
    param : str
        The name of the refused argument as the caller wrote it (``"x"``, ``"depth"``,
        ``"a"``, ``"x2"``, ...).
    """

    def __init__(self, message: str, *, param: str):
        super().__init__(message)
        self.param = param

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as cls(*args), which lacks the keyword ``param`` (a refusal raised
        # on a Dask worker must reach the caller whole).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(cls: type[InvalidParameterError], args: tuple[Any, ...], state: dict[str, Any]) -> InvalidParameterError:
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err
