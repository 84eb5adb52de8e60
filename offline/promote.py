"""``router promote``: replace the served policy by a candidate only if the logs say it is better.

Candidates: ``shadow:<name>`` (a configured shadow policy), ``bandit:<file.toml>`` (a bandit
configuration; it must have run as one of the configured shadows, whose logged probabilities
are its evidence), ``batch:<version>`` (a registered batch-model version, evaluated as its
greedy policy, ``batch-greedy:<version>`` in ``router replay``).

Gate: on the chosen window of the event log, the candidate and the current policy (``logged``,
what was served) are evaluated with the doubly-robust estimator on the same decisions. The
candidate is promoted only if its DR lower confidence bound (the lower of the bootstrap and
the analytic interval ends at ``--level``) is above the current policy's DR estimate, and
its effective sample size is at least ``--min-ess`` (default 100): below it, too few decisions
went the way the candidate would have gone for any interval to be trusted. The intervals are
clipped to the reward range (the bandit config's ``[min_reward, max_reward]``) and widened over
the candidate's mass on actions the window never logged (:mod:`offline.replay.estimators`).
Every decision, promoted, refused or forced, is recorded with its evidence
(``policy_promotions``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.bandit.settings import BanditSettings
from offline.replay.cli import add_support_option, reward_range
from offline.replay.errors import ReplayError
from offline.replay.estimators import EstimatorOptions
from offline.replay.evaluate import PolicyReport, ReplayReport, evaluate
from offline.replay.policies import LoggedPolicy, TargetPolicy
from offline.replay.targets import bandit_learner_name as bandit_fingerprint
from router.public import GateEvidence, PolicyEvidence, Settings

PROMOTED, REFUSED, FORCED = "promoted", "refused", "forced"
MIN_ESS = 100.0
KINDS = ("shadow", "bandit", "batch")


class PromoteError(ValueError):
    """A candidate or window that cannot be evaluated; the message says why."""


class Candidate(msgspec.Struct, frozen=True):
    kind: str
    argument: str

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.argument}"


class GateDecision(msgspec.Struct, frozen=True):
    candidate: str
    decision: str
    reason: str
    evidence: GateEvidence
    promotion_id: int


def parse_candidate(text: str) -> Candidate:
    kind, _, argument = text.partition(":")
    if kind not in KINDS or not argument:
        raise PromoteError(f"--candidate: {text!r} is not shadow:<name>, bandit:<file.toml> or "
                           "batch:<version>")
    return Candidate(kind, argument)


def load_bandit_file(path: str, base: BanditSettings) -> BanditSettings:
    """A bandit configuration file: a ``[bandit]`` table (or bare keys) overriding ``base``."""
    try:
        raw: dict[str, Any] = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PromoteError(f"--candidate: bandit file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PromoteError(f"--candidate: {path} is not valid TOML: {exc}") from exc
    table = raw.get("bandit", raw)
    if not isinstance(table, dict):
        raise PromoteError(f"{path}: bandit: expected a table")
    try:
        return msgspec.convert({**msgspec.to_builtins(base), **table}, BanditSettings,
                               strict=False)
    except msgspec.ValidationError as exc:
        reason, _, where = str(exc).partition(" - at `$")
        key = "bandit" + (where.rstrip("`") if where else "")
        raise PromoteError(f"{path}: {key}: {reason}") from exc


def policy_evidence(name: str, report: PolicyReport) -> PolicyEvidence:
    dr = report.estimates["dr"]
    lower = min(dr.ci[0], dr.ci_analytic[0])
    return PolicyEvidence(policy=name, n=report.n, ess=report.ess, dr=dr, lower_bound=lower,
                          unsupported_mass=report.unsupported_mass)


def judge(candidate: str, report: ReplayReport, target: str, options: EstimatorOptions,
          min_ess: float = MIN_ESS) -> tuple[bool, GateEvidence, str]:
    """Apply the gate rule to a replay of ``logged`` and ``target``; (passed, evidence, why).

    A pure function of the replay report: the automatic gate calls it as ``router promote``
    does."""
    level = round(options.level * 100)
    evidence = GateEvidence(
        current=policy_evidence("logged", report.policies["logged"]),
        candidate=policy_evidence(target, report.policies[target]),
        level=options.level, bootstrap=options.bootstrap,
        rule=f"candidate ESS >= {min_ess:g} and candidate DR {level}% lower bound > current "
        "policy's DR estimate", min_ess=min_ess, reward_range=report.reward_range)
    lower, current = evidence.candidate.lower_bound, evidence.current.dr.value
    ess = evidence.candidate.ess
    if not ess >= min_ess:
        return False, evidence, (
            f"{candidate}: effective sample size {ess:,.1f} of {report.n:,} decisions is below "
            f"--min-ess {min_ess:g}: the served policy rarely did what the candidate would "
            "have done, so its estimate rests on too few decisions to be trusted (widen the "
            "window or let the candidate run longer as a shadow)")
    if not (math.isfinite(lower) and math.isfinite(current)):
        return False, evidence, (f"{candidate}: no finite {level}% lower bound on "
                                 f"{report.n} decisions (too few to estimate a variance)")
    if lower > current:
        return True, evidence, (f"{candidate}: DR {level}% lower bound {lower:.4f} > current "
                                f"policy's DR estimate {current:.4f}")
    return False, evidence, (f"{candidate}: DR {level}% lower bound {lower:.4f} <= current "
                             f"policy's DR estimate {current:.4f}: not shown to be better")


def format_evidence(evidence: GateEvidence) -> str:
    level = round(evidence.level * 100)
    rows = (("current (logged)", evidence.current),
            (f"candidate ({evidence.candidate.policy})", evidence.candidate))
    width = max(34, *(len(label) + 2 for label, _ in rows))
    lines = [f"{'policy':<{width}}{'DR':>8}  {f'{level}% CI (bootstrap)':<20}"
             f"{f'{level}% CI (analytic)':<20}{'n':>8}{'ESS':>10}{'unsupported':>13}"]
    for label, e in rows:
        mark = "*" if e.dr.clipped else " "
        lines.append(f"{label:<{width}}{e.dr.value:>8.4f}{mark} {_ci(e.dr.ci):<20}"
                     f"{_ci(e.dr.ci_analytic):<20}{e.n:>8,}{e.ess:>10,.1f}"
                     f"{e.unsupported_mass:>13.4f}")
    low, high = evidence.reward_range
    lines.append(f"intervals: clipped to the reward range [{low:g}, {high:g}] (* where an end "
                 "was clipped) and widened by the unsupported mass times that range")
    lines.append(f"rule: {evidence.rule}")
    return "\n".join(lines)


def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


# --- command line ------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from offline.train import add_common_options

    add_common_options(parser)
    parser.add_argument("--candidate", required=True, metavar="SPEC",
                        help="shadow:<name> | bandit:<file.toml> (must have run as a configured "
                        "shadow) | batch:<version>")
    parser.add_argument("--since", help="window: first decision time (ISO 8601)")
    parser.add_argument("--until", help="window: decisions strictly before (ISO 8601)")
    parser.add_argument("--tenant", help="window: only this tenant's decisions")
    parser.add_argument("--level", type=float, default=0.95,
                        help="confidence level of the lower bound (default 0.95)")
    parser.add_argument("--bootstrap", type=int, default=200,
                        help="Poisson-bootstrap replicates (0: analytic interval only)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the bootstrap")
    parser.add_argument("--min-ess", type=float, default=MIN_ESS, metavar="N",
                        help="refuse a candidate whose effective sample size on the window is "
                        f"below N (default {MIN_ESS:g})")
    add_support_option(parser)
    parser.add_argument("--force", action="store_true",
                        help="promote even if the gate refuses (recorded as forced)")
    parser.add_argument("--json", dest="json_path", help="write the decision and evidence here")


def run(args: argparse.Namespace) -> int:
    from learners.sealed import SealError
    from router.public import RegistryError, SettingsError, StorageUnavailableError

    try:
        decision = asyncio.run(_main(args))
    except (PromoteError, ReplayError, SettingsError, RegistryError, SealError,
            StorageUnavailableError) as exc:
        print(f"router promote: {exc}", file=sys.stderr)
        return 2
    print(format_evidence(decision.evidence))
    print(f"\n{decision.decision}: {decision.reason}")
    print(f"recorded as promotion {decision.promotion_id}")
    if args.json_path:
        with open(args.json_path, "wb") as handle:
            handle.write(msgspec.json.format(msgspec.json.encode(decision)))
    return 1 if decision.decision == REFUSED else 0


async def _main(args: argparse.Namespace) -> GateDecision:
    from offline.train import open_engine, settings_from_args

    candidate = parse_candidate(args.candidate)
    settings = settings_from_args(args)
    if not args.min_ess >= 0:
        raise PromoteError(f"--min-ess: must be at least 0, got {args.min_ess}")
    options = EstimatorOptions(bootstrap=args.bootstrap, level=args.level, seed=args.seed,
                               reward_range=reward_range(settings),
                               min_support=args.min_support)
    engine = await open_engine(settings)
    try:
        return await promote(engine, settings, candidate, options, since=args.since,
                             until=args.until, tenant=args.tenant, force=args.force,
                             min_ess=args.min_ess)
    finally:
        await engine.dispose()


async def promote(engine: AsyncEngine, settings: Settings, candidate: Candidate,
                  options: EstimatorOptions, *, since: str | None = None,
                  until: str | None = None, tenant: str | None = None,
                  force: bool = False, min_ess: float = MIN_ESS) -> GateDecision:
    """Evaluate ``candidate`` against the served policy on the window, apply the gate, record
    the decision and, when it passes (or ``force``), make the candidate the served policy."""
    from offline.replay.cli import parse_time
    from offline.replay.deciders import ShadowLoggedPolicy
    from offline.replay.event_log import DatabaseLog
    from offline.replay.queries import ReplayWindow
    from offline.replay.targets import TargetSpec, build_targets
    from router.public import (
        CURRENT,
        EventLog,
        GateResult,
        ModelRegistry,
        NewPromotion,
        PolicyStore,
        PromotionWindow,
    )

    catalogs = await EventLog(engine).load_catalogs()
    catalogs.setdefault(settings.catalog.fingerprint, settings.catalog)
    store = PolicyStore(engine)
    active = await store.active()
    served = settings.bandit if active is None else active.bandit
    served_fingerprint = bandit_fingerprint(served, catalogs)
    bandit: BanditSettings | None = None
    fingerprint = ""
    target: TargetPolicy
    if candidate.kind in ("shadow", "bandit"):
        if candidate.kind == "shadow":
            shadow = candidate.argument
            if shadow not in settings.shadow:
                configured = ", ".join(sorted(settings.shadow)) or "none"
                raise PromoteError(f"--candidate: no [shadow.{shadow}] in the config "
                                   f"(configured: {configured})")
            bandit = settings.shadow[shadow]
        else:
            bandit = load_bandit_file(candidate.argument, settings.bandit)
            fingerprint = bandit_fingerprint(bandit, catalogs)
            matches = [name for name, shadow_bandit in sorted(settings.shadow.items())
                       if bandit_fingerprint(shadow_bandit, catalogs) == fingerprint]
            if not matches:
                raise PromoteError(
                    f"--candidate: the bandit configuration in {candidate.argument} (bandit "
                    f"{fingerprint}) has not run as a shadow, so the log holds no evidence for "
                    "it: add it as a [shadow.<name>] table, let it decide on live traffic, "
                    "then promote it")
            shadow = matches[0]
        fingerprint = bandit_fingerprint(bandit, catalogs)
        if fingerprint == served_fingerprint:
            raise PromoteError(f"--candidate: {candidate.text} is the bandit configuration "
                               f"already served ({fingerprint})")
        target = ShadowLoggedPolicy(shadow, catalogs)
    else:
        registry = ModelRegistry(engine)
        if await registry.info(candidate.argument) is None:
            raise PromoteError(f"--candidate: no batch-model version {candidate.argument!r} "
                               "(see router models list)")
        [target] = await build_targets([TargetSpec("batch-greedy", candidate.argument)],
                                       engine=engine, settings=settings, catalogs=catalogs,
                                       seed=options.seed)
    window = ReplayWindow(since=parse_time(since, "--since"), until=parse_time(until, "--until"),
                          tenant_id=tenant)
    source = DatabaseLog(engine, catalogs, loop=asyncio.get_running_loop(), window=window)
    logged = LoggedPolicy()
    try:
        report = await asyncio.to_thread(evaluate, source, [logged, target], options,
                                         known_actions=list(source.action_ids))
    except ReplayError as exc:
        raise PromoteError(f"{candidate.text} cannot be evaluated on this window: {exc}"
                           ) from exc
    if isinstance(target, ShadowLoggedPolicy) and target.fingerprint != fingerprint:
        raise PromoteError(
            f"{target.name} logged these decisions as bandit {target.fingerprint}, but "
            f"[shadow.{target.shadow}] in this config is bandit {fingerprint}: use the "
            "service's config, or a window after the shadow's configuration changed")
    passed, evidence, reason = judge(candidate.text, report, target.name, options, min_ess)
    decision = PROMOTED if passed else (FORCED if force else REFUSED)
    if decision == FORCED:
        reason = f"forced despite the gate: {reason}"
    evaluated_on = PromotionWindow(since=_iso(window.since), until=_iso(window.until),
                                   tenant=window.tenant_id)
    new = NewPromotion(candidate=candidate.text, window=evaluated_on, n=report.n,
                       estimates=evidence, decision=decision,
                       reason=reason)
    if decision == REFUSED:
        promotion_id = await store.record(new)
    elif bandit is not None:
        promotion_id = await store.record(new, activate=(fingerprint, bandit))
    else:
        await ModelRegistry(engine).promote(candidate.argument, gate=GateResult(
            status=CURRENT, passed=passed, reasons=[reason],
            compared_with="logged (router promote)"))
        promotion_id = await store.record(new)
    return GateDecision(candidate=candidate.text, decision=decision, reason=reason,
                        evidence=evidence, promotion_id=promotion_id)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
