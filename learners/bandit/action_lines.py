"""The VW text of a catalog's actions, formatted once and shared by every request."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from learners.bandit.vw_format import EMPTY_LINE, action_namespaces
from learners.catalog import Catalog


class ActionLines:
    """VW text of every action of one catalog, formatted once and reused by every request
    (re-formatted only when the set of drifting models changes).

    ``slot_lines`` holds each distinct model, temperature and template namespace once, and
    ``slots[i]`` the positions of action ``i``'s three namespaces in it.

    With ``drop_constant``, a namespace that is the same for every action of the catalog (one
    temperature, one template) is left out: its features, and their crosses with the context,
    would score every action alike."""

    def __init__(self, catalog: Catalog, drifting: frozenset[str] = frozenset(),
                 drop_constant: bool = False) -> None:
        self.fingerprint = catalog.fingerprint
        self.drifting = drifting
        self.key = f"{catalog.fingerprint}|{','.join(sorted(drifting))}|{drop_constant}"
        parts = [action_namespaces(a, a.model.name in drifting) for a in catalog.actions]
        if drop_constant and len(parts) > 1:
            constant = [len({p[k] for p in parts}) == 1 for k in range(3)]
            model, temperature, template = (EMPTY_LINE if c else None for c in constant)
            parts = [(model or p[0], temperature or p[1], template or p[2]) for p in parts]
        self.lines: tuple[str, ...] = tuple(" ".join(p) for p in parts)
        position: dict[str, int] = {}
        for namespaces in parts:
            for text in namespaces:
                position.setdefault(text, len(position))
        self.slot_lines: tuple[str, ...] = tuple(position)
        self.slots: NDArray[np.intp] = np.array(
            [[position[text] for text in namespaces] for namespaces in parts], dtype=np.intp
        ).reshape(len(parts), 3)
        # Each slot column on its own (contiguous), and every action in catalog order: what a
        # request without constraints allows, so its costs need no gather by ``indices``.
        self.slot_columns: tuple[NDArray[np.intp], ...] = tuple(
            np.ascontiguousarray(self.slots[:, k]) for k in range(3))
        self.all_indices: list[int] = list(range(len(parts)))

    def select(self, indices: Sequence[int]) -> list[str]:
        lines = self.lines
        return [lines[i] for i in indices]
