export { ORIGIN_XATTR, ORIGIN_VERSION, ORIGIN_MAX_BYTES, OriginRecord, encodeOrigin, parseOrigin, type ParsedOrigin, type OriginProblem } from './format.js';
export { ProvenanceStore, type StoredMark } from './store.js';
export { ProvenanceService, PROVENANCE_MODES, type ProvenanceMode, type ProvenanceCounters, type MarkedExec } from './service.js';
export { showMark, markFile, clearFile, CHAIN_MAX, type MarkReport, type ChainLink } from './files.js';
export {
  AllowStore, ALLOW_DIMENSIONS, allowedText, applyAllowed, checkConditions, describeConditions, firstMatch, globRegExp, hostGlobRegExp, needsExecUid, narrowest, resolveAllowed, ruleMatches,
  type AllowConditions, type AllowDimension, type AllowEntries, type AllowResolution, type AllowRule, type AllowSubject,
} from './allow.js';
export { TamperGuard, withTamperExemption, decodeTamper, tamperEvent, TAMPER_OBJECT, TAMPER_EXEMPT_PIN, TAMPER_LAYOUTS, TamperRecordType, TamperStat, type TamperAttempt } from './tamper.js';
