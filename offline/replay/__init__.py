"""Off-policy evaluation ("replay") of target policies on logged bandit decisions.

- :mod:`offline.replay.log`: logged decisions as validated columnar chunks;
- :mod:`offline.replay.estimators`: DM, IPS, SNIPS, DR and Switch-DR, with clipping, analytic
  and bootstrap intervals and weight diagnostics, computed chunk by chunk;
- :mod:`offline.replay.policies`: the target policies (logged, uniform, fixed, per-row
  probability files, bandit snapshots, batch-greedy, VW trained offline);
- :mod:`offline.replay.evaluate`: the two passes over a log that tie them together;
- :mod:`offline.replay.report` and :mod:`offline.replay.html`: table, JSON and HTML output.
"""
