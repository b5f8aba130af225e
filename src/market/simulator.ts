import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";
import { z } from "zod";
import { parseOrThrow, symbolSchema } from "../domain/identifiers.js";
import type { Tick } from "../domain/tick.js";
import { MAX_BATCH, oneByOne, Pacer } from "./pacer.js";

/**
 * A seeded market simulator. Each symbol's price follows a geometric Brownian motion with its own
 * drift and volatility; every tick is one OHLCV bar of one symbol with volume and a bid/ask quote.
 *
 * Time is simulated: tick `i` (counted across all symbols, which take turns) is stamped
 * `startTime + floor(i * 1000 / rate)` ms, whatever the wall clock does, so one seed always gives
 * the same ticks. Pacing only decides when they are handed out: `realtime` (`rate` ticks per
 * wall-clock second) or `max` (as fast as the consumer takes them).
 */

/** Used when no symbols are given. */
export const DEFAULT_SYMBOLS = ["AAPL", "MSFT", "GOOGL"] as const;
/** 2024-01-02T14:30:00Z, the New York open of the first trading day of 2024. */
export const DEFAULT_START_TIME = Date.UTC(2024, 0, 2, 14, 30);

const SECONDS_PER_YEAR = 365.25 * 24 * 3600;
/** Price path steps inside one bar: they give the bar a high and a low apart from open/close. */
const STEPS_PER_BAR = 4;
/** Discarded outputs after seeding, so nearby seeds do not start on similar numbers. */
const WARM_UP = 32;

const optionsSchema = z
  .object({
    /** Any 32-bit unsigned integer; the same seed gives the same ticks. */
    seed: z.number().int().min(0).max(0xffff_ffff).default(42),
    /** A count (named SYM001, SYM002, …) or the names themselves. */
    symbols: z
      .union([
        z.number().int().min(1).max(99_999),
        z
          .array(symbolSchema)
          .min(1)
          .refine((names) => new Set(names).size === names.length, "must not repeat a name"),
      ])
      .default([...DEFAULT_SYMBOLS]),
    /** Ticks per second across all symbols, in simulated time (and wall time when paced). */
    rate: z.number().finite().positive().default(10),
    /** Stop after this many ticks. */
    ticks: z.number().int().nonnegative().optional(),
    /** Stop when simulated time reaches startTime + durationMs. */
    durationMs: z.number().finite().nonnegative().optional(),
    /** Epoch ms of the first tick. */
    startTime: z.number().int().nonnegative().default(DEFAULT_START_TIME),
    /**
     * Market seconds that pass per simulated second in the price model. Drift and volatility are
     * annual; at 1, a few minutes of ticks barely move. The default (one hour per second) gives a
     * short run visible moves; timestamps are not affected.
     */
    timeScale: z.number().finite().positive().default(3600),
    /** Annual drift of every symbol; default drawn per symbol from [-0.05, 0.15]. */
    drift: z.number().finite().optional(),
    /** Annual volatility of every symbol; default drawn per symbol from [0.2, 0.6]. */
    volatility: z.number().finite().positive().optional(),
    /** First price of every symbol; default drawn per symbol from [20, 500]. */
    initialPrice: z.number().finite().positive().optional(),
    /** Prices are rounded to this many decimals (the price increment is 10^-decimals). */
    decimals: z.number().int().min(0).max(8).default(2),
  })
  .refine((o) => o.rate <= 1000 * symbolCount(o.symbols), {
    path: ["rate"],
    message: "must be at most 1000 ticks/s per symbol, so each symbol's timestamps (whole ms) increase",
  });

export type SimulatorOptions = z.input<typeof optionsSchema>;
type Settings = z.output<typeof optionsSchema>;

export interface SimulationRun extends SimulatorOptions {
  /** `realtime` hands out `rate` ticks per wall-clock second; `max` as fast as they are taken. */
  pacing?: "realtime" | "max";
  /** Ends the iteration (without an error) when aborted. */
  signal?: AbortSignal;
  /** Ticks due within this many ms are handed out together; default 10. */
  batchMs?: number;
  logger?: Logger;
}

function symbolCount(symbols: number | readonly string[]): number {
  return typeof symbols === "number" ? symbols : symbols.length;
}

/** The symbol names a simulator with this `symbols` option uses. */
export function symbolNames(symbols: number | readonly string[] = DEFAULT_SYMBOLS): string[] {
  if (typeof symbols !== "number") return [...symbols];
  const width = Math.max(3, String(symbols).length);
  return Array.from({ length: symbols }, (_, i) => `SYM${String(i + 1).padStart(width, "0")}`);
}

/** The sectors the simulator assigns, in turn, to its symbols (seed 004's sector names). */
export const SIMULATED_SECTORS = ["technology", "healthcare", "financials", "consumer", "energy"] as const;

/**
 * The sector of a simulated symbol: the default symbols are technology; `SYMnnn` takes
 * SIMULATED_SECTORS in turn by its number. Anything else has none (undefined).
 */
export function simulatedSector(symbol: string): string | undefined {
  if ((DEFAULT_SYMBOLS as readonly string[]).includes(symbol)) return "technology";
  const m = /^SYM(\d+)$/.exec(symbol);
  if (!m) return undefined;
  return SIMULATED_SECTORS[(Number(m[1]) - 1) % SIMULATED_SECTORS.length];
}

interface SymbolState {
  symbol: string;
  /** Unrounded price: the model's state. */
  price: number;
  drift: number;
  volatility: number;
  baseVolume: number;
  spreadBps: number;
}

class Random {
  private readonly rng: RandomGenerator;

  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed);
    for (let i = 0; i < WARM_UP; i++) this.rng.next();
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return uniformFloat64(this.rng);
  }

  between(min: number, max: number): number {
    return min + (max - min) * this.uniform();
  }

  /** Log-uniform in [min, max). */
  logBetween(min: number, max: number): number {
    return Math.exp(this.between(Math.log(min), Math.log(max)));
  }

  /** Standard normal (Box–Muller; one of the pair is dropped to keep the sequence simple). */
  normal(): number {
    const u = 1 - this.uniform(); // (0, 1]
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/**
 * The ticks of a simulation, unpaced and synchronous: for scripts and tests. Options are checked
 * at once (a ValidationError names the bad one). Without `ticks` or `durationMs` it never ends.
 */
export function generateTicks(options: SimulatorOptions = {}): Generator<Tick> {
  return ticksOf(parseOrThrow(optionsSchema, options, "simulator"));
}

function* ticksOf(settings: Settings): Generator<Tick> {
  const random = new Random(settings.seed);
  const scale = 10 ** settings.decimals;
  const states: SymbolState[] = symbolNames(settings.symbols).map((symbol) => ({
    symbol,
    price: settings.initialPrice ?? random.logBetween(20, 500),
    drift: settings.drift ?? random.between(-0.05, 0.15),
    volatility: settings.volatility ?? random.between(0.2, 0.6),
    baseVolume: random.logBetween(50, 5000),
    spreadBps: random.between(2, 10),
  }));
  const count = states.length;
  // Each symbol's bar spans the time between its turns.
  const barMs = (count * 1000) / settings.rate;
  const barYears = ((barMs / 1000) * settings.timeScale) / SECONDS_PER_YEAR;
  const stepYears = barYears / STEPS_PER_BAR;
  const toTicks = (price: number) => Math.max(1, Math.round(price * scale));

  for (let i = 0; settings.ticks === undefined || i < settings.ticks; i++) {
    const offset = Math.floor((i * 1000) / settings.rate);
    if (settings.durationMs !== undefined && offset >= settings.durationMs) return;
    const s = states[i % count] as SymbolState;

    const open = toTicks(s.price);
    let high = open;
    let low = open;
    let shock = 0;
    const driftStep = (s.drift - (s.volatility * s.volatility) / 2) * stepYears;
    const volStep = s.volatility * Math.sqrt(stepYears);
    for (let k = 0; k < STEPS_PER_BAR; k++) {
      const z = random.normal();
      shock += z;
      s.price *= Math.exp(driftStep + volStep * z);
      const p = toTicks(s.price);
      if (p > high) high = p;
      if (p < low) low = p;
    }
    const close = toTicks(s.price);
    // Busier when the bar moved more than usual.
    const moveSize = Math.abs(shock) / Math.sqrt(STEPS_PER_BAR);
    const volume = Math.max(1, Math.round(s.baseVolume * Math.exp(0.4 * random.normal()) * (0.5 + moveSize)));
    const halfSpread = ((close * s.spreadBps) / 2e4) * random.between(0.75, 1.25);
    const bid = Math.max(1, Math.floor(close - halfSpread));
    const ask = Math.max(bid + 1, Math.ceil(close + halfSpread));

    yield {
      symbol: s.symbol,
      timestamp: settings.startTime + offset,
      open: open / scale,
      high: high / scale,
      low: low / scale,
      close: close / scale,
      volume,
      bid: bid / scale,
      ask: ask / scale,
      source: "simulator",
    };
  }
}

/**
 * The ticks of a simulation as an async iterator, paced (`realtime`, the default) or not
 * (`max`). Options are checked at once. Stop it with `signal`, by breaking out of the loop, or
 * with `ticks`/`durationMs`. One tick at a time; a consumer that can take them together uses
 * {@link simulateBatches}.
 */
export function simulateTicks(run: SimulationRun = {}): AsyncGenerator<Tick> {
  return oneByOne(simulateBatches(run), run.signal);
}

/**
 * The same ticks in batches: the ticks due together (within `batchMs`), at most MAX_BATCH, so a
 * consumer runs a batch without an await per tick. Between batches the event loop gets a turn
 * every TURN_MS when nothing else makes the stream wait.
 */
export function simulateBatches(run: SimulationRun = {}): AsyncGenerator<Tick[]> {
  const { pacing = "realtime", signal, batchMs = 10, logger, ...options } = run;
  const settings = parseOrThrow(optionsSchema, options, "simulator");
  if (!Number.isFinite(batchMs) || batchMs < 0) throw new RangeError("batchMs must be a non-negative number");
  return paced(settings, pacing, batchMs, signal, logger);
}

async function* paced(
  settings: Settings,
  pacing: "realtime" | "max",
  batchMs: number,
  signal: AbortSignal | undefined,
  logger: Logger | undefined,
): AsyncGenerator<Tick[]> {
  const msPerTick = 1000 / settings.rate;
  let emitted = 0;
  const pacer = new Pacer({ slackMs: batchMs, signal });
  logger?.info(
    { seed: settings.seed, symbols: symbolNames(settings.symbols), rate: settings.rate, pacing },
    "Simulator started",
  );
  const wallStart = performance.now();
  let batch: Tick[] = [];
  try {
    for (const tick of ticksOf(settings)) {
      if (signal?.aborted) return;
      // Until this tick is due; its place in the stream: the ticks handed out and those gathered.
      const dueIn = () =>
        pacing === "realtime" ? wallStart + (emitted + batch.length) * msPerTick - performance.now() : 0;
      let wait = dueIn();
      if (batch.length >= MAX_BATCH || pacer.mustPause(wait)) {
        // What is due goes out before the stream waits; the consumer's time counts against the wait.
        if (batch.length > 0) {
          const out = batch;
          batch = [];
          emitted += out.length;
          yield out;
          wait = dueIn();
        }
        if (pacer.mustPause(wait) && !(await pacer.pause(wait))) return;
      }
      batch.push(tick);
    }
    if (batch.length > 0 && !signal?.aborted) {
      emitted += batch.length;
      yield batch;
    }
  } finally {
    logger?.info({ ticks: emitted, aborted: signal?.aborted ?? false }, "Simulator stopped");
  }
}
