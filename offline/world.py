"""A simulated code-generation world with ground truth, for measuring routers against an oracle.

Tasks come from a realistic distribution (types, languages, frameworks, projects, agents, RAG
signals) with a latent true complexity that the generated description reflects only noisily.
Every (task, action) pair has a true verdict distribution built from interacting effects: model
skill with a model-dependent difficulty slope, model × language and model × task-type
affinities, template and temperature effects that depend on the task, project and per-task
luck. Everything is pure and seeded; nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np

from learners.catalog import Action, Catalog, ModelSpec
from learners.context import CallerContext, Rag, Task
from learners.estimates import estimate_action_cost
from learners.features import TECHNICAL_TERMS
from learners.reward import Outcome, RewardProfile, Verdict, compute_reward

# Task type: (weight, mean latent complexity, language weights).
TASK_TYPES: dict[str, tuple[float, float, dict[str, float]]] = {
    "backend": (0.24, 5.2, {"python": 35, "typescript": 14, "javascript": 7, "go": 17,
                            "java": 15, "rust": 6, "sql": 6}),
    "frontend": (0.17, 4.2, {"typescript": 55, "javascript": 40, "python": 5}),
    "data": (0.14, 4.8, {"python": 58, "sql": 34, "java": 4, "rust": 4}),
    "devops": (0.08, 4.0, {"python": 35, "go": 35, "typescript": 10, "rust": 10, "java": 10}),
    "algorithm": (0.12, 6.3, {"python": 40, "java": 15, "go": 10, "rust": 15, "typescript": 10,
                              "javascript": 10}),
    "testing": (0.11, 3.8, {"python": 40, "typescript": 25, "javascript": 15, "java": 15, "go": 5}),
    "refactor": (0.14, 5.0, {"python": 30, "typescript": 25, "javascript": 15, "java": 15,
                             "go": 10, "rust": 5}),
}
FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "python": ("fastapi", "django", "flask", "pandas", "pytest", "sqlalchemy"),
    "typescript": ("react", "nextjs", "nestjs", "express", "vue", "angular"),
    "javascript": ("react", "express", "vue", "svelte", "jquery"),
    "go": ("gin", "echo", "grpc-go", "cobra"),
    "java": ("spring", "quarkus", "junit", "hibernate"),
    "rust": ("tokio", "axum", "actix", "serde"),
    "sql": ("postgresql", "mysql", "sqlite", "dbt"),
}
AGENTS = ("implementation", "review", "testing", "refactor")
_SUBJECTS: dict[str, tuple[str, ...]] = {
    "backend": ("an endpoint that returns order history", "a service for user sign-up",
                "a background worker that processes invoices", "a handler for file uploads"),
    "frontend": ("a form component with inline errors", "a sortable data table",
                 "a dashboard page with charts", "a modal dialog for settings"),
    "data": ("a job that aggregates daily sales", "a query for monthly active users",
             "a transformation that cleans customer records", "a report of churned accounts"),
    "devops": ("a deployment script", "a health-check command", "a log rotation tool",
               "a configuration loader for services"),
    "algorithm": ("a function that finds shortest paths", "an interval merging routine",
                  "a rate limiter", "a tokenizer for arithmetic expressions"),
    "testing": ("unit tests for the payment module", "integration tests for the login flow",
                "property tests for the date parser", "tests for the export function"),
    "refactor": ("the billing module into smaller functions", "the legacy user repository",
                 "duplicated validation code", "the notification service"),
}
_VERBS = {"testing": "Write", "refactor": "Refactor"}
_DETAILS = ("It {modal} handle {term} correctly.", "Take care of {term} and {term2}.",
            "The code {modal} support {term}.", "Consider {term} when the input is large.",
            "Keep the public interface stable.", "Add clear error messages.",
            "Document the behaviour of {term}.", "Existing callers rely on {term2}.")
_REQUIREMENTS = ("return errors as structured objects", "log every failure",
                 "keep response time under 200 ms", "cover edge cases with tests",
                 "avoid global state", "support pagination", "validate all inputs",
                 "be backwards compatible", "use dependency injection", "handle timeouts")
_TERMS = tuple(sorted(TECHNICAL_TERMS))
# Tier: (skill, difficulty slope, quality skill, language affinities, task-type affinities).
_TIERS: dict[str, tuple[float, float, float, dict[str, float], dict[str, float]]] = {
    "frontier": (0.9, 0.15, 1.0, {"sql": -0.3, "rust": 0.3, "javascript": -0.2},
                 {"algorithm": 0.4, "refactor": 0.5, "frontend": -0.3, "data": -0.2}),
    "mid": (0.3, 0.30, 0.5, {"typescript": 0.6, "javascript": 0.7, "go": -0.5, "rust": -0.7},
            {"frontend": 1.0, "data": 0.4, "algorithm": -0.6}),
    "code": (0.5, 0.25, 0.6, {"go": 0.8, "rust": 0.9, "java": 0.5, "python": 0.3,
                              "sql": -0.7, "javascript": -0.6, "typescript": -0.3},
             {"algorithm": 0.9, "testing": 0.7, "backend": 0.4, "frontend": -1.1, "data": -0.4}),
    "small": (0.0, 0.50, 0.0, {"python": 0.3, "sql": 0.8, "rust": -0.8, "java": -0.3},
              {"devops": 0.7, "data": 0.6, "algorithm": -0.9, "testing": 0.2}),
    "local": (-0.3, 0.55, -0.3, {"python": 0.8, "javascript": 0.3, "rust": -0.9, "go": -0.5},
              {"testing": 0.8, "refactor": 0.5, "algorithm": -0.8}),
}


class WorldError(ValueError):
    """The world's parameters do not fit its catalog (unknown drift model, ...)."""


class RouteBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """The JSON body of ``POST /v1/route`` for a simulated task (DESIGN.md, HTTP contract)."""

    task: Task
    context: CallerContext
    features: dict[str, bool | float | str]
    objective: str
    request_id: str | None = None


class SimTask(msgspec.Struct, frozen=True):
    """A sampled task: what the caller sends plus the latent truth the router never sees."""

    step: int
    type: str
    language: str
    framework: str | None
    description: str
    requirements: tuple[str, ...]
    project_id: str
    user_id: str
    agent: str
    rag: Rag | None
    files_touched: int
    complexity: float  # latent truth, 0-10
    luck: float  # latent per-task logit shift shared by every action

    @property
    def task(self) -> Task:
        return Task(type=self.type, language=self.language, description=self.description,
                    framework=self.framework, requirements=list(self.requirements))

    @property
    def rag_strength(self) -> float:
        """How much useful retrieval the prompt gets, in [0, 1]."""
        if self.rag is None or self.rag.examples == 0:
            return 0.0
        return min(self.rag.examples, 5) / 5.0 * (self.rag.avg_similarity or 0.0)

    def route_body(self, request_id: str | None = None, objective: str = "balanced") -> RouteBody:
        caller = CallerContext(project_id=self.project_id, user_id=self.user_id,
                               agent=self.agent, rag=self.rag)
        return RouteBody(task=self.task, context=caller, objective=objective,
                         features={"files_touched": float(self.files_touched)},
                         request_id=request_id)


class SimOutcome(msgspec.Struct, frozen=True):
    """One drawn generation outcome."""

    verdict: Verdict
    quality: float
    generation_time_s: float
    cost_usd: float
    input_tokens: int
    output_tokens: int
    regenerations: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class _ModelTruth(msgspec.Struct, frozen=True):
    skill: float
    slope: float
    quality: float
    language: dict[str, float]
    task_type: dict[str, float]


class World:
    """Ground truth over a catalog: task distribution, outcome distribution, oracle.

    Parameters
    ----------
    catalog : the actions the world knows.
    seed : seeds the hidden structure (projects, users, affinity jitter) and default draws.
    drift_model, drift_at, drift_drop : from decision ``drift_at`` on, ``drift_model``'s success
        logit drops so that its success falls by about ``drift_drop``.
    noise : scale of all outcome noise (time, tokens, quality, per-task luck); 0 leaves only
        the verdict random.
    n_projects, n_users : sizes of the project and user populations.
    """

    # Success logit before any effect; tuned so that the default catalog under the balanced
    # profile gives uniform ≈ 0.53, best fixed action ≈ 0.67, per-task oracle ≈ 0.82.
    INTERCEPT = -0.75
    LANGUAGE_TEMPLATE_BONUS = 0.7

    def __init__(
        self, *, catalog: Catalog, seed: int | None = None, drift_model: str | None = None,
        drift_at: int | None = None, drift_drop: float = 0.35, noise: float = 1.0,
        n_projects: int = 36, n_users: int = 120,
    ) -> None:
        self.catalog = catalog
        self.seed = seed
        self.drift_model = drift_model
        self.drift_at = drift_at
        self.drift_drop = drift_drop
        self.noise = noise
        self.n_projects = n_projects
        self.n_users = n_users
        if drift_model is not None and drift_model not in catalog.model_names:
            raise WorldError(f"drift_model: {drift_model!r} is not a catalog model")
        if not 0.0 <= drift_drop < 0.7:
            raise WorldError("drift_drop: must lie in [0, 0.7)")
        self._rng = np.random.default_rng(seed)
        rng = self._rng
        self._project_difficulty = rng.normal(0.0, 1.1, n_projects)
        self._project_offset = rng.normal(0.0, 0.3, n_projects)
        self._models = {m.name: self._model_truth(m, rng) for m in catalog.models}
        self._template_jitter = {
            (t.name, kind): float(rng.normal(0.0, 0.12))
            for t in catalog.templates for kind in TASK_TYPES
        }
        # A logit shift that takes a 0.7 success down by drift_drop: the drop is about
        # drift_drop for the model's useful actions and smaller for ones that rarely succeed.
        self._drift_shift = _logit(0.7) - _logit(0.7 - drift_drop)

    @staticmethod
    def _model_truth(model: ModelSpec, rng: np.random.Generator) -> _ModelTruth:
        if model.tier in _TIERS:
            skill, slope, quality, lang, kind = _TIERS[model.tier]
        else:  # unknown tier: price says roughly how capable a model is
            skill = 0.45 * math.log10(model.output_price_per_mtok + 0.3) + 0.3
            slope, quality, lang, kind = 0.35 - 0.08 * skill, skill, {}, {}
        languages = {la for weights in TASK_TYPES.values() for la in weights[2]}
        return _ModelTruth(
            skill=skill, slope=slope, quality=quality,
            language={la: lang.get(la, 0.0) + float(rng.normal(0.0, 0.1))
                      for la in sorted(languages)},
            task_type={k: kind.get(k, 0.0) + float(rng.normal(0.0, 0.1)) for k in TASK_TYPES},
        )

    def sample_task(self, rng: np.random.Generator | None = None, step: int = 0) -> SimTask:
        """A task drawn from the world's distribution; ``step`` is its decision number."""
        rng = self._rng if rng is None else rng
        kinds = list(TASK_TYPES)
        kind = kinds[_choice(rng, [TASK_TYPES[k][0] for k in kinds])]
        _, mean_complexity, lang_weights = TASK_TYPES[kind]
        languages = list(lang_weights)
        language = languages[_choice(rng, list(lang_weights.values()))]
        project = int(rng.integers(self.n_projects))
        complexity = float(np.clip(
            rng.normal(mean_complexity + self._project_difficulty[project], 1.7), 0.3, 10.0))
        framework = (str(FRAMEWORKS[language][int(rng.integers(len(FRAMEWORKS[language])))])
                     if rng.random() < 0.75 else None)
        description, requirements = _describe(rng, kind, language, framework, complexity)
        agent_weights = [6.0, 1.0, 1.0, 1.0]
        if kind in AGENTS:  # testing and refactor tasks mostly come from their own agents
            agent_weights[AGENTS.index(kind)] += 8.0
        agent = AGENTS[_choice(rng, agent_weights)]
        rag = None
        if rng.random() < 0.6:
            examples = int(rng.poisson(2.5))
            rag = Rag(examples=examples,
                      avg_similarity=round(float(rng.beta(4, 3)), 3) if examples else None,
                      avg_quality=round(float(rng.uniform(5.0, 9.5)), 2) if examples else None)
        return SimTask(
            step=step, type=kind, language=language, framework=framework,
            description=description, requirements=requirements,
            project_id=f"proj-{project:02d}", user_id=f"user-{int(rng.integers(self.n_users)):03d}",
            agent=agent, rag=rag, files_touched=max(1, int(rng.poisson(0.3 + 0.5 * complexity))),
            complexity=round(complexity, 3), luck=float(rng.normal(0.0, 0.35 * self.noise)),
        )

    def allowed_actions(self, task: SimTask) -> list[Action]:
        """Catalog actions whose template allows the task's language."""
        return [a for a in self.catalog.actions if a.allows_language(task.language)]

    def success_probability(self, task: SimTask, action: Action) -> float:
        """True probability that ``action``'s code is approved as is."""
        truth = self._models[action.model.name]
        c = task.complexity
        logit = self.INTERCEPT + truth.skill - truth.slope * (c - 4.5) + task.luck
        logit += truth.language.get(task.language, 0.0) + truth.task_type.get(task.type, 0.0)
        logit += self._project_offset[int(task.project_id.rsplit("-", 1)[1])]
        logit += 0.5 * task.rag_strength
        logit += self._template_effect(task, action)
        ideal = 0.5 if task.type == "frontend" else 0.1
        t = action.temperature
        logit -= 3.5 * (t - ideal) ** 2 + 0.2 * c * max(t - 0.3, 0.0)
        if (self.drift_model == action.model.name and self.drift_at is not None
                and task.step >= self.drift_at):
            logit -= self._drift_shift
        return _sigmoid(logit)

    def _template_effect(self, task: SimTask, action: Action) -> float:
        template, c = action.template, task.complexity
        effect = self._template_jitter.get((template.name, task.type), 0.0)
        if template.languages:  # a language-specific template knows its language's idioms
            effect += self.LANGUAGE_TEMPLATE_BONUS
        style = template.style
        if style == "minimal":
            effect += 0.6 - 0.14 * c
        elif style == "specification":
            effect += -0.4 + 0.08 * len(task.requirements) + 0.05 * c
        elif style == "reasoning":
            effect += -1.2 + 0.25 * c + (0.5 if task.type == "algorithm" else 0.0)
        elif style == "tests":
            effect += -1.0 + 0.15 * c + (1.0 if "testing" in (task.type, task.agent) else 0.0)
        elif style == "examples":
            effect += 0.8 - 1.6 * task.rag_strength - 0.05 * c
        elif style == "typed":
            effect += 0.03 * c
        elif style == "query":
            effect += 0.4
        return effect

    def verdict_probabilities(self, task: SimTask, action: Action) -> tuple[float, float, float]:
        """P(approved), P(modified), P(rejected); near misses are more often modified."""
        p = self.success_probability(task, action)
        modified = (1.0 - p) * (0.25 + 0.5 * p)
        return p, modified, 1.0 - p - modified

    def expected_quality(self, task: SimTask, action: Action, verdict: Verdict) -> float:
        """Mean quality (0-10) of ``action``'s code given the verdict."""
        skill = self._models[action.model.name].quality
        bonus = {"specification": 0.3, "typed": 0.4, "tests": 0.3, "reasoning": 0.2,
                 "minimal": -0.1}.get(action.template.style, 0.0)
        bonus -= 0.8 * max(action.temperature - 0.5, 0.0)
        if verdict is Verdict.APPROVED:
            mean = 7.3 + skill + bonus - 0.08 * max(task.complexity - 5.0, 0.0)
        elif verdict is Verdict.MODIFIED:
            mean = 5.0 + 0.6 * skill + 0.5 * bonus
        else:
            mean = 2.3 + 0.4 * skill
        return min(max(mean, 0.0), 10.0)

    def expected_cost(self, task: SimTask, action: Action) -> tuple[float, float, int, int]:
        """Mean (time s, cost USD, input tokens, output tokens) of one generation."""
        examples = task.rag.examples if task.rag is not None else 0
        est = estimate_action_cost(action, task.task, task.complexity, examples)
        return est.latency_s, est.cost_usd, est.input_tokens, est.output_tokens

    def outcome(self, task: SimTask, action: Action,
                rng: np.random.Generator | None = None) -> SimOutcome:
        """Draw what happens when ``action`` generates code for ``task``."""
        rng = self._rng if rng is None else rng
        probs = self.verdict_probabilities(task, action)
        verdict = _VERDICTS[_choice(rng, list(probs))]
        sigma = 0.25 * self.noise
        _, _, input_tokens, output_mean = self.expected_cost(task, action)
        output_tokens = max(1, round(output_mean * _lognormal(rng, sigma)))
        model = action.model
        latency = model.typical_latency_s * (0.3 + 0.7 * output_tokens / 1000.0)
        cost = (input_tokens * model.input_price_per_mtok
                + output_tokens * model.output_price_per_mtok) / 1e6
        quality = self.expected_quality(task, action, verdict) + rng.normal(0.0, 0.8 * self.noise)
        regenerations = {Verdict.APPROVED: 0, Verdict.MODIFIED: int(rng.random() < 0.25),
                         Verdict.REJECTED: int(rng.binomial(2, 0.4))}[verdict]
        return SimOutcome(
            verdict=verdict, quality=round(min(max(float(quality), 0.0), 10.0), 2),
            generation_time_s=round(latency * _lognormal(rng, sigma), 3),
            cost_usd=cost, input_tokens=input_tokens, output_tokens=output_tokens,
            regenerations=regenerations,
        )

    def expected_reward(self, task: SimTask, action: Action, profile: RewardProfile) -> float:
        """True expected reward of ``action`` on ``task`` under ``profile``.

        Σ over verdicts of P(verdict) × (compute_reward of an Outcome carrying that verdict,
        the conditional mean quality and the mean time and cost) − the regeneration penalty ×
        mean regenerations. It applies the reward to mean quality, time and cost instead of
        averaging the reward over their noise; the reward is linear in them except where it
        clips, so the approximation is close.
        """
        time_s, cost, _, _ = self.expected_cost(task, action)
        total = 0.0
        for verdict, p, regens in zip(
            _VERDICTS, self.verdict_probabilities(task, action), _MEAN_REGENERATIONS, strict=True
        ):
            quality = self.expected_quality(task, action, verdict)
            reward = compute_reward(Outcome(verdict, quality, time_s, cost), profile)
            total += p * max(reward - profile.regeneration_penalty * regens, 0.0)
        return total

    def oracle_action(self, task: SimTask, allowed: Sequence[Action],
                      profile: RewardProfile) -> Action:
        """The allowed action with the highest true expected reward (first one on ties)."""
        if not allowed:
            raise WorldError("oracle_action: no allowed action")
        return max(allowed, key=lambda a: self.expected_reward(task, a, profile))


_VERDICTS = (Verdict.APPROVED, Verdict.MODIFIED, Verdict.REJECTED)
_MEAN_REGENERATIONS = (0.0, 0.25, 0.8)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _lognormal(rng: np.random.Generator, sigma: float) -> float:
    """A multiplicative noise factor with mean 1."""
    return float(rng.lognormal(-sigma * sigma / 2.0, sigma)) if sigma > 0 else 1.0


def _choice(rng: np.random.Generator, weights: Sequence[float]) -> int:
    w = np.asarray(weights, dtype=float)
    return int(rng.choice(len(w), p=w / w.sum()))


def _describe(rng: np.random.Generator, kind: str, language: str, framework: str | None,
              complexity: float) -> tuple[str, tuple[str, ...]]:
    """A description whose length, requirements and technical terms grow with complexity."""
    subject = _SUBJECTS[kind][int(rng.integers(len(_SUBJECTS[kind])))]
    using = f" using {framework}" if framework else ""
    sentences = [f"{_VERBS.get(kind, 'Implement')} {subject} in {language}{using}."]
    for _ in range(int(rng.poisson(0.3 + 0.55 * complexity))):
        detail = _DETAILS[int(rng.integers(len(_DETAILS)))]
        sentences.append(detail.format(
            modal="must" if rng.random() < 0.5 else "should",
            term=_TERMS[int(rng.integers(len(_TERMS)))] if rng.random() < 0.1 * complexity
            else "the usual cases",
            term2=_TERMS[int(rng.integers(len(_TERMS)))] if rng.random() < 0.07 * complexity
            else "the current format"))
    picks = rng.choice(len(_REQUIREMENTS), size=min(int(rng.poisson(0.35 * complexity)),
                                                    len(_REQUIREMENTS)), replace=False)
    requirements = tuple(_REQUIREMENTS[int(i)] for i in picks)
    return " ".join(sentences), requirements
