import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * The machine's PostgreSQL (127.0.0.1:5432, trust auth) and a database of a test's own, dropped
 * at the end. `VELOX_TEST_POSTGRES_URL` points the tests elsewhere (any server where the user may
 * create databases).
 */
export const ADMIN_URL = process.env.VELOX_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Whether the test PostgreSQL answers; under CI=true it must (the machine runs it). */
export async function postgresAvailable(what: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    return true;
  } catch (err) {
    const message = `${what} needs PostgreSQL at ${ADMIN_URL} (${(err as Error).message})`;
    if (process.env.CI === "true") throw new Error(`CI=true: ${message}`);
    console.warn(`\n*** SKIPPING: ${message} ***\n`);
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  /** A client of the test database, for assertions. */
  query<T = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** Creates an empty database named `velox_test_<random>` on the server of `adminUrl`. */
export async function createTestDatabase(adminUrl = ADMIN_URL): Promise<TestDatabase> {
  const name = `velox_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  return {
    name,
    url: url.toString(),
    query: async (sql, values) => (await client.query(sql, values)).rows,
    drop: async () => {
      await client.end().catch(() => undefined);
      const again = new pg.Client({ connectionString: adminUrl });
      await again.connect();
      await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await again.end();
    },
  };
}
