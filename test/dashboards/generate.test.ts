import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generatedFiles, staleGenerated } from "../../src/grafana/generate.js";

/** The committed dashboards/ and grafana/provisioning/ are exactly what the generator writes. */

const cli = (args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "dashboards", ...args], { encoding: "utf8" });

describe("velox dashboards", () => {
  it("writes the same bytes every time", () => {
    expect(JSON.stringify(generatedFiles())).toBe(JSON.stringify(generatedFiles()));
  });

  it("writes the four dashboards, their layout pictures, the InfluxQL set, the provisioning files and the package schema", () => {
    expect(generatedFiles().map((f) => f.path)).toEqual([
      "dashboards/system-overview.json",
      "dashboards/layout/system-overview.svg",
      "dashboards/trade-analysis.json",
      "dashboards/layout/trade-analysis.svg",
      "dashboards/trade-detail.json",
      "dashboards/layout/trade-detail.svg",
      "dashboards/history.json",
      "dashboards/layout/history.svg",
      "dashboards/influxql/system-overview.json",
      "dashboards/influxql/trade-analysis.json",
      "dashboards/influxql/trade-detail.json",
      "grafana/provisioning/datasources/velox.yml",
      "grafana/provisioning/datasources/velox-influxql.yml",
      "grafana/provisioning/dashboards/velox.yml",
      "docs/monitoring-package.schema.json",
    ]);
  });

  it("finds the committed files up to date", () => {
    expect(staleGenerated(process.cwd())).toEqual([]);
  });

  it("--check names every file that differs or is missing, and exits 1", () => {
    const root = mkdtempSync(join(tmpdir(), "velox-dashboards-"));
    execFileSync(process.execPath, ["--import", "tsx", "src/cli.ts", "dashboards", "--root", root]);
    expect(cli(["--check", "--root", root]).status).toBe(0);

    const edited = join(root, "dashboards/trade-detail.json");
    writeFileSync(edited, readFileSync(edited, "utf8").replace("VELOX · Trade Detail", "Edited by hand"));
    cpSync(
      join(root, "dashboards/layout/system-overview.svg"),
      join(root, "dashboards/layout/trade-analysis.svg"),
    );
    const result = cli(["--check", "--root", root]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("dashboards/trade-detail.json differs");
    expect(result.stderr).toContain("dashboards/layout/trade-analysis.svg differs");
    expect(result.stderr).not.toContain("system-overview.json");
  }, 60_000);
});
