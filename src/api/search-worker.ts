/**
 * Store searches off the agent's main thread: a search that reads the table
 * (a rare field value) takes as long as SQLite needs without holding up the
 * ring buffer readers. One read-only connection; requests answered in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EventStore, type StoreQuery } from '../store/store.js';
import { queryExact } from '../events/query.js';

export interface SearchRequest {
  id: number;
  q: StoreQuery;
  /** ns bounds as decimal text (a bigint does not cross as itself in every Node) */
  since?: string;
  until?: string;
}

const { db } = workerData as { db: string };
let store: EventStore | null = null;

parentPort!.on('message', (m: SearchRequest) => {
  try {
    store ??= EventStore.open(db, { readonly: true });
    const rows = queryExact(store, m.q, m.since !== undefined ? BigInt(m.since) : undefined, m.until !== undefined ? BigInt(m.until) : undefined);
    parentPort!.postMessage({ id: m.id, rows });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
