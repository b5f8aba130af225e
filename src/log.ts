import { join } from "node:path";
import { type Logger, multistream, pino, type StreamEntry } from "pino";
import pretty from "pino-pretty";
import roll from "pino-roll";
import type { LogLevel } from "./config.js";
import { ConfigError } from "./domain/errors.js";
import { ensureWritableDirectory } from "./files.js";

/**
 * Structured logging with pino, to three destinations at once:
 *  - the console, human-readable and coloured when it is a terminal;
 *  - `velox.<date>.<n>.json`, one JSON object per line, rotated daily, 30 kept;
 *  - `velox.<n>.log`, plain text, rotated at 50 MB, 10 kept.
 * Components log through child loggers (`component` field); context goes in as fields, never
 * interpolated into the message.
 */

export const COMPONENTS = [
  "main",
  "simulator",
  "strategy",
  "risk",
  "order",
  "position",
  "database",
  "cache",
  "timeseries",
  "history",
  "events",
  "metrics",
  "api",
] as const;
export type Component = (typeof COMPONENTS)[number];

/** Field paths whose values never reach a log line. */
export const REDACT_PATHS = [
  "token",
  "password",
  "*.token",
  "*.password",
  "config.influx.token",
  "headers.authorization",
];

export interface LogOptions {
  level: LogLevel;
  /** Directory for the JSON and text files; undefined logs to the console only. */
  dir?: string | undefined;
  /** Console output; default true. Tests turn it off. */
  console?: boolean;
  /** Colour the console; default: when stdout is a terminal. */
  colorize?: boolean;
  /** Rotation size of the text file; default 50m. */
  textMaxSize?: string;
  /** Rotated text files kept; default 10. */
  textKeep?: number;
  /** Rotated JSON files kept; default 30 (days). */
  jsonKeep?: number;
}

export interface VeloxLogger {
  root: Logger;
  /** A child logger for one component. */
  for(component: Component): Logger;
  /** Writes out everything buffered and closes the files; call once, before exit. */
  close(): Promise<void>;
}

const TEXT_FORMAT = {
  translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l",
  // The component is already in the message prefix; the status fields are in the status text.
  ignore: "pid,hostname,component,status,summary",
  messageFormat: "[{component}] {msg}",
  singleLine: true,
} as const;

export async function createLogger(options: LogOptions): Promise<VeloxLogger> {
  const streams: StreamEntry[] = [];
  // Streams to end on close, the ones that feed others first.
  const closables: NodeJS.WritableStream[] = [];
  if (options.console !== false) {
    streams.push({
      level: options.level === "silent" ? "fatal" : options.level,
      stream: pretty({
        ...TEXT_FORMAT,
        colorize: options.colorize ?? Boolean(process.stdout.isTTY),
        sync: true,
      }),
    });
  }
  if (options.dir) {
    writableDirectory(options.dir);
    const json = await roll({
      file: join(options.dir, "velox.json"),
      frequency: "daily",
      dateFormat: "yyyy-MM-dd",
      limit: { count: options.jsonKeep ?? 30 },
      mkdir: true,
      // Each line reaches the file as it is logged: a crash (SIGKILL) loses no tail. Log lines are
      // few (status every few seconds, warnings); the tick path logs nothing.
      sync: true,
    });
    const textFile = await roll({
      file: join(options.dir, "velox.log"),
      size: options.textMaxSize ?? "50m",
      limit: { count: options.textKeep ?? 10 },
      mkdir: true,
      sync: true,
    });
    // A log file that stops taking writes (disk full, removed) is reported once; the run goes on
    // with the console, instead of dying on an unhandled 'error' event.
    for (const stream of [json, textFile]) {
      let reported = false;
      stream.on("error", (err: Error) => {
        if (reported) return;
        reported = true;
        process.stderr.write(
          `velox: log file ${stream === json ? "velox.json" : "velox.log"} failed: ${err.message}\n`,
        );
      });
    }
    const text = pretty({ ...TEXT_FORMAT, colorize: false, destination: textFile });
    streams.push({ level: "trace", stream: json }, { level: "trace", stream: text });
    closables.push(text, textFile, json);
  }
  const root = pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "***" },
      formatters: { level: (label) => ({ level: label }) },
    },
    multistream(streams, { dedupe: false }),
  );
  return {
    root,
    for: (component) => root.child({ component }),
    close: async () => {
      await new Promise<void>((resolve) => root.flush(() => resolve()));
      for (const stream of closables) await endStream(stream);
    },
  };
}

/** Ends a stream and waits until it has written everything (a rotating file may be mid-reopen). */
function endStream(stream: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  return new Promise((resolve) => {
    // Ending a transform ends the file it pipes into; that file is then already done.
    if (stream.destroyed) return resolve();
    const done = () => resolve();
    stream.once("close", done);
    stream.once("finish", done);
    stream.once("error", done);
    stream.end();
  });
}

/** A logger that drops everything: for libraries used without a configured logger. */
export const silentLogger: Logger = pino({ level: "silent" });

/** The log directory, created if needed and writable, or a ConfigError naming VELOX_LOG_DIR. */
function writableDirectory(dir: string): void {
  try {
    ensureWritableDirectory(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unusable";
    throw new ConfigError("VELOX_LOG_DIR", `${dir}: cannot write log files there (${code})`);
  }
}
