"""``--workload module:function``: a function of the user's that takes a DB-API connection
and does what one request does, imported from the current directory or ``sys.path``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from .errors import CommandError

__all__ = ["load_function"]


def _import(module_name: str, spec: str) -> Any:
    # The command runs from the application's directory, as `python -m` would: its
    # modules import from there even when the poolwarden script's sys.path lacks it.
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise CommandError(
                f"--workload {spec}: cannot import the module {module_name!r}: no such module "
                f"in the current directory ({here}) or on sys.path"
            ) from None
        raise CommandError(f"--workload {spec}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        raise CommandError(
            f"--workload {spec}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        if added:
            sys.path.remove(here)


def load_function(spec: str) -> Callable[[Any], object]:
    """The callable ``spec`` (``package.module:function``, the function part may be
    dotted: ``module:Class.method``) names; CommandError saying what is wrong."""
    module_name, _, attribute = spec.partition(":")
    found: Any = _import(module_name, spec)
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise CommandError(
                f"--workload {spec}: the module {module_name!r} has no {attribute!r} "
                "(give module:function, a function taking a DB-API connection)"
            )
        found = getattr(found, part)
    if not callable(found):
        raise CommandError(
            f"--workload {spec}: {attribute!r} is not callable (its type is "
            f"{type(found).__name__}): give module:function, a function taking a DB-API "
            "connection"
        )
    function: Callable[[Any], object] = found
    return function
