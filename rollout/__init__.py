"""Rollouts: a candidate reaches its traffic only when it has earned it.

One controller skeleton, Flagger's way: every tick takes a lock on the state file,
reads the saved state, lets the strategy take one step, writes the state back
(atomically), appends a hash-chained audit record (`tritonab.monitoring.audit`) and
tells the event. A restarted controller continues where the last one stopped. The
strategies differ only in their step:

- canary: the candidate's weight grows step by step, after the perf gate, while the
  Prometheus checks and the statistics allow it; failing checks roll it back to 0%;
- blue-green: a variant's model loads its new version beside the old, passes a smoke
  set, the router switches in one reload, and the old version unloads after a bake;
- bandit: every arm's weight follows its posterior probability of being best
  (Thompson sampling), within a floor and a maximum change per interval; the analysis
  is stratified by allocation period, with a sample-ratio check per period.

    from tritonab.rollout import exit_code, load_rollout_spec, run_rollout

    spec = load_rollout_spec("rollout.yaml")  # `strategy: canary` (default) or `bluegreen`
    final = run_rollout(spec, triton_url="127.0.0.1:8001", prometheus="http://127.0.0.1:9090",
                        state_path="rollout.state.json", audit_path="audit.jsonl")
    print(final.status, exit_code(final))

With your own sources (or fakes): `Controller(CanaryStrategy(spec, router, metrics=...),
state_path=...)`, then `tick()`, `run()` or `abort()`.
"""

from tritonab.rollout.bandit import BanditStrategy, PeriodSource, log_periods
from tritonab.rollout.bluegreen import BlueGreenStrategy
from tritonab.rollout.canary import CanaryStrategy, RouterControl, split_weights
from tritonab.rollout.checks import (
    CheckResult,
    GateVerdict,
    MetricSource,
    PerfGate,
    StatsProvider,
    StatsVerdict,
    analysis_stats,
    evaluate_check,
    evaluate_checks,
    perf_gate_runner,
)
from tritonab.rollout.controller import Controller, Record, Strategy
from tritonab.rollout.spec import (
    BanditSpec,
    BlueGreenSpec,
    CanarySpec,
    MetricCheck,
    PerfGateSpec,
    RewardSpec,
    RolloutSpec,
    SmokeSpec,
    StatsSpec,
    StrategySpec,
    load_rollout_dict,
    load_rollout_spec,
)
from tritonab.rollout.state import (
    TERMINAL,
    AllocationPeriod,
    BanditState,
    BlueGreenState,
    CanaryState,
    RolloutState,
    SavedState,
    Status,
    load_state,
    read_state_json,
    save_state,
)
from tritonab.rollout.tick import StepResult, TickEvent, TickOutcome, judge_checks
from tritonab.rollout.versions import Infer, VersionControl, server_infer, smoke_inputs
from tritonab.rollout.weights import apply_weights, reconcile_weights, same_weights
from tritonab.rollout.wiring import (
    STRATEGIES,
    ServerControl,
    Sources,
    StatusTable,
    StrategyEntry,
    abort_rollout,
    build_controller,
    exit_code,
    run_rollout,
    state_json,
    status_table,
)

__all__ = [
    "STRATEGIES",
    "TERMINAL",
    "AllocationPeriod",
    "BanditSpec",
    "BanditState",
    "BanditStrategy",
    "BlueGreenSpec",
    "BlueGreenState",
    "BlueGreenStrategy",
    "CanarySpec",
    "CanaryState",
    "CanaryStrategy",
    "CheckResult",
    "Controller",
    "GateVerdict",
    "Infer",
    "MetricCheck",
    "MetricSource",
    "PerfGate",
    "PerfGateSpec",
    "PeriodSource",
    "Record",
    "RewardSpec",
    "RolloutSpec",
    "RolloutState",
    "RouterControl",
    "SavedState",
    "ServerControl",
    "SmokeSpec",
    "Sources",
    "StatsProvider",
    "StatsSpec",
    "StatsVerdict",
    "Status",
    "StatusTable",
    "StepResult",
    "Strategy",
    "StrategyEntry",
    "StrategySpec",
    "TickEvent",
    "TickOutcome",
    "VersionControl",
    "abort_rollout",
    "analysis_stats",
    "apply_weights",
    "build_controller",
    "evaluate_check",
    "evaluate_checks",
    "exit_code",
    "server_infer",
    "judge_checks",
    "load_rollout_dict",
    "load_rollout_spec",
    "load_state",
    "log_periods",
    "perf_gate_runner",
    "read_state_json",
    "reconcile_weights",
    "run_rollout",
    "same_weights",
    "save_state",
    "smoke_inputs",
    "split_weights",
    "state_json",
    "status_table",
]
