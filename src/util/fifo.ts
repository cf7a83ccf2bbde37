/**
 * A queue that keeps its newest `max` items: push() adds one and hands back the oldest
 * it lets go (at most one per push), or undefined. The consumed front is cut off once it
 * is half the array, so a push is O(1) amortized (Array.shift would move the whole array).
 */
export class BoundedFifo<T> {
  private items: T[] = [];
  private head = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.items.length - this.head;
  }

  push(x: T): T | undefined {
    this.items.push(x);
    if (this.items.length - this.head <= this.max) return undefined;
    const old = this.items[this.head++]!;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return old;
  }
}
