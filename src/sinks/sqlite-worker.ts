/**
 * Worker thread of the SQLite sink: inserts batches off the main thread so the
 * ring-buffer consumer never waits on disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EventStore, unpackBatch, type ProcessRow, type StoreRow } from '../store/store.js';

interface Msg {
  type: 'batch' | 'close';
  /** the batch as one string (packBatch), or as arrays when it could not be packed */
  packed?: string;
  rows?: StoreRow[];
  procs?: ProcessRow[];
  /** rows in a packed batch */
  n?: number;
  id?: number;
}

const { path, maxRows, pruneEvery, textIndex } = workerData as { path: string; maxRows: number; pruneEvery: number; textIndex: boolean };
const store = EventStore.open(path, { textIndex });
parentPort!.postMessage({ type: 'ready' });
let sincePrune = 0;
let prunes = 0;

parentPort!.on('message', (m: Msg) => {
  if (m.type === 'batch' && (m.rows || m.packed !== undefined)) {
    const n = m.rows?.length ?? m.n ?? 0;
    try {
      const b = m.packed !== undefined ? unpackBatch(m.packed) : { rows: m.rows!, procs: m.procs ?? [] };
      store.insertBatch(b.rows, b.procs);
      sincePrune += b.rows.length;
      if (maxRows > 0 && sincePrune >= pruneEvery) {
        sincePrune = 0;
        // process rows no kept record needs: a scan of every record, so less often
        store.prune(maxRows, ++prunes % 10 === 0);
      }
      parentPort!.postMessage({ type: 'ack', id: m.id, n });
    } catch (e) {
      parentPort!.postMessage({ type: 'error', id: m.id, n, message: (e as Error).message });
    }
  } else if (m.type === 'close') {
    // closing checkpoints the WAL, which a full disk refuses: say so instead of dying without an answer
    try {
      store.close();
      parentPort!.postMessage({ type: 'closed' });
    } catch (e) {
      parentPort!.postMessage({ type: 'closed', message: (e as Error).message });
    }
  }
});
