/**
 * The V8 heap settings VELOX runs with, defined once: `npm start`, the `velox` command (its
 * shebang), the Docker image and the bench pass exactly these (a test holds them to this list).
 *
 * Why: the engine's live heap is small (about 30 MB after a full GC at 500 symbols), but under a
 * high tick rate V8 lets the old generation grow with the machine's memory before collecting it:
 * with its defaults on a 24 GiB machine, an all-stores run of 200,000 ticks over 500 symbols
 * peaked at 344 MB RSS. An explicit old-space limit (1 GiB, 30 times the live heap) makes V8
 * collect earlier: the same run peaked at 234 MB, with about the same time in GC (4.0 s of 30 s).
 * A smaller young generation (`--max-semi-space-size=4`) saved another 35 MB but cost half as much
 * GC again and a tenth of the ticks/s, so it is not used.
 */
export const NODE_FLAGS = ["--max-old-space-size=1024"] as const;
