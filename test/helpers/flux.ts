/**
 * Flux checked by InfluxData's own Flux language server (`@influxdata/flux-lsp-browser`, pinned in
 * package.json), spoken to through the LSP protocol: initialize → initialized once per test file,
 * then textDocument/didOpen → textDocument/publishDiagnostics → textDocument/didClose per query.
 *
 * Loading it in Node: the package is wasm-bindgen's "bundler" build. Its entry does
 * `import * as wasm from "./flux-lsp-browser_bg.wasm"`, which Node cannot import (and its .js files
 * are ESM in a package without "type": "module"). The glue, `flux-lsp-browser_bg.js`, only needs a
 * `wasm` binding and is itself the wasm module's import object (module name
 * "./flux-lsp-browser_bg.js"). So the loader reads the glue's text, swaps that one import for a
 * `let wasm` filled in by an added `__bind(exports)`, imports the result from a data: URL,
 * instantiates the .wasm with the glue as imports and binds the instance's exports.
 *
 * What the server reports (version 0.8.40):
 * - parse errors, e.g. `invalid expression: invalid token for primary expression: RPAREN`,
 *   `expected RPAREN, got EOF`;
 * - type errors against the standard library, e.g. `expected string but found int (argument bucket)`;
 * - `undefined identifier NAME` for any free identifier, including InfluxDB 2's query-parameter
 *   record `params` and Grafana's `v` record. Those two are injected at query time, so
 *   {@link fluxDiagnostics} drops exactly `undefined identifier params` / `undefined identifier v`
 *   by default (their fields are then unconstrained type variables: no follow-up errors). Any other
 *   undefined identifier (a typo such as `fliter`, a bare `foo`) is still reported.
 *
 * Positions are the LSP's: `line` and `character` are 0-based, as in the protocol.
 *
 * Quirk: with several documents open, every didOpen makes the server re-publish diagnostics for all
 * open documents, the older ones as `[]`. So each query gets its own URI, queries are checked one
 * at a time, only the first publishDiagnostics for that URI counts, and the document is closed
 * right after.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export interface FluxDiagnostic {
  message: string;
  /** 0-based, as in the LSP. */
  line: number;
  /** 0-based UTF-16 offset in the line, as in the LSP. */
  character: number;
  endLine: number;
  endCharacter: number;
  /** LSP DiagnosticSeverity: 1 error, 2 warning, 3 information, 4 hint. */
  severity: number;
}

export interface FluxDiagnosticsOptions {
  /**
   * Records supplied by the caller at query time, whose `undefined identifier NAME` diagnostics are
   * dropped. Defaults to {@link INJECTED_RECORDS}; pass `[]` for the server's raw report.
   */
  injected?: readonly string[];
}

/** `params`: InfluxDB 2's query parameters (`POST /api/v2/query` `params`); `v`: Grafana's variables. */
export const INJECTED_RECORDS: readonly string[] = ["params", "v"];

const PACKAGE = "@influxdata/flux-lsp-browser";
const GLUE_IMPORT = "import * as wasm from './flux-lsp-browser_bg.wasm';";
const GLUE_MEMORY_VIEWS =
  /\ncachedInt32Memory0 = new Int32Array\(wasm\.memory\.buffer\);\ncachedUint8Memory0 = new Uint8Array\(wasm\.memory\.buffer\);\s*$/;
const PUBLISH_TIMEOUT_MS = 10_000;

interface LspServer {
  onMessage(handler: (message: string) => void): void;
  send(message: string): Promise<unknown>;
  run(): Promise<unknown>;
}

interface FluxGlue {
  Lsp: new () => LspServer;
  parse(source: string): unknown;
  __bind(exports: WasmExports): void;
}

type WasmExports = Record<string, unknown>;

/** The slice of the WebAssembly global used here (the project's lib settings carry no DOM types). */
interface WebAssemblyApi {
  instantiate(
    bytes: Uint8Array,
    imports: Record<string, object>,
  ): Promise<{ instance: { exports: WasmExports } }>;
}

interface RawDiagnostic {
  message: string;
  severity?: number;
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
}

interface PublishDiagnostics {
  method?: string;
  params?: { uri: string; diagnostics: RawDiagnostic[] };
}

async function loadGlue(): Promise<FluxGlue> {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve(`${PACKAGE}/package.json`));
  let glue = readFileSync(join(dir, "flux-lsp-browser_bg.js"), "utf8");
  if (!glue.includes(GLUE_IMPORT) || !GLUE_MEMORY_VIEWS.test(glue)) {
    throw new Error(`${PACKAGE}: unexpected glue code; the loader in test/helpers/flux.ts needs updating`);
  }
  glue = glue.replace(GLUE_IMPORT, "let wasm;").replace(GLUE_MEMORY_VIEWS, "\n");
  // The server logs "language server initialized" through console.info; keep errors and warnings.
  glue = `const console = { ...globalThis.console, debug() {}, info() {}, log() {} };\n${glue}`;
  glue += `
export function __bind(exports) {
  wasm = exports;
  cachedInt32Memory0 = new Int32Array(wasm.memory.buffer);
  cachedUint8Memory0 = new Uint8Array(wasm.memory.buffer);
}
`;
  const url = `data:text/javascript;base64,${Buffer.from(glue).toString("base64")}`;
  const module = (await import(/* @vite-ignore */ url)) as FluxGlue;
  const bytes = readFileSync(join(dir, "flux-lsp-browser_bg.wasm"));
  const { WebAssembly } = globalThis as unknown as { WebAssembly: WebAssemblyApi };
  const { instance } = await WebAssembly.instantiate(bytes, { "./flux-lsp-browser_bg.js": module });
  module.__bind(instance.exports);
  return module;
}

class FluxLanguageServer {
  private nextId = 1;
  private nextDocument = 1;
  private readonly waiting = new Map<string, (diagnostics: RawDiagnostic[]) => void>();
  /** Documents are checked one at a time: see the re-publishing quirk above. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly glue: FluxGlue,
    private readonly server: LspServer,
  ) {}

  static async start(): Promise<FluxLanguageServer> {
    const glue = await loadGlue();
    // The Lsp must be created before any other export is used: both install a global logger.
    const server = new glue.Lsp();
    const lsp = new FluxLanguageServer(glue, server);
    server.onMessage((message) => lsp.receive(message));
    server.run().catch((error: unknown) => {
      console.error("flux language server stopped:", error);
    });
    await lsp.request("initialize", { processId: process.pid, rootUri: null, capabilities: {} });
    await lsp.notify("initialized", {});
    return lsp;
  }

  private receive(message: string): void {
    const parsed = JSON.parse(message) as PublishDiagnostics;
    if (parsed.method !== "textDocument/publishDiagnostics" || !parsed.params) return;
    const resolve = this.waiting.get(parsed.params.uri);
    if (!resolve) return;
    this.waiting.delete(parsed.params.uri);
    resolve(parsed.params.diagnostics);
  }

  private async request(method: string, params: unknown): Promise<unknown> {
    const reply = await this.server.send(
      JSON.stringify({ jsonrpc: "2.0", id: this.nextId++, method, params }),
    );
    const parsed = JSON.parse(String(reply)) as { error?: { message: string } };
    if (parsed.error) throw new Error(`flux language server: ${method}: ${parsed.error.message}`);
    return parsed;
  }

  private async notify(method: string, params: unknown): Promise<void> {
    await this.server.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
  }

  diagnose(source: string): Promise<RawDiagnostic[]> {
    const result = this.queue.then(() => this.diagnoseAlone(source));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async diagnoseAlone(source: string): Promise<RawDiagnostic[]> {
    const uri = `file:///velox-test/query-${this.nextDocument++}.flux`;
    let timer: NodeJS.Timeout | undefined;
    const published = new Promise<RawDiagnostic[]>((resolve, reject) => {
      this.waiting.set(uri, resolve);
      timer = setTimeout(() => {
        this.waiting.delete(uri);
        reject(new Error(`flux language server published no diagnostics for ${uri}`));
      }, PUBLISH_TIMEOUT_MS);
    });
    try {
      await this.notify("textDocument/didOpen", {
        textDocument: { uri, languageId: "flux", version: 1, text: source },
      });
      return await published;
    } finally {
      clearTimeout(timer);
      await this.notify("textDocument/didClose", { textDocument: { uri } });
    }
  }
}

let started: Promise<FluxLanguageServer> | undefined;

/** One language server per test file (module instance), started on first use. */
function languageServer(): Promise<FluxLanguageServer> {
  started ??= FluxLanguageServer.start();
  return started;
}

/** The Flux language server's diagnostics for `source`, minus the injected records' (see above). */
export async function fluxDiagnostics(
  source: string,
  options: FluxDiagnosticsOptions = {},
): Promise<FluxDiagnostic[]> {
  const injected = new Set(
    (options.injected ?? INJECTED_RECORDS).map((name) => `undefined identifier ${name}`),
  );
  const raw = await (await languageServer()).diagnose(source);
  return raw
    .filter((d) => !injected.has(d.message))
    .map((d) => ({
      message: d.message,
      line: d.range.start.line,
      character: d.range.start.character,
      endLine: d.range.end.line,
      endCharacter: d.range.end.character,
      severity: d.severity ?? 1,
    }))
    .sort((a, b) => a.line - b.line || a.character - b.character);
}

/** The Flux AST (the parser's JSON form: File → body → ExpressionStatement → PipeExpression …). */
export async function fluxAst(source: string): Promise<unknown> {
  return (await languageServer()).glue.parse(source);
}

/**
 * The names of the functions `source` calls, in source order (`from`, `range`, `filter`, …): a
 * compact view of a query's structure, e.g. to see what a value spliced into a string did.
 */
export async function fluxCalls(source: string): Promise<string[]> {
  const calls: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const child of node) visit(child);
      return;
    }
    if (typeof node !== "object" || node === null) return;
    const record = node as Record<string, unknown>;
    // A pipe's right-hand side is a bare call node without a "type": recognise calls by their callee.
    if (record.type === "CallExpression" || (record.type === undefined && "callee" in record)) {
      const callee = record.callee as { type?: string; name?: string; property?: { name?: string } };
      const name = callee.type === "MemberExpression" ? callee.property?.name : callee.name;
      if (name) calls.push(name);
    }
    for (const [key, value] of Object.entries(record)) {
      if (key !== "location") visit(value);
    }
  };
  visit(await fluxAst(source));
  return calls;
}
