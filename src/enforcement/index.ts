export * from './abi.js';
export { ExecGuard, resolveFile, procStartTicks, pruneGoneProcesses, defaultObjectPath, hashRefusal, HASH_NEEDS, ORIGIN_NEEDS, GUARD_HOOKS, DEFAULT_INTERPRETERS, type ArmOptions, type ArmResult, type ReconcileResult } from './guard.js';
export { RulesStore, type DenyRule, type RuleKind } from './rules-store.js';
export { DecisionReader, decodeDecision, decisionEvent, type DecisionRecord, type ExecGuardEvent } from './decision.js';
export { ExecGuardService, applyRules, makeRule, probeEnforcement, sha256File, type EnforcementProbe, type GuardServiceOptions } from './service.js';
export { FanotifyGuardService, fanotifyUnavailable, memfdLimit, type FanotifyOptions, type FanotifyStats } from './fanotify.js';
export { startEnforcement, mainWatchdog, liveFanotifyAgent, notifyAgent, recordBackend, type BackendChoice, type BackendKind, type BackendRecord, type Enforcement, type EnforcementOptions } from './backend.js';
