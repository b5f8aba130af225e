import { z } from "zod";
import { ValidationError } from "../domain/errors.js";
import { idSchema, unixSeconds } from "../domain/identifiers.js";
import type { TradePageEnd } from "../storage/trade-journal.js";

/**
 * The `cursor` of `/api/trades`: where the previous page ended, as opaque base64url text. A client
 * passes back what it was given; anything else is a 400, never a query.
 */

const MAX_CURSOR_CHARS = 200;
const cursorSchema = z.tuple([unixSeconds, idSchema]);

export function encodeCursor(end: TradePageEnd): string {
  return Buffer.from(JSON.stringify([end.entryTime, end.tradeId]), "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): TradePageEnd {
  const bad = () => new ValidationError("cursor", "not a cursor this API gave out");
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  const result = cursorSchema.safeParse(parsed);
  if (!result.success) throw bad();
  const [entryTime, tradeId] = result.data;
  return { entryTime, tradeId };
}
