"""The adaptive router service (Litestar): route decisions, feedback, the event log."""
