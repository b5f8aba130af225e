/**
 * Flux ASTs from the language server, and the check that every measurement, column and field a
 * query names is one INFLUX_SCHEMA defines.
 */
import {
  INFLUX_SCHEMA,
  MEASUREMENTS,
  type MeasurementName,
  schemaHasColumn,
} from "../../src/schema/influx.js";
import { fluxAst } from "./flux.js";

export type AstNode = Record<string, unknown>;

export function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Calls `visit` on every object node of the AST (skipping source locations). */
export function walk(node: unknown, visit: (node: AstNode) => void): void {
  if (Array.isArray(node)) {
    for (const child of node) walk(child, visit);
    return;
  }
  if (!isNode(node)) return;
  visit(node);
  for (const [key, value] of Object.entries(node)) if (key !== "location") walk(value, visit);
}

export function stringLiteral(node: unknown): string | undefined {
  return isNode(node) && node.type === "StringLiteral" ? String(node.value) : undefined;
}

/** Columns every Flux table has, whatever the measurement. */
export const FLUX_COLUMNS = new Set(["_time", "_value", "_field", "_measurement", "_start", "_stop"]);
/** Functions whose column-list arguments name columns, and those arguments. */
const COLUMN_ARGUMENTS: Record<string, readonly string[]> = {
  pivot: ["rowKey", "columnKey", "valueColumn"],
  keep: ["columns"],
  drop: ["columns"],
  group: ["columns"],
  sort: ["columns"],
  distinct: ["column"],
  unique: ["column"],
};

export interface SchemaReport {
  measurements: string[];
  columns: string[];
  fields: string[];
  problems: string[];
}

/**
 * Every measurement, column and field name a query uses, checked against INFLUX_SCHEMA:
 * - measurements: string literals compared (==, !=) with `r._measurement`;
 * - columns: member expressions on a function parameter (`r.name`, `r["name"]`) and the string
 *   literals in column-list arguments (pivot rowKey/columnKey/valueColumn, keep/drop/group/sort);
 * - fields: string literals compared with `r._field`.
 * Each column must be Flux's own or a tag/field of every measurement the query filters on.
 */
export async function checkSchemaNames(source: string): Promise<SchemaReport> {
  const ast = await fluxAst(source);
  const rowNames = new Set<string>();
  walk(ast, (node) => {
    if (node.type !== "FunctionExpression") return;
    for (const param of node.params as { key: { name: string } }[]) rowNames.add(param.key.name);
  });
  const columnOf = (node: unknown): string | undefined => {
    if (!isNode(node) || node.type !== "MemberExpression") return undefined;
    const object = node.object as AstNode;
    if (object.type !== "Identifier" || !rowNames.has(String(object.name))) return undefined;
    const property = node.property as AstNode;
    return property.type === "Identifier" ? String(property.name) : stringLiteral(property);
  };

  const measurements = new Set<string>();
  const columns = new Set<string>();
  const fields = new Set<string>();
  walk(ast, (node) => {
    const column = columnOf(node);
    if (column !== undefined) columns.add(column);
    if (node.type === "BinaryExpression" && (node.operator === "==" || node.operator === "!=")) {
      for (const [side, other] of [
        [node.left, node.right],
        [node.right, node.left],
      ]) {
        const literal = stringLiteral(other);
        if (literal === undefined) continue;
        if (columnOf(side) === "_measurement") measurements.add(literal);
        if (columnOf(side) === "_field") fields.add(literal);
      }
    }
    // A pipe's right-hand side is a call node without a "type".
    if (node.type === "CallExpression" || (node.type === undefined && "callee" in node)) {
      const callee = node.callee as AstNode;
      const name = callee.type === "MemberExpression" ? (callee.property as AstNode).name : callee.name;
      const wanted = COLUMN_ARGUMENTS[String(name)];
      if (!wanted) return;
      for (const argument of node.arguments as AstNode[]) {
        for (const property of (argument.properties ?? []) as { key: AstNode; value: AstNode }[]) {
          if (!wanted.includes(String(property.key.name))) continue;
          const values =
            property.value.type === "ArrayExpression" ? property.value.elements : [property.value];
          for (const value of values as unknown[]) {
            const literal = stringLiteral(value);
            if (literal !== undefined) columns.add(literal);
          }
        }
      }
    }
  });

  const problems: string[] = [];
  if (measurements.size === 0) problems.push("no filter on a literal _measurement");
  const known = [...measurements].filter((m): m is MeasurementName => {
    const ok = (MEASUREMENTS as string[]).includes(m);
    if (!ok) problems.push(`measurement ${m} is not in INFLUX_SCHEMA`);
    return ok;
  });
  for (const column of columns) {
    if (FLUX_COLUMNS.has(column)) continue;
    for (const m of known)
      if (!schemaHasColumn(m, column)) problems.push(`${m} has no tag or field ${column}`);
  }
  for (const field of fields) {
    for (const m of known) {
      if (!(field in INFLUX_SCHEMA[m].fields)) problems.push(`${m} has no field ${field}`);
    }
  }
  return { measurements: [...measurements], columns: [...columns], fields: [...fields], problems };
}
