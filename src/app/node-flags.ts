/**
 * The V8 heap settings VELOX runs with, defined once: `npm start`, the `velox` command (its
 * shebang), the Docker image and the bench pass exactly these (a test holds them to this list).
 *
 * Why: the engine's live heap is small (about 30 MB after a full GC at 500 symbols), but under a
 * high tick rate V8 lets the old generation grow with the machine's memory before collecting it:
 * with its defaults on a 24 GiB machine, an all-stores run of 200,000 ticks over 500 symbols
 * peaked at 365 MB RSS. An explicit old-space limit (1 GiB, 30 times the live heap) makes V8
 * collect early; with it alone, a 1,000,000-tick run peaked at 273 MB, above the 250 MB bound.
 *
 * The semi-space (the young generation) is capped at 8 MB, half of V8's 16 MB. A journal group
 * holds its fills and signals for up to 10 ms; with a 4 MB semi-space a scavenge came every 6 ms,
 * so much of that was copied twice and promoted, then collected again by the old generation. In
 * alternating pairs (`npm run bench`'s phases, README "Performance"), 8 MB against 4 MB: embedded
 * +13 % ticks/s, all stores +6 to +12 % with 5 to 11 % fewer CPU seconds, and a 1,000,000-tick
 * all-stores peak of 209 MB against 198 MB.
 */
export const NODE_FLAGS = ["--max-old-space-size=1024", "--max-semi-space-size=8"] as const;
