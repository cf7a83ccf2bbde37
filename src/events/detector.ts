/**
 * What the pipeline needs of a detector (src/detection implements it): defined
 * here, below both, so detection does not import the agent.
 */
export interface Detector {
  /** alerts for one event; must not throw */
  evaluate(event: Record<string, unknown>): Array<Record<string, unknown>>;
  close?(): void | Promise<void>;
  stats?(): Record<string, number>;
}
