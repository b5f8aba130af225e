// pino-roll ships no type declarations; this covers the options VELOX uses.
declare module "pino-roll" {
  import type SonicBoom from "sonic-boom";

  interface RollOptions {
    file: string | (() => string);
    size?: string | number;
    frequency?: "daily" | "hourly" | number;
    extension?: string;
    dateFormat?: string;
    symlink?: boolean;
    mkdir?: boolean;
    limit?: { count?: number; removeOtherLogFiles?: boolean };
    /** Passed to SonicBoom: write each line synchronously. */
    sync?: boolean;
  }
  export default function roll(options: RollOptions): Promise<SonicBoom>;
}
