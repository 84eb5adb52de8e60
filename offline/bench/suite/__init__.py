"""``router bench-suite``: learning quality of the served policy on many environments."""
