"""Plots are optional: matplotlib comes with the ``plots`` extra, not with the service.

A command that was asked for a plot checks first, so that a long run does not end in an
``ImportError``.
"""

from __future__ import annotations

import importlib.util

PLOTS_INSTALL = "pip install 'adaptive-router[plots]'"


def plots_unavailable() -> str | None:
    """Why no plot can be drawn here (matplotlib is not installed), or None when one can."""
    if importlib.util.find_spec("matplotlib") is None:
        return f"plots need matplotlib, which is not installed ({PLOTS_INSTALL})"
    return None
