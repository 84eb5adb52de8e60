"""Catalog-prior estimates of tokens, cost and latency of an action for a task.

These are the cold-start priors the service uses before it has observed outcomes: they follow
from the catalog's prices, latencies and template sizes and from the task text, so they move
with every request rather than standing in as constants.
"""

from __future__ import annotations

import msgspec

from learners.catalog import Action
from learners.context import Task

CHARS_PER_TOKEN = 4.0
RAG_EXAMPLE_TOKENS = 200
REFERENCE_OUTPUT_TOKENS = 1000.0


class CostEstimate(msgspec.Struct, frozen=True):
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float


def estimate_output_tokens(complexity: float) -> float:
    """Expected completion length before the template's factor: 250 + 150 tokens per point."""
    return 250.0 + 150.0 * complexity


def estimate_action_cost(
    action: Action, task: Task, complexity: float, rag_examples: int = 0
) -> CostEstimate:
    """Tokens from text length (4 characters a token), cost from prices, latency from the
    model's typical latency scaled by the expected completion length (30% fixed, 70% linear)."""
    text_chars = len(task.description) + sum(len(r) for r in task.requirements)
    input_tokens = (
        action.template.prompt_tokens
        + text_chars / CHARS_PER_TOKEN
        + RAG_EXAMPLE_TOKENS * rag_examples
    )
    output_tokens = estimate_output_tokens(complexity) * action.template.output_factor
    model = action.model
    cost = (
        input_tokens * model.input_price_per_mtok + output_tokens * model.output_price_per_mtok
    ) / 1e6
    latency = model.typical_latency_s * (0.3 + 0.7 * output_tokens / REFERENCE_OUTPUT_TOKENS)
    return CostEstimate(
        input_tokens=round(input_tokens),
        output_tokens=round(output_tokens),
        cost_usd=cost,
        latency_s=latency,
    )
