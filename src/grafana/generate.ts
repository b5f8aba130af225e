import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { MONITORING_PACKAGE_SCHEMA_PATH, monitoringPackageJsonSchema } from "../schema/monitoring-package.js";
import type { DashboardOptions } from "./common.js";
import { history } from "./history.js";
import { layoutSvg } from "./layout-svg.js";
import { dashboardProviderYaml, datasourcesYaml, influxQLDatasourceYaml } from "./provisioning.js";
import { systemOverview } from "./system-overview.js";
import { tradeAnalysis } from "./trade-analysis.js";
import { tradeDetail } from "./trade-detail.js";

/**
 * Everything the generator writes, as (path relative to the project root, content). The
 * dashboards are the SDK's classic (v1) model as plain JSON — what Grafana's file provisioning
 * reads — and the output is deterministic, so `--check` can compare it byte for byte.
 */

export interface GeneratedFile {
  path: string;
  content: string;
}

/** The dashboards by file name (without `.json`). */
export const DASHBOARDS = {
  "system-overview": systemOverview,
  "trade-analysis": tradeAnalysis,
  "trade-detail": tradeDetail,
  history,
} as const;

export type DashboardName = keyof typeof DASHBOARDS;

/**
 * The dashboards with InfluxDB panels: only these have an InfluxQL variant (History reads
 * PostgreSQL alone, so a second copy would differ in nothing but its uid).
 */
export const INFLUX_DASHBOARDS: readonly DashboardName[] = [
  "system-overview",
  "trade-analysis",
  "trade-detail",
];

/** The dashboards of one set: every one in the Flux set, those with InfluxDB panels in the InfluxQL set. */
export function dashboardsOf(influx: DashboardOptions["influx"]): readonly DashboardName[] {
  return influx === "flux" ? (Object.keys(DASHBOARDS) as DashboardName[]) : INFLUX_DASHBOARDS;
}

export const DASHBOARD_DIR = "dashboards";
/** The InfluxQL set: the same dashboards with their InfluxDB panels in InfluxQL (own uids). */
export const INFLUXQL_DIR = "dashboards/influxql";
export const LAYOUT_DIR = "dashboards/layout";
export const PROVISIONING_DIR = "grafana/provisioning";

/** A dashboard as the JSON object that is written (functions and undefined dropped). */
export function dashboardJson(
  name: DashboardName,
  options: DashboardOptions = { influx: "flux" },
): Record<string, unknown> {
  return JSON.parse(JSON.stringify(DASHBOARDS[name](options))) as Record<string, unknown>;
}

const asFile = (json: unknown) => `${JSON.stringify(json, null, 2)}\n`;

export function generatedFiles(): GeneratedFile[] {
  const files: GeneratedFile[] = [];
  for (const name of dashboardsOf("flux")) {
    const json = dashboardJson(name);
    files.push({ path: `${DASHBOARD_DIR}/${name}.json`, content: asFile(json) });
    files.push({ path: `${LAYOUT_DIR}/${name}.svg`, content: layoutSvg(json) });
  }
  for (const name of dashboardsOf("influxql")) {
    files.push({
      path: `${INFLUXQL_DIR}/${name}.json`,
      content: asFile(dashboardJson(name, { influx: "influxql" })),
    });
  }
  files.push({ path: `${PROVISIONING_DIR}/datasources/velox.yml`, content: datasourcesYaml() });
  files.push({
    path: `${PROVISIONING_DIR}/datasources/velox-influxql.yml`,
    content: influxQLDatasourceYaml(),
  });
  files.push({ path: `${PROVISIONING_DIR}/dashboards/velox.yml`, content: dashboardProviderYaml() });
  // Not Grafana's, but generated the same way: the published schema of the monitoring package.
  files.push({ path: MONITORING_PACKAGE_SCHEMA_PATH, content: asFile(monitoringPackageJsonSchema()) });
  return files;
}

/** Writes every generated file under `root`; returns the paths written. */
export function writeGenerated(root: string): string[] {
  const files = generatedFiles();
  for (const file of files) {
    const target = join(root, file.path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, file.content);
  }
  return files.map((f) => f.path);
}

/** The generated files whose copy under `root` is missing or differs from what the generator writes. */
export function staleGenerated(root: string): string[] {
  return generatedFiles()
    .filter((file) => {
      try {
        return readFileSync(join(root, file.path), "utf8") !== file.content;
      } catch {
        return true;
      }
    })
    .map((f) => f.path);
}
