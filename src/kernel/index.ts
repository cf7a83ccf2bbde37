export { BpfObject, BpfProgram, type OpenOptions, type UprobeOptions } from './object.js';
export { BpfMap, MapType, BPF_ANY, BPF_NOEXIST, BPF_EXIST, numPossibleCpus, type MapInfo } from './map.js';
export { BpfLink } from './link.js';
export { RingBufferReader, type RecordHandler, type RingBufferStats } from './ringbuf.js';
export { BpfError, RecordError, errnoName } from './errors.js';
export { Btf, Kind as BtfKind } from './btf.js';
export { onLibbpfLog, withLog } from './log.js';
export { libbpfVersion } from './version.js';
export { BootClock, bootTimeNs } from './clock.js';
