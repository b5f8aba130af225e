import { PanelBuilder as BarChartPanel } from "@grafana/grafana-foundation-sdk/barchart";
import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import {
  BigValueColorMode,
  BigValueGraphMode,
  type DataSourceRef,
  GraphDrawStyle,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  VisibilityMode,
  VizLegendOptionsBuilder,
} from "@grafana/grafana-foundation-sdk/common";
import {
  AnnotationQueryBuilder,
  CustomVariableBuilder,
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  type DynamicConfigValue,
  MappingType,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  TimePickerBuilder,
  type ValueMapping,
  VariableHide,
  VariableRefresh,
  VariableSort,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { PanelBuilder as GaugePanel } from "@grafana/grafana-foundation-sdk/gauge";
import {
  PieChartLegendOptionsBuilder,
  PieChartLegendValues,
  PanelBuilder as PieChartPanel,
} from "@grafana/grafana-foundation-sdk/piechart";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TablePanel } from "@grafana/grafana-foundation-sdk/table";
import { PanelBuilder as TimeSeriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";
import { influxQLUid } from "../schema/grafana.js";
import { datasourceRef, type InfluxLanguage, MIXED_DATASOURCE } from "./queries.js";

/**
 * Panel and variable factories shared by the dashboards. Every panel is made through
 * {@link panel}, which requires what the lint rules require: an explicit id, a title, a
 * description, a unit or value mappings, and at least one target.
 */

/** Money is shown in the account currency; the simulator and sample data trade US stocks. */
export const MONEY_UNIT = "currencyUSD";

export interface PanelSpec {
  /** Unique within the dashboard; the SDK assigns none. */
  id: number;
  title: string;
  description: string;
  /** A Grafana unit id (`s`, `bytes`, `percentunit`, …); panels showing labels use `mappings`. */
  unit?: string;
  mappings?: ValueMapping[];
  targets: cog.Builder<cog.Dataquery>[];
  /** Width in grid columns (of 24) and height in rows. */
  w: number;
  h: number;
  decimals?: number;
  min?: number;
  max?: number;
  /** Field overrides by field name: `{fieldName: [{id, value}]}`. */
  overrides?: Record<string, DynamicConfigValue[]>;
  thresholds?: cog.Builder<import("@grafana/grafana-foundation-sdk/dashboard").ThresholdsConfig>;
  /** A relative time of the panel's own, e.g. `now/d` for "today". */
  timeFrom?: string;
}

/** What every SDK panel builder offers; lets one function configure any of them. */
interface AnyPanelBuilder<T> {
  id(id: number): T;
  title(title: string): T;
  description(description: string): T;
  unit(unit: string): T;
  mappings(mappings: ValueMapping[]): T;
  withTarget(target: cog.Builder<cog.Dataquery>): T;
  datasource(datasource: DataSourceRef): T;
  span(w: number): T;
  height(h: number): T;
  decimals(decimals: number): T;
  min(min: number): T;
  max(max: number): T;
  overrideByName(name: string, properties: DynamicConfigValue[]): T;
  thresholds(
    thresholds: cog.Builder<import("@grafana/grafana-foundation-sdk/dashboard").ThresholdsConfig>,
  ): T;
  timeFrom(timeFrom: string): T;
}

/** The one datasource of the panel's targets, or Mixed when they use several. */
function panelDatasource(targets: cog.Builder<cog.Dataquery>[]): DataSourceRef {
  const uids = new Set(targets.map((t) => (t.build() as { datasource?: DataSourceRef }).datasource?.uid));
  if (uids.size === 1) {
    const first = targets[0]?.build() as { datasource?: DataSourceRef } | undefined;
    if (first?.datasource) return first.datasource;
  }
  return MIXED_DATASOURCE;
}

export function panel<B extends AnyPanelBuilder<B>>(builder: B, spec: PanelSpec): B {
  if (spec.targets.length === 0) throw new Error(`panel ${spec.title}: no target`);
  if (spec.unit === undefined && spec.mappings === undefined) throw new Error(`panel ${spec.title}: no unit`);
  builder
    .id(spec.id)
    .title(spec.title)
    .description(spec.description)
    .datasource(panelDatasource(spec.targets))
    .span(spec.w)
    .height(spec.h);
  if (spec.unit !== undefined) builder.unit(spec.unit);
  if (spec.mappings !== undefined) builder.mappings(spec.mappings);
  if (spec.decimals !== undefined) builder.decimals(spec.decimals);
  if (spec.min !== undefined) builder.min(spec.min);
  if (spec.max !== undefined) builder.max(spec.max);
  if (spec.thresholds !== undefined) builder.thresholds(spec.thresholds);
  if (spec.timeFrom !== undefined) builder.timeFrom(spec.timeFrom);
  spec.targets.forEach((target, i) => {
    // refIds A, B, C … in target order (set before withTarget, which builds the target).
    (target as { refId?: (id: string) => unknown }).refId?.(String.fromCharCode(65 + i));
    builder.withTarget(target);
  });
  for (const [name, properties] of Object.entries(spec.overrides ?? {}))
    builder.overrideByName(name, properties);
  return builder;
}

// --- panel kinds ---------------------------------------------------------------------------------

export function timeseries(spec: PanelSpec, options: { bars?: boolean; points?: boolean } = {}) {
  const p = panel(new TimeSeriesPanel(), spec)
    .legend(
      new VizLegendOptionsBuilder()
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom)
        .showLegend(true),
    )
    .fillOpacity(options.bars ? 80 : 10)
    .lineWidth(1);
  if (options.bars) p.drawStyle(GraphDrawStyle.Bars);
  if (options.points) p.drawStyle(GraphDrawStyle.Points).pointSize(6);
  else p.showPoints(VisibilityMode.Never);
  return p;
}

/** A single number, the last value of its series (or the one value of a table). */
export function stat(spec: PanelSpec, options: { colorBySign?: boolean; sparkline?: boolean } = {}) {
  const p = panel(new StatPanel(), {
    ...spec,
    ...(options.colorBySign ? { thresholds: signThresholds() } : {}),
  })
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false))
    .graphMode(options.sparkline ? BigValueGraphMode.Area : BigValueGraphMode.None)
    .colorMode(options.colorBySign ? BigValueColorMode.Value : BigValueColorMode.None);
  return p;
}

export function gauge(spec: PanelSpec) {
  return panel(new GaugePanel(), spec).reduceOptions(
    new ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false),
  );
}

export function table(spec: PanelSpec) {
  return panel(new TablePanel(), spec).showHeader(true).filterable(true);
}

/** Slices from the columns of one row (a table query's result). */
export function piechart(spec: PanelSpec) {
  return panel(new PieChartPanel(), spec)
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false))
    .legend(
      new PieChartLegendOptionsBuilder()
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Right)
        .showLegend(true)
        .values([PieChartLegendValues.Value, PieChartLegendValues.Percent]),
    );
}

/** Bars over a string or number column (`xField`). */
export function barchart(spec: PanelSpec, xField: string) {
  return panel(new BarChartPanel(), spec).xField(xField).fillOpacity(80);
}

// --- field helpers -------------------------------------------------------------------------------

/** Red below zero, green from zero: P&L figures. */
export function signThresholds() {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: "red" },
    { value: 0, color: "green" },
  ]);
}

/** 1 → up (green), 0 → down (red): for the `velox_*_up` gauges. */
export const UP_DOWN_MAPPINGS: ValueMapping[] = [
  {
    type: MappingType.ValueToText,
    options: {
      "0": { text: "down", color: "red", index: 0 },
      "1": { text: "up", color: "green", index: 1 },
    },
  },
];

/** Field overrides that hide a column of a table (used for data-link inputs). */
export const HIDDEN: DynamicConfigValue[] = [{ id: "custom.hidden", value: true }];

/** A column whose cells link to `url` (Grafana data-link syntax). */
export function linkTo(title: string, url: string): DynamicConfigValue[] {
  return [{ id: "links", value: [{ title, url }] }];
}

export function unitOf(unit: string): DynamicConfigValue[] {
  return [{ id: "unit", value: unit }];
}

// --- dashboards, layout and variables ---

export interface DashboardSpec {
  title: string;
  uid: string;
  description: string;
  /** Tags beside VELOX_TAG. */
  tags: string[];
  /** Start of the default time range, e.g. `now-1h`. */
  from: string;
  /** Auto-refresh interval; none when absent. */
  refresh?: string;
}

/**
 * A VELOX dashboard with what they all share: read-only (provisioned from files; edits belong in
 * the generator), UTC, a shared crosshair, the usual refresh choices, Grafana's annotations and a
 * menu of the other VELOX dashboards.
 */
export function veloxDashboard(spec: DashboardSpec, options: DashboardOptions): DashboardBuilder {
  const influxql = options.influx === "influxql";
  const d = new DashboardBuilder(influxql ? `${spec.title} (InfluxQL)` : spec.title)
    .uid(variantUid(spec.uid, options))
    .description(spec.description)
    .tags([VELOX_TAG, options.influx, ...spec.tags])
    .time({ from: spec.from, to: "now" })
    .tooltip(DashboardCursorSync.Crosshair);
  if (spec.refresh !== undefined) d.refresh(spec.refresh);
  return (
    d
      .readonly()
      .timezone("utc")
      .timepicker(new TimePickerBuilder().refreshIntervals(["5s", "10s", "30s", "1m", "5m", "15m"]))
      .annotation(
        new AnnotationQueryBuilder()
          .name("Annotations & Alerts")
          .datasource({ type: "grafana", uid: "-- Grafana --" })
          .enable(true)
          .hide(true)
          .iconColor("rgba(0, 211, 255, 1)")
          .builtIn(1)
          .type("dashboard"),
      )
      // A menu of the other VELOX dashboards, keeping the time range.
      .link(
        new DashboardLinkBuilder("VELOX")
          .type(DashboardLinkType.Dashboards)
          .tags([VELOX_TAG, options.influx])
          .asDropdown(true)
          .keepTime(true)
          .includeVars(false)
          .targetBlank(false),
      )
  );
}

/** The tag every VELOX dashboard carries (the links menu lists dashboards by it). */
export const VELOX_TAG = "velox";

/**
 * What varies between the two sets of dashboards: the language of the InfluxDB panels. The
 * InfluxQL set has its own uids and titles, so both sets can be loaded in one Grafana.
 */
export interface DashboardOptions {
  influx: InfluxLanguage;
}

export const DEFAULT_DASHBOARD_OPTIONS: DashboardOptions = { influx: "flux" };

/** A dashboard's uid in the set `options` describes (links between dashboards stay in their set). */
export function variantUid(uid: string, options: DashboardOptions): string {
  return options.influx === "flux" ? uid : influxQLUid(uid);
}

// --- layout and variables ------------------------------------------------------------------------

export function row(id: number, title: string) {
  return new RowBuilder(title).id(id);
}

/**
 * A variable filled by a query on one datasource. Refreshed on time-range change (the lint rule
 * template-on-time-change-reload), custom values off: the values reach queries, so only values the
 * datasource itself returned may be chosen.
 */
export function queryVariable(
  name: string,
  label: string,
  datasource: "prometheus" | "sqlite" | "postgres",
  query: string,
  options: {
    multi?: boolean;
    includeAll?: boolean;
    allValue?: string;
    hidden?: boolean;
    sort?: boolean;
  } = {},
) {
  const v = new QueryVariableBuilder(name)
    .label(label)
    .datasource(datasourceRef(datasource))
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(options.sort === false ? VariableSort.Disabled : VariableSort.AlphabeticalAsc)
    .multi(options.multi ?? false)
    .includeAll(options.includeAll ?? false)
    .allowCustomValue(false);
  if (options.allValue !== undefined) v.allValue(options.allValue);
  // A multi-value variable starts on All: every strategy, every symbol, every instance.
  if (options.includeAll) v.current({ text: ["All"], value: ["$__all"], selected: true });
  if (options.hidden) v.hide(VariableHide.HideVariable);
  return v;
}

/** A fixed list of values; the first is the default. */
export function customVariable(name: string, label: string, values: readonly string[]) {
  const first = values[0] ?? "";
  return new CustomVariableBuilder(name)
    .label(label)
    .values(values.join(","))
    .current({ text: first, value: first, selected: true })
    .options(values.map((v) => ({ text: v, value: v, selected: v === first })))
    .multi(false)
    .includeAll(false)
    .allowCustomValue(false);
}
