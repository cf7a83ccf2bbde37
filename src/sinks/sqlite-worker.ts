/**
 * Worker thread of the SQLite sink: inserts batches off the main thread so the
 * ring-buffer consumer never waits on disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EventStore, type ProcessRow, type StoreRow } from '../store/store.js';

interface Msg {
  type: 'batch' | 'close';
  rows?: StoreRow[];
  procs?: ProcessRow[];
  id?: number;
}

const { path, maxRows, pruneEvery } = workerData as { path: string; maxRows: number; pruneEvery: number };
const store = EventStore.open(path);
let sincePrune = 0;
let prunes = 0;

parentPort!.on('message', (m: Msg) => {
  if (m.type === 'batch' && m.rows) {
    try {
      store.insertBatch(m.rows, m.procs ?? []);
      sincePrune += m.rows.length;
      if (maxRows > 0 && sincePrune >= pruneEvery) {
        sincePrune = 0;
        // process rows no kept record needs: a scan of every record, so less often
        store.prune(maxRows, ++prunes % 10 === 0);
      }
      parentPort!.postMessage({ type: 'ack', id: m.id, n: m.rows.length });
    } catch (e) {
      parentPort!.postMessage({ type: 'error', id: m.id, n: m.rows.length, message: (e as Error).message });
    }
  } else if (m.type === 'close') {
    store.close();
    parentPort!.postMessage({ type: 'closed' });
  }
});
