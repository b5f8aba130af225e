import { DATASOURCES } from "../schema/grafana.js";
import { escapeXml } from "../svg.js";

/**
 * A picture of a dashboard's layout, drawn from its JSON: Grafana's 24-column grid with every
 * panel's title and type where it sits. Written next to the dashboards so the README can show
 * what a dashboard looks like without a running Grafana.
 */

interface LaidOutPanel {
  type?: string;
  title?: string;
  datasource?: { uid?: string };
  gridPos?: { x: number; y: number; w: number; h: number };
}

const COLUMN = 40;
const ROW = 30;
const PAD = 12;
const TITLE_BAR = 40;

/** Fill colour by panel type, so a glance tells charts from numbers from tables. */
const COLOURS: Record<string, string> = {
  row: "#2c3235",
  timeseries: "#1f3a5f",
  stat: "#3d2f5c",
  gauge: "#4a3b1f",
  table: "#1f4a3a",
  piechart: "#5c2f3d",
  barchart: "#2f4f5c",
};

/** What a panel reads, in a word: the datasource's name less the VELOX prefix, or Mixed. */
function sourceOf(p: LaidOutPanel): string {
  const uid = p.datasource?.uid;
  const def = Object.values(DATASOURCES).find((d) => d.uid === uid);
  return def ? def.name.replace(/^VELOX /, "") : "Mixed";
}

/** Cuts a title to what fits in `width` pixels at ~7 px per character. */
function truncate(text: string, width: number): string {
  const max = Math.max(3, Math.floor((width - 12) / 7));
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function layoutSvg(dashboard: { title?: string; panels?: LaidOutPanel[] }): string {
  const panels = dashboard.panels ?? [];
  const bottom = Math.max(0, ...panels.map((p) => (p.gridPos ? p.gridPos.y + p.gridPos.h : 0)));
  const width = 24 * COLUMN + 2 * PAD;
  const height = bottom * ROW + 2 * PAD + TITLE_BAR;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#111217"/>`,
    `<text x="${PAD}" y="${PAD + 18}" fill="#d8d9da" font-size="18" font-weight="bold">${escapeXml(dashboard.title ?? "")}</text>`,
  ];
  for (const p of panels) {
    if (!p.gridPos) continue;
    const { x, y, w, h } = p.gridPos;
    const left = PAD + x * COLUMN + 2;
    const top = PAD + TITLE_BAR + y * ROW + 2;
    const boxWidth = w * COLUMN - 4;
    const boxHeight = h * ROW - 4;
    const type = p.type ?? "panel";
    const fill = COLOURS[type] ?? "#333";
    parts.push(
      `<rect x="${left}" y="${top}" width="${boxWidth}" height="${boxHeight}" rx="3" fill="${fill}" stroke="#464c54"/>`,
    );
    if (type === "row") {
      parts.push(
        `<text x="${left + 8}" y="${top + 18}" fill="#d8d9da" font-size="13" font-weight="bold">▾ ${escapeXml(truncate(p.title ?? "", boxWidth - 16))}</text>`,
      );
      continue;
    }
    parts.push(
      `<text x="${left + 8}" y="${top + 18}" fill="#ffffff" font-size="12" font-weight="bold">${escapeXml(truncate(p.title ?? "", boxWidth))}</text>`,
      `<text x="${left + 8}" y="${top + 34}" fill="#9fa7b3" font-size="11">${escapeXml(truncate(`${type} · ${sourceOf(p)} · ${w}×${h}`, boxWidth + 12))}</text>`,
    );
  }
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
