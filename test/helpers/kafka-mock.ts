import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { killChild } from "./process.js";

/**
 * librdkafka's mock cluster, run by kcat, owned by one test file and stopped by PID.
 *
 *   kcat -b 127.0.0.1:1 -X test.mock.num.brokers=1 -C -t velox-mock-keepalive -q
 *
 * With `test.mock.num.brokers` set, librdkafka starts an in-process Kafka cluster on random
 * loopback ports and logs "Mock cluster enabled: … replaced with 127.0.0.1:PORT[,…]" on stderr.
 * It lives as long as the client, so kcat runs as an idle consumer (`-C` on a keep-alive topic):
 * `-L` would print the metadata and exit, taking the cluster with it. The mock speaks the real
 * protocol (Produce, Fetch, consumer groups, InitProducerId, auto-created topics with 4
 * partitions) but has no CreateTopics.
 *
 * One incompatibility with kafkajs, and the shim for it: the mock (librdkafka 2.0.2, Debian 12's
 * kcat 1.7.1) answers Metadata with ControllerId 0 while its brokers are numbered from 1. kafkajs
 * sends InitProducerId, which every idempotent producer needs, to the controller, so it fails
 * with "Broker 0 not found in the cached metadata" (real Kafka, and librdkafka's own producer,
 * which asks any broker, never meet this). Clients therefore connect through a small proxy, one
 * port per mock broker, that passes every byte through except in two responses: in Metadata it
 * replaces a ControllerId that names no broker with the first broker's id, and in Metadata and
 * FindCoordinator it replaces the brokers' ports with the proxy's, so that no connection bypasses
 * it. Nothing is changed in size, and the request side is only read (to know each response's API).
 */
export class KafkaMock {
  private readonly sockets = new Set<Socket>();
  private stopped = false;

  private constructor(
    private readonly child: ChildProcess,
    /** The mock brokers' own addresses. */
    readonly brokerAddresses: readonly string[],
    private readonly servers: readonly Server[],
    /** What clients use: the proxy in front of each broker. */
    readonly bootstrap: readonly string[],
  ) {}

  static async start(options: { brokers?: number } = {}): Promise<KafkaMock> {
    const child = spawn(
      "kcat",
      [
        "-b",
        "127.0.0.1:1",
        "-X",
        `test.mock.num.brokers=${options.brokers ?? 1}`,
        "-C",
        "-t",
        "velox-mock-keepalive",
        "-q",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let upstream: string[];
    try {
      upstream = await mockBrokers(child);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
    const ports = upstream.map((a) => Number(a.split(":")[1]));
    const servers: Server[] = [];
    for (const _ of ports) servers.push(await listen(createServer()));
    const proxyPorts = servers.map(serverPort);
    const mock = new KafkaMock(
      child,
      upstream,
      servers,
      proxyPorts.map((p) => `127.0.0.1:${p}`),
    );
    const portMap = new Map(ports.map((p, i) => [p, proxyPorts[i] as number]));
    servers.forEach((server, i) => {
      server.on("connection", (client) => mock.relay(client, ports[i] as number, portMap));
    });
    return mock;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Kills kcat (and with it the cluster) and closes the proxy: clients see the brokers vanish. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await killChild(this.child);
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  private relay(client: Socket, upstreamPort: number, proxyPort: Map<number, number>): void {
    if (this.stopped) {
      client.destroy();
      return;
    }
    const server = connect(upstreamPort, "127.0.0.1");
    this.sockets.add(client).add(server);
    const apis = new Map<number, { key: number; version: number }>();
    const done = () => {
      client.destroy();
      server.destroy();
      this.sockets.delete(client);
      this.sockets.delete(server);
    };
    client.on("error", done).on("close", done);
    server.on("error", done).on("close", done);
    client.on(
      "data",
      frames((frame) => {
        apis.set(frame.readInt32BE(8), { key: frame.readInt16BE(4), version: frame.readInt16BE(6) });
        server.write(frame);
      }),
    );
    server.on(
      "data",
      frames((frame) => {
        const correlationId = frame.readInt32BE(4);
        const api = apis.get(correlationId);
        apis.delete(correlationId);
        client.write(api ? rewrite(frame, api, proxyPort) : frame);
      }),
    );
  }
}

/** Splits a byte stream into Kafka frames (int32 size + payload). */
function frames(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const end = 4 + pending.readInt32BE(0);
      if (pending.length < end) break;
      onFrame(pending.subarray(0, end));
      pending = pending.subarray(end);
    }
  };
}

const METADATA = 3;
const FIND_COORDINATOR = 10;

/** Patches a Metadata or FindCoordinator response in place (a copy); other responses pass as they are. */
function rewrite(
  frame: Buffer,
  api: { key: number; version: number },
  proxyPort: Map<number, number>,
): Buffer {
  const out = Buffer.from(frame);
  const v = api.version;
  // After the size and the correlation id. Only the non-flexible versions are handled; the mock
  // offers Metadata v0-v2 and FindCoordinator v0-v2.
  let o = 8;
  const string = () => {
    const len = out.readInt16BE(o);
    o += 2 + Math.max(len, 0);
  };
  const port = () => {
    const mapped = proxyPort.get(out.readInt32BE(o));
    if (mapped !== undefined) out.writeInt32BE(mapped, o);
    o += 4;
  };
  if (api.key === METADATA && v <= 8) {
    if (v >= 3) o += 4; // throttle
    const ids: number[] = [];
    const brokers = out.readInt32BE(o);
    o += 4;
    for (let n = 0; n < brokers; n++) {
      ids.push(out.readInt32BE(o));
      o += 4;
      string(); // host
      port();
      if (v >= 1) string(); // rack
    }
    if (v >= 2) string(); // cluster id
    if (v >= 1 && ids.length > 0 && !ids.includes(out.readInt32BE(o))) out.writeInt32BE(ids[0] as number, o);
    return out;
  }
  if (api.key === FIND_COORDINATOR && v <= 2) {
    if (v >= 1) o += 4; // throttle
    o += 2; // error code
    if (v >= 1) string(); // error message
    o += 4; // node id
    string(); // host
    port();
    return out;
  }
  return frame;
}

/** Waits for librdkafka's "Mock cluster enabled" line and returns the brokers' host:port. */
function mockBrokers(child: ChildProcess, timeoutMs = 10_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    const timer = setTimeout(
      () => fail(new Error(`kcat printed no mock cluster address: ${stderr}`)),
      timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    child.once("error", fail);
    child.once("exit", (code) =>
      fail(new Error(`kcat exited (${code}) before the mock cluster was up: ${stderr}`)),
    );
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => {
      stderr += text;
      const match = /replaced with (\S+)/.exec(stderr);
      if (!match?.[1]) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve(match[1].split(",").filter((a) => /^[\d.]+:\d+$/.test(a)));
    });
  });
}

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

function serverPort(server: Server): number {
  const address = server.address();
  return typeof address === "object" && address ? address.port : 0;
}
