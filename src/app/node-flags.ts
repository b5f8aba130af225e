/**
 * The V8 heap settings VELOX runs with, defined once: `npm start`, the `velox` command (its
 * shebang), the Docker image and the bench pass exactly these (a test holds them to this list).
 *
 * Why: the engine's live heap is small (about 30 MB after a full GC at 500 symbols), but under a
 * high tick rate V8 lets the old generation grow with the machine's memory before collecting it:
 * with its defaults on a 24 GiB machine, an all-stores run of 200,000 ticks over 500 symbols
 * peaked at 365 MB RSS. An explicit old-space limit (1 GiB, 30 times the live heap) makes V8
 * collect early, and a 4 MB semi-space keeps the young generation small: the same run peaked at
 * about 200 MB, at the same ticks/s (`npm run bench`, README "Performance").
 */
export const NODE_FLAGS = ["--max-old-space-size=1024", "--max-semi-space-size=4"] as const;
