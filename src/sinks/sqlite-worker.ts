/**
 * Worker thread of the SQLite sink: inserts batches off the main thread so the
 * ring-buffer consumer never waits on disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EventStore, type StoreRow } from '../store/store.js';

interface Msg {
  type: 'batch' | 'close';
  rows?: StoreRow[];
  id?: number;
}

const { path, maxRows, pruneEvery } = workerData as { path: string; maxRows: number; pruneEvery: number };
const store = EventStore.open(path);
let sincePrune = 0;

parentPort!.on('message', (m: Msg) => {
  if (m.type === 'batch' && m.rows) {
    try {
      store.insertBatch(m.rows);
      sincePrune += m.rows.length;
      if (maxRows > 0 && sincePrune >= pruneEvery) {
        sincePrune = 0;
        store.prune(maxRows);
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
