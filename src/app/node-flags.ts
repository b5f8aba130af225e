/**
 * The V8 heap settings VELOX runs with, defined once: `npm start`, the `velox` command (its
 * shebang), the Docker image and the bench pass exactly these (a test holds them to this list).
 *
 * Why: the engine's live heap is small (about 30 MB after a full GC at 500 symbols), but under a
 * high tick rate V8 lets the old generation grow with the machine's memory before collecting it:
 * with its defaults on a 24 GiB machine, an all-stores run of 200,000 ticks over 500 symbols
 * peaked at 365 MB RSS. An explicit old-space limit (1 GiB, 30 times the live heap) makes V8
 * collect early, and a 4 MB semi-space keeps the young generation small: the same run peaked at
 * about 200 MB (`npm run bench`, README "Performance"). The price is GC time: 6.0 s of a 30 s run
 * against 4.0 s with V8's 16 MB semi-space. With the old-space limit alone, a 1,000,000-tick run
 * peaked at 273 MB, above the 250 MB bound; with both, at 233 MB.
 */
export const NODE_FLAGS = ["--max-old-space-size=1024", "--max-semi-space-size=4"] as const;
