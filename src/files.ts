import { accessSync, constants, mkdirSync, statSync } from "node:fs";

/**
 * Creates `dir` if needed and checks that files can be created in it. Throws the file system's
 * error (ENOTDIR when the path is a file); callers turn it into a ConfigError naming their setting.
 */
export function ensureWritableDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true });
  if (!statSync(dir).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
  accessSync(dir, constants.W_OK | constants.X_OK);
}
