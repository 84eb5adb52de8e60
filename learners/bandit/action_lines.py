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
    ``slots[i]`` the positions of action ``i``'s three namespaces in it."""

    def __init__(self, catalog: Catalog, drifting: frozenset[str] = frozenset()) -> None:
        self.fingerprint = catalog.fingerprint
        self.drifting = drifting
        self.key = f"{catalog.fingerprint}|{','.join(sorted(drifting))}"
        parts = [action_namespaces(a, a.model.name in drifting) for a in catalog.actions]
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

    def varying_lines(self, indices: Sequence[int]) -> list[str] | None:
        """The lines of the actions ``indices`` without the namespaces they all share (one
        temperature, one template among them); None when every namespace varies among them, or
        only one action is given."""
        if len(indices) < 2:
            return None
        rows = self.slots[np.asarray(indices, dtype=np.intp)]
        shared = (rows == rows[0]).all(axis=0).tolist()
        if not any(shared):
            return None
        slot_lines = self.slot_lines
        return [" ".join(EMPTY_LINE if shared[k] else slot_lines[row[k]] for k in range(3))
                for row in rows.tolist()]
