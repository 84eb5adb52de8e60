"""The action catalog: every (model, temperature, template) triple the configuration allows."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated

import msgspec
from msgspec import Meta

Name = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^|\s]+$")]
Price = Annotated[float, Meta(ge=0.0, le=1_000_000.0)]
Temperature = Annotated[float, Meta(ge=0.0, le=2.0)]

ACTION_SEPARATOR = "|"


class CatalogError(ValueError):
    """The catalog configuration is inconsistent (duplicate names, empty lists, ...)."""


class ModelSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One generation model with its prices (USD per million tokens) and typical latency."""

    name: Name
    input_price_per_mtok: Price
    output_price_per_mtok: Price
    typical_latency_s: Annotated[float, Meta(gt=0.0, le=3600.0)]
    temperatures: list[Temperature] | None = None
    tier: Annotated[str, Meta(max_length=64)] = ""
    context_window: Annotated[int, Meta(ge=0)] = 0


class TemplateSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One prompt template; ``languages`` empty means usable for every language."""

    name: Name
    languages: list[Annotated[str, Meta(min_length=1, max_length=64)]] = []
    prompt_tokens: Annotated[int, Meta(ge=0, le=1_000_000)] = 300
    output_factor: Annotated[float, Meta(gt=0.0, le=100.0)] = 1.0
    style: Annotated[str, Meta(max_length=64)] = ""


class Action(msgspec.Struct, frozen=True):
    """One catalog entry. ``index`` is its position in :attr:`Catalog.actions`."""

    index: int
    model: ModelSpec
    temperature: float
    template: TemplateSpec

    @property
    def id(self) -> str:
        return format_action_id(self.model.name, self.temperature, self.template.name)

    def allows_language(self, language: str) -> bool:
        langs = self.template.languages
        return not langs or language.lower() in (lang.lower() for lang in langs)


def format_action_id(model: str, temperature: float, template: str) -> str:
    """Stable textual id of an action, e.g. ``frontier-large|0.2|plain``."""
    return f"{model}{ACTION_SEPARATOR}{temperature:g}{ACTION_SEPARATOR}{template}"


class Catalog:
    """Immutable expansion of models × temperatures × templates into indexed actions."""

    def __init__(
        self,
        *,
        models: list[ModelSpec],
        templates: list[TemplateSpec],
        temperatures: Sequence[float],
    ) -> None:
        self.models = tuple(models)
        self.templates = tuple(templates)
        self.temperatures = tuple(temperatures)
        _check_unique("models", [m.name for m in models])
        _check_unique("templates", [t.name for t in templates])
        if not models:
            raise CatalogError("models: the catalog needs at least one model")
        if not templates:
            raise CatalogError("templates: the catalog needs at least one template")
        actions: list[Action] = []
        for model in models:
            temps = model.temperatures if model.temperatures is not None else temperatures
            if not temps:
                raise CatalogError(f"models.{model.name}.temperatures: no temperature to use")
            for temperature in sorted(set(temps)):
                for template in templates:
                    actions.append(Action(len(actions), model, float(temperature), template))
        self.actions: tuple[Action, ...] = tuple(actions)
        self._by_id = {a.id: a for a in actions}
        self._by_language: dict[str, tuple[int, ...]] = {}
        self.model_names = frozenset(m.name for m in models)
        self.template_names = frozenset(t.name for t in templates)
        # In catalog order; one tuple per catalog, so per-decision caches keyed on it hold.
        self.model_order = tuple(m.name for m in models)
        self.template_order = tuple(t.name for t in templates)
        self.fingerprint = hashlib.sha256(
            msgspec.json.encode([models, templates, list(temperatures)])
        ).hexdigest()[:16]

    def indices_for_language(self, language: str) -> tuple[int, ...]:
        """Indices of the actions whose template allows ``language`` (cached per language)."""
        key = language.lower()
        cached = self._by_language.get(key)
        if cached is None:
            cached = tuple(a.index for a in self.actions if a.allows_language(key))
            if len(self._by_language) < 10_000:  # open vocabulary: bound the cache
                self._by_language[key] = cached
        return cached

    def __len__(self) -> int:
        return len(self.actions)

    def get(self, action_id: str) -> Action | None:
        return self._by_id.get(action_id)

    def to_json(self) -> bytes:
        """The catalog as JSON; :meth:`from_json` restores an identical catalog."""
        return msgspec.json.encode(
            {"models": self.models, "templates": self.templates, "temperatures": self.temperatures}
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Catalog:
        snapshot = msgspec.json.decode(raw, type=_CatalogSnapshot)
        return cls(
            models=snapshot.models, templates=snapshot.templates, temperatures=snapshot.temperatures
        )


class _CatalogSnapshot(msgspec.Struct, frozen=True):
    models: list[ModelSpec]
    templates: list[TemplateSpec]
    temperatures: list[float]


def _check_unique(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CatalogError(f"{section}: name {name!r} appears twice")
        seen.add(name)
