"""Real-data benchmark: route prompts among 9 models against their real outcomes
(``router bench-real``; docs/evaluation.md)."""
