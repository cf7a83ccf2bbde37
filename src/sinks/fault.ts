/**
 * A sink that cannot write (disk full, read-only, I/O error) says so once per
 * episode, not once per record: `failing` when the first write fails, `resumed`
 * when one succeeds again, with the records lost meanwhile (also counted in the
 * sink's stats: dropped, errors).
 */
export interface SinkFault {
  sink: string;
  state: 'failing' | 'resumed';
  /** the error that started the episode (failing) */
  error?: Error;
  /** records lost in the episode so far (resumed: in all) */
  lost: number;
  /** how long the episode lasted (resumed) */
  ms?: number;
}

export type SinkFaultHandler = (f: SinkFault) => void;
