"""Learning core of the adaptive router: catalog, features, rewards, online learners, bandits.

This package knows nothing of HTTP or SQL; the service (``router``) and the offline tools
(``offline``) both build on it.
"""
