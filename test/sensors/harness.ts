/**
 * Runs real sensors (from the registry, with the shared process context) the way
 * the agent does, collecting their events in memory. For kernel and VM tests.
 */
import { ProcessContext } from '../../src/process/context.js';
import { findSensor, type SensorInstance } from '../../src/sensors/index.js';

export interface SensorRun {
  process: ProcessContext;
  events: Array<Record<string, unknown>>;
  sensors: SensorInstance[];
  /** consume every ring now (process sensor first) */
  drain(): void;
  close(): void;
}

export function startSensors(configs: Record<string, Record<string, unknown>>, ringBufferBytes = 32 * 1024 * 1024): SensorRun {
  const process_ = new ProcessContext();
  const events: Array<Record<string, unknown>> = [];
  const sensors: SensorInstance[] = [];
  let source: SensorInstance | null = null;
  const names = Object.keys(configs).sort((a, b) => Number(!!findSensor(b)?.processSource) - Number(!!findSensor(a)?.processSource));
  for (const name of names) {
    const plugin = findSensor(name);
    if (!plugin) throw new Error(`no sensor ${name}`);
    const cfg = plugin.config.parse({ enabled: true, ...configs[name] });
    const inst = plugin.create(
      {
        process: process_,
        emit: (ev) => events.push(ev),
        ringBufferBytes,
        selfPid: process.pid,
        syncProcesses: () => void source?.drain(),
        onHandlerError: (e) => {
          throw e;
        },
      },
      cfg as never,
    );
    if (plugin.processSource) source = inst;
    sensors.push(inst);
  }
  for (const s of sensors) s.start();
  return {
    process: process_,
    events,
    sensors,
    drain: () => {
      for (const s of sensors) s.drain();
    },
    close: () => {
      for (const s of sensors) s.close();
    },
  };
}
