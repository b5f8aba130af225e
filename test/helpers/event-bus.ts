import type { Topic } from "../../src/schema/events.js";

/** The sum over all topics of one of an event bus's per-topic counts (published, dropped, …). */
export function total(perTopic: Record<Topic, number>): number {
  return Object.values(perTopic).reduce((a, b) => a + b, 0);
}
