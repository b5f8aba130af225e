import { execFileSync } from "node:child_process";

/** True when the executable is on PATH. */
export function hasExecutable(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Decides whether a test file that needs a backend may run. Under CI=true a missing backend is a
 * failure (the test command installs them); on a laptop the tests skip, and say so loudly.
 * Returns true when the suite should be skipped.
 */
export function skipWithout(executable: string, what: string): boolean {
  if (hasExecutable(executable)) return false;
  const message = `${what} needs '${executable}', which is not installed (npm run test:deps installs it)`;
  if (process.env.CI === "true") throw new Error(`CI=true: ${message}`);
  console.warn(`\n*** SKIPPING: ${message} ***\n`);
  return true;
}
