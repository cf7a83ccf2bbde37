/**
 * The fleet: many hosts on one NATS JetStream server (or cluster). See docs/fleet.md.
 * Agent side: FleetAgent (publisher + spool, policy watcher, heartbeat) and its sink.
 * Operator side: the readers and bucket helpers `vigil fleet` uses.
 */
export * from './names.js';
export { connectFleet, connectionOptions, parseServers, readCreds, type FleetConnectOptions } from './connect.js';
export { DEFAULT_LIMITS, ensureStreams, hostsBucket, policyBucket, streamConfigs, type FleetLimits } from './setup.js';
export { Spool, encodeRecord, decodeRecords, type SpoolOptions, type SpoolRecord, type SpoolStats } from './spool.js';
export { FleetPublisher, type PublisherOptions, type PublisherStats } from './publisher.js';
export { FleetSink, type FleetSinkOptions } from './sink.js';
export { PolicyAgent, type PolicyAgentOptions, type PolicyStatus, type Rejection } from './policy.js';
export {
  DenyValueSchema, SigmaSetSchema, decodeSigmaSet, denyDigest, encodeDenyValue, encodeSigmaSet, lintSigmaSet, parseDenyValue, sigmaDigest,
  MAX_SIGMA_BYTES, MAX_SIGMA_FILES, type DenyValue, type SigmaSet,
} from './policy-values.js';
export { FleetAgent, createFleetAgent, type FleetAgentOptions, type FleetHooks, type FleetSection, type HostStatus } from './agent.js';
export { readBatches, type FleetBatch, type ReadOptions } from './reader.js';
