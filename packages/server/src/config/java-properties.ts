/*
 * Java's .properties format, as java.util.Properties.load reads it (TorchServe's config.properties):
 * `#` and `!` comment lines, `key=value`, `key: value` and `key value`, a line continued by an odd
 * number of trailing backslashes (the next line's leading white space dropped), and the escapes
 * `\t \n \r \f \uXXXX`, a backslash before any other character standing for that character.
 */

export interface PropertyEntry {
  key: string;
  value: string;
  /** The line the entry starts on, from 1. */
  line: number;
}

const SPACE = /[ \t\f]/;

/**
 * The entries in the order written; a key written twice appears twice (Java keeps the last). The
 * value keeps its trailing white space, as Java does. Throws a SyntaxError naming the line for a
 * malformed `\uXXXX` escape, the one thing Java refuses.
 */
export function parseProperties(text: string): PropertyEntry[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  const entries: PropertyEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    let logical = trimStart(lines[i]!);
    // A comment line is never continued, even when it ends with a backslash.
    if (logical === '' || logical.startsWith('#') || logical.startsWith('!')) continue;
    while (continues(logical)) {
      logical = logical.slice(0, -1);
      if (i + 1 === lines.length) break;
      logical += trimStart(lines[++i]!);
    }
    const { key, value } = splitEntry(logical);
    entries.push({ key: unescape(key, line), value: unescape(value, line), line });
  }
  return entries;
}

/**
 * True when the text reads as `key=value` (or `key: value`) lines: every line that is not blank, a
 * comment or a continuation starts with a key and a separator, and at least one uses `=`. This tells
 * a config.properties from YAML when the file's name does not.
 */
export function looksLikeProperties(text: string): boolean {
  let equals = false;
  let continued = false;
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)) {
    const line = trimStart(raw);
    const isContinuation = continued;
    continued = false;
    if (isContinuation) {
      continued = continues(line);
      continue;
    }
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const match = /^[A-Za-z0-9_.-]+[ \t\f]*([=:])/.exec(line);
    if (match === null) return false;
    if (match[1] === '=') equals = true;
    continued = continues(line);
  }
  return equals;
}

function trimStart(line: string): string {
  let i = 0;
  while (i < line.length && SPACE.test(line[i]!)) i++;
  return line.slice(i);
}

/** An odd number of backslashes at the end: the last one escapes the line end. */
function continues(line: string): boolean {
  let count = 0;
  for (let i = line.length - 1; i >= 0 && line[i] === '\\'; i--) count++;
  return count % 2 === 1;
}

/** The key ends at the first unescaped `=`, `:` or white space; one `=` or `:` may follow white space. */
function splitEntry(logical: string): { key: string; value: string } {
  let keyEnd = logical.length;
  let valueStart = logical.length;
  for (let i = 0; i < logical.length; i++) {
    const c = logical[i]!;
    if (c === '\\') {
      i++; // the escaped character is part of the key
      continue;
    }
    if (c === '=' || c === ':') {
      keyEnd = i;
      valueStart = i + 1;
      break;
    }
    if (SPACE.test(c)) {
      keyEnd = i;
      let j = i + 1;
      while (j < logical.length && SPACE.test(logical[j]!)) j++;
      if (logical[j] === '=' || logical[j] === ':') j++;
      valueStart = j;
      break;
    }
  }
  while (valueStart < logical.length && SPACE.test(logical[valueStart]!)) valueStart++;
  return { key: logical.slice(0, keyEnd), value: logical.slice(valueStart) };
}

const ESCAPES: Readonly<Record<string, string>> = { t: '\t', n: '\n', r: '\r', f: '\f' };

function unescape(text: string, line: number): string {
  if (!text.includes('\\')) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = text[++i];
    if (next === undefined) break; // a backslash ending the file continues nothing
    if (next === 'u') {
      const hex = text.slice(i + 1, i + 5);
      if (!/^[0-9A-Fa-f]{4}$/.test(hex)) throw new SyntaxError(`line ${line}: malformed \\uXXXX escape "\\u${hex}"`);
      out += String.fromCharCode(parseInt(hex, 16));
      i += 4;
    } else {
      out += ESCAPES[next] ?? next;
    }
  }
  return out;
}
