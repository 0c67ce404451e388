import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';

/**
 * Renders a Helm chart without helm, for the chart's tests: Go's text/template language and the few Helm and
 * Sprig functions that deploy/helm/kiln uses, nothing more. Anything else fails loudly (an unknown function, a
 * keyword such as `template` or `block`, `.Capabilities`, `.Files`, printing a missing value), so that the chart
 * cannot come to rely on a construct this renderer would get wrong.
 *
 * Supported: `{{ }}` actions with `{{-` / `-}}` trimming and `{{/* comments *\/}}`; pipelines `|`; parentheses
 * with field chains after them; `.`, `.a.b`, `$`, `$x.a`, `$x :=`, `$x =`; string, raw string, number, `true`,
 * `false`, `nil` literals; `if` / `else if` / `else`, `with` / `else`, `range` (lists and maps, in key order,
 * `$i, $v :=`) / `else`, `define` and `end`. Functions: include, toYaml, nindent, indent, quote, default, printf
 * (%s %v %q %%), trunc, trimSuffix, contains, b64enc, sha256sum, add, required, fail, eq, ne, not, and, or.
 *
 * Stricter than Helm on purpose: printing nil (a missing value) is an error where Helm prints nothing; printf's
 * %d is refused (Helm's values are float64, so %d prints `%!d(float64=…)`); printing a number that Go would
 * write in exponent form (1e+06) is refused.
 */

export class TemplateError extends Error {}

/** A Go struct (.Release, .Chart): a field it lacks is an error, where a map's missing key is nil. */
class Struct {
  constructor(
    readonly type: string,
    readonly fields: Record<string, unknown>,
  ) {}
}

// ---------------------------------------------------------------------------------------------- lexing

type Token =
  | { t: 'lit'; v: unknown }
  | { t: 'field'; path: string[] } // `.` is the empty path
  | { t: 'var'; name: string; path: string[] } // `$` is the name ''
  | { t: 'ident'; v: string }
  | { t: '(' }
  | { t: ')'; path: string[] } // a field chain may follow a closing parenthesis: (…).a.b
  | { t: '|' }
  | { t: ',' }
  | { t: ':=' }
  | { t: '=' };

type Segment = { kind: 'text'; text: string } | { kind: 'action'; tokens: Token[]; line: number; source: string };

const SPACE = /[ \t\r\n]/;

/** Splits a template into text and actions, applying the trim markers. */
function lex(source: string, file: string): Segment[] {
  const segments: Segment[] = [];
  let at = 0;
  let trimNext = false;
  const lineOf = (index: number) => source.slice(0, index).split('\n').length;
  while (at <= source.length) {
    const open = source.indexOf('{{', at);
    let text = source.slice(at, open === -1 ? source.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    if (open === -1) {
      if (text !== '') segments.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (source[start] === '-' && SPACE.test(source[start + 1] ?? '')) {
      text = text.replace(/[ \t\r\n]+$/, '');
      start += 1;
    }
    if (text !== '') segments.push({ kind: 'text', text });
    const line = lineOf(open);
    const where = `${file}:${line}`;
    const close = findClose(source, start, where);
    let body = source.slice(start, close);
    trimNext = false;
    if (body.endsWith('-') && SPACE.test(body.at(-2) ?? '')) {
      body = body.slice(0, -1);
      trimNext = true;
    }
    at = close + 2;
    const trimmed = body.trim();
    if (trimmed.startsWith('/*')) {
      if (!trimmed.endsWith('*/')) throw new TemplateError(`${where}: a comment must be the whole action: {{/* ... */}}`);
      continue;
    }
    if (trimmed === '') throw new TemplateError(`${where}: empty action`);
    segments.push({ kind: 'action', tokens: tokenize(body, where), line, source: trimmed });
  }
  return segments;
}

/** The index of the `}}` that closes the action starting at `from`, skipping string literals and comments. */
function findClose(source: string, from: number, where: string): number {
  let i = from;
  while (i < source.length) {
    if (source.startsWith('/*', i)) {
      const end = source.indexOf('*/', i + 2);
      if (end === -1) throw new TemplateError(`${where}: unclosed comment`);
      i = end + 2;
      continue;
    }
    const c = source[i];
    if (c === '"' || c === "'") {
      i += 1;
      while (i < source.length && source[i] !== c) {
        if (source[i] === '\n') throw new TemplateError(`${where}: unterminated quoted string`);
        i += source[i] === '\\' ? 2 : 1;
      }
    } else if (c === '`') {
      const end = source.indexOf('`', i + 1);
      if (end === -1) throw new TemplateError(`${where}: unterminated raw string`);
      i = end;
    } else if (source.startsWith('}}', i)) {
      return i;
    }
    i += 1;
  }
  throw new TemplateError(`${where}: unclosed action`);
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*/;
const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/;

function tokenize(body: string, where: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  /** Reads `.a.b.c` at i, returning the names. */
  const chain = (): string[] => {
    const path: string[] = [];
    while (body[i] === '.') {
      const name = IDENT.exec(body.slice(i + 1))?.[0];
      if (name === undefined) break;
      path.push(name);
      i += 1 + name.length;
    }
    return path;
  };
  while (i < body.length) {
    const c = body[i]!;
    const rest = body.slice(i);
    if (SPACE.test(c)) {
      i += 1;
    } else if (c === '"') {
      let end = i + 1;
      while (end < body.length && body[end] !== '"') end += body[end] === '\\' ? 2 : 1;
      tokens.push({ t: 'lit', v: unquote(body.slice(i, end + 1), where) });
      i = end + 1;
    } else if (c === '`') {
      const end = body.indexOf('`', i + 1);
      tokens.push({ t: 'lit', v: body.slice(i + 1, end) });
      i = end + 1;
    } else if (c === "'") {
      throw new TemplateError(`${where}: character constants ('x') are not supported`);
    } else if (rest.startsWith(':=')) {
      tokens.push({ t: ':=' });
      i += 2;
    } else if (c === '=' || c === '|' || c === ',' || c === '(') {
      tokens.push({ t: c });
      i += 1;
    } else if (c === ')') {
      i += 1;
      tokens.push({ t: ')', path: chain() });
    } else if (c === '.') {
      const path = chain();
      if (path.length === 0) i += 1; // the dot itself
      tokens.push({ t: 'field', path });
    } else if (c === '$') {
      const name = IDENT.exec(body.slice(i + 1))?.[0] ?? '';
      i += 1 + name.length;
      tokens.push({ t: 'var', name, path: chain() });
    } else if (NUMBER.test(rest)) {
      const text = NUMBER.exec(rest)![0];
      tokens.push({ t: 'lit', v: Number(text) });
      i += text.length;
    } else if (IDENT.test(rest)) {
      const word = IDENT.exec(rest)![0];
      i += word.length;
      if (word === 'true' || word === 'false') tokens.push({ t: 'lit', v: word === 'true' });
      else if (word === 'nil') tokens.push({ t: 'lit', v: null });
      else tokens.push({ t: 'ident', v: word });
      if (body[i] === '.')
        throw new TemplateError(`${where}: "${word}.${body.slice(i + 1)}": fields of a function's result need parentheses`);
    } else {
      throw new TemplateError(`${where}: unexpected "${c}" in {{${body}}}`);
    }
  }
  return tokens;
}

/** A Go interpreted string literal's value. */
function unquote(literal: string, where: string): string {
  return literal.slice(1, -1).replace(/\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)/g, (_, e: string) => {
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"' };
    if (e in simple) return simple[e]!;
    if (e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
    throw new TemplateError(`${where}: unknown escape \\${e} in ${literal}`);
  });
}

// ---------------------------------------------------------------------------------------------- parsing

type Arg =
  | { k: 'lit'; v: unknown }
  | { k: 'fn'; name: string }
  | { k: 'field'; base: { dot: true } | { variable: string } | { pipe: Pipeline }; path: string[] };
interface Pipeline {
  decl: { names: string[]; op: ':=' | '=' } | undefined;
  commands: Arg[][];
  where: string;
}
type Node =
  | { n: 'text'; text: string }
  | { n: 'print'; pipe: Pipeline }
  | { n: 'if' | 'with'; pipe: Pipeline; body: Node[]; otherwise: Node[] }
  | { n: 'range'; pipe: Pipeline; body: Node[]; otherwise: Node[] };

const UNSUPPORTED_KEYWORDS = new Set(['template', 'block', 'break', 'continue']);

class Parser {
  private at = 0;
  readonly defines = new Map<string, Node[]>();

  constructor(
    private readonly segments: Segment[],
    private readonly file: string,
  ) {}

  /** The whole file: its nodes and, separately, its `define`s. */
  parseFile(): Node[] {
    const { nodes, stop } = this.parseList(true);
    if (stop !== undefined) throw new TemplateError(`${stop.where}: unexpected {{${stop.word}}}`);
    return nodes;
  }

  /** Nodes up to an `end` or `else` (returned as `stop`), or the end of the file. */
  private parseList(topLevel = false): { nodes: Node[]; stop: { word: 'end' | 'else'; rest: Token[]; where: string } | undefined } {
    const nodes: Node[] = [];
    while (this.at < this.segments.length) {
      const segment = this.segments[this.at++]!;
      if (segment.kind === 'text') {
        nodes.push({ n: 'text', text: segment.text });
        continue;
      }
      const where = `${this.file}:${segment.line}`;
      const [first, ...rest] = segment.tokens;
      const word = first?.t === 'ident' ? first.v : undefined;
      if (word === 'end' || word === 'else') {
        if (word === 'end' && rest.length > 0) throw new TemplateError(`${where}: unexpected tokens after end`);
        return { nodes, stop: { word, rest, where } };
      }
      if (word !== undefined && UNSUPPORTED_KEYWORDS.has(word)) {
        throw new TemplateError(`${where}: {{${segment.source}}}: "${word}" is not supported by this renderer (use include)`);
      }
      if (word === 'define') {
        if (!topLevel) throw new TemplateError(`${where}: define must be at the top level`);
        const name = rest[0];
        if (rest.length !== 1 || name?.t !== 'lit' || typeof name.v !== 'string')
          throw new TemplateError(`${where}: define takes one string`);
        const body = this.parseList();
        if (body.stop?.word !== 'end') throw new TemplateError(`${where}: define "${name.v}" has no end`);
        if (this.defines.has(name.v)) throw new TemplateError(`${where}: "${name.v}" is defined twice`);
        this.defines.set(name.v, body.nodes);
        continue;
      }
      if (word === 'if' || word === 'with' || word === 'range') {
        nodes.push(this.parseControl(word, rest, where));
        continue;
      }
      nodes.push({ n: 'print', pipe: parsePipeline(segment.tokens, where) });
    }
    return { nodes, stop: undefined };
  }

  private parseControl(word: 'if' | 'with' | 'range', tokens: Token[], where: string): Node {
    const pipe = parsePipeline(tokens, where, word === 'range');
    const body = this.parseList();
    if (body.stop === undefined) throw new TemplateError(`${where}: {{${word}}} has no end`);
    let otherwise: Node[] = [];
    if (body.stop.word === 'else') {
      const [next, ...rest] = body.stop.rest;
      if (next === undefined) {
        const tail = this.parseList();
        if (tail.stop?.word !== 'end') throw new TemplateError(`${body.stop.where}: {{else}} has no end`);
        otherwise = tail.nodes;
      } else if (next.t === 'ident' && next.v === word && word !== 'range') {
        // `else if` / `else with`: one more branch that shares this one's end.
        otherwise = [this.parseControl(word, rest, body.stop.where)];
      } else {
        throw new TemplateError(`${body.stop.where}: unexpected tokens after else`);
      }
    }
    return { n: word, pipe, body: body.nodes, otherwise };
  }
}

function parsePipeline(tokens: Token[], where: string, range = false): Pipeline {
  let decl: Pipeline['decl'];
  let at = 0;
  const isVar = (t: Token | undefined): t is Extract<Token, { t: 'var' }> => t?.t === 'var' && t.path.length === 0 && t.name !== '';
  const op = tokens[1]?.t;
  if (isVar(tokens[0]) && (op === ':=' || op === '=')) {
    decl = { names: [tokens[0].name], op };
    at = 2;
  } else if (range && isVar(tokens[0]) && op === ',' && isVar(tokens[2]) && tokens[3]?.t === ':=') {
    decl = { names: [tokens[0].name, tokens[2].name], op: ':=' };
    at = 4;
  }
  const commands: Arg[][] = [[]];
  while (at < tokens.length) {
    const token = tokens[at]!;
    if (token.t === '|') {
      if (commands.at(-1)!.length === 0) throw new TemplateError(`${where}: missing command before |`);
      commands.push([]);
      at += 1;
      continue;
    }
    const [arg, next] = parseArg(tokens, at, where);
    commands.at(-1)!.push(arg);
    at = next;
  }
  if (commands.at(-1)!.length === 0) throw new TemplateError(`${where}: missing command`);
  for (const command of commands.slice(1)) {
    if (command[0]!.k !== 'fn') throw new TemplateError(`${where}: only a function can follow |`);
  }
  return { decl, commands, where };
}

function parseArg(tokens: Token[], at: number, where: string): [Arg, number] {
  const token = tokens[at]!;
  switch (token.t) {
    case 'lit':
      return [{ k: 'lit', v: token.v }, at + 1];
    case 'field':
      return [{ k: 'field', base: { dot: true }, path: token.path }, at + 1];
    case 'var':
      return [{ k: 'field', base: { variable: token.name }, path: token.path }, at + 1];
    case 'ident':
      if (!Object.hasOwn(FUNCTIONS, token.v) && !LAZY.has(token.v)) {
        throw new TemplateError(`${where}: function "${token.v}" is not supported by this renderer`);
      }
      return [{ k: 'fn', name: token.v }, at + 1];
    case '(': {
      let depth = 1;
      let end = at + 1;
      for (; end < tokens.length && depth > 0; end += 1) {
        if (tokens[end]!.t === '(') depth += 1;
        if (tokens[end]!.t === ')') depth -= 1;
      }
      const close = tokens[end - 1];
      if (depth !== 0 || close?.t !== ')') throw new TemplateError(`${where}: unclosed (`);
      return [{ k: 'field', base: { pipe: parsePipeline(tokens.slice(at + 1, end - 1), where) }, path: close.path }, end];
    }
    default:
      throw new TemplateError(`${where}: unexpected "${token.t}"`);
  }
}

// ---------------------------------------------------------------------------------------------- evaluation

/** Go's truth: false, 0, nil, and empty strings, lists and maps are false. */
function truth(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Struct) return true;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Struct);
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Struct) return v.type;
  return typeof v === 'object' ? 'map' : typeof v;
}

function field(v: unknown, name: string, where: string): unknown {
  if (v instanceof Struct) {
    if (!Object.hasOwn(v.fields, name))
      throw new TemplateError(`${where}: can't evaluate field ${name} in type ${v.type} (not supported by this renderer, or not Helm's)`);
    return v.fields[name];
  }
  if (isMap(v)) return Object.hasOwn(v, name) ? (v[name] ?? null) : null;
  if (v === null || v === undefined) throw new TemplateError(`${where}: nil pointer evaluating interface {}.${name}`);
  throw new TemplateError(`${where}: can't evaluate field ${name} in a ${typeName(v)}`);
}

/** A number as Go's %v writes a float64, refused where Go would switch to exponent form. */
function formatNumber(n: number, where: string): string {
  const magnitude = Math.abs(n);
  if (!Number.isFinite(n) || magnitude >= 1e6 || (magnitude !== 0 && magnitude < 1e-4)) {
    throw new TemplateError(`${where}: Helm would write ${n} in exponent form (a float64); quote it in values.yaml`);
  }
  return String(n);
}

/** The text an action writes for a value, or the text Sprig's strval gives it. */
function text(v: unknown, where: string, what = 'the action'): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatNumber(v, where);
  if (typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) throw new TemplateError(`${where}: ${what} is nil (a missing value?); Helm would write nothing`);
  throw new TemplateError(`${where}: ${what} is a ${typeName(v)}, not a scalar (use toYaml)`);
}

function str(v: unknown, where: string, fn: string): string {
  if (typeof v !== 'string') throw new TemplateError(`${where}: ${fn} needs a string, got ${typeName(v)}`);
  return v;
}

function int(v: unknown, where: string, fn: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new TemplateError(`${where}: ${fn} needs a whole number, got ${JSON.stringify(v) ?? typeName(v)}`);
  return v;
}

function arity(args: unknown[], n: number, where: string, fn: string): void {
  if (args.length !== n) throw new TemplateError(`${where}: ${fn} takes ${n} argument(s), got ${args.length}`);
}

/** Sprig's `empty`, which `default` uses. */
function empty(v: unknown): boolean {
  return !truth(v);
}

function toYaml(v: unknown, where: string): string {
  const check = (x: unknown): void => {
    if (x instanceof Struct) throw new TemplateError(`${where}: toYaml of a ${x.type} is not supported`);
    if (Array.isArray(x)) x.forEach(check);
    else if (isMap(x)) Object.values(x).forEach(check);
  };
  check(v);
  // YAML 1.1, as Helm's (go-yaml v2) writes it: a string such as "off" or "yes" is quoted, not left to read as a boolean.
  return stringify(v, { version: '1.1', sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '');
}

function printf(args: unknown[], where: string): string {
  const [format, ...rest] = args;
  let next = 0;
  const result = str(format, where, 'printf').replace(/%([%svqd])/g, (_, verb: string) => {
    if (verb === '%') return '%';
    if (verb === 'd') throw new TemplateError(`${where}: printf %d is not supported (Helm's numbers are float64): use %v`);
    if (next >= rest.length) throw new TemplateError(`${where}: printf "${String(format)}" has too few arguments`);
    const arg = rest[next++];
    if (verb === 'v') return text(arg, where, 'a printf argument');
    const s = str(arg, where, `printf %${verb}`);
    return verb === 'q' ? JSON.stringify(s) : s;
  });
  if (/%[^%svq]/.test(str(format, where, 'printf').replace(/%%/g, '')))
    throw new TemplateError(`${where}: printf "${String(format)}": unsupported verb`);
  if (next !== rest.length) throw new TemplateError(`${where}: printf "${String(format)}" has too many arguments`);
  return result;
}

/** eq and ne compare strings and booleans only: Go refuses to compare a float64 value with an int literal. */
function comparable(x: unknown, where: string): string | boolean {
  if (typeof x !== 'string' && typeof x !== 'boolean')
    throw new TemplateError(`${where}: eq and ne compare strings or booleans here, got ${typeName(x)}`);
  return x;
}

type Fn = (args: unknown[], where: string, engine: Engine) => unknown;

const FUNCTIONS: Record<string, Fn> = {
  include: (args, where, engine) => {
    arity(args, 2, where, 'include');
    return engine.include(str(args[0], where, 'include'), args[1], where);
  },
  toYaml: (args, where) => (arity(args, 1, where, 'toYaml'), toYaml(args[0], where)),
  indent: (args, where) => {
    arity(args, 2, where, 'indent');
    const pad = ' '.repeat(int(args[0], where, 'indent'));
    return pad + str(args[1], where, 'indent').replace(/\n/g, `\n${pad}`);
  },
  nindent: (args, where, engine) => `\n${String(FUNCTIONS.indent!(args, where, engine))}`,
  quote: (args, where) =>
    args
      .filter((a) => a !== null && a !== undefined)
      .map((a) => JSON.stringify(text(a, where, 'a quote argument')))
      .join(' '),
  default: (args, where) => {
    if (args.length !== 1 && args.length !== 2) throw new TemplateError(`${where}: default takes 1 or 2 arguments`);
    return args.length === 2 && !empty(args[1]) ? args[1] : args[0];
  },
  printf: (args, where) => printf(args, where),
  trunc: (args, where) => {
    arity(args, 2, where, 'trunc');
    const [n, s] = [int(args[0], where, 'trunc'), str(args[1], where, 'trunc')];
    if (n < 0) return s.length + n > 0 ? s.slice(s.length + n) : s;
    return s.slice(0, n);
  },
  trimSuffix: (args, where) => {
    arity(args, 2, where, 'trimSuffix');
    const [suffix, s] = [str(args[0], where, 'trimSuffix'), str(args[1], where, 'trimSuffix')];
    return suffix !== '' && s.endsWith(suffix) ? s.slice(0, -suffix.length) : s;
  },
  contains: (args, where) => (arity(args, 2, where, 'contains'), str(args[1], where, 'contains').includes(str(args[0], where, 'contains'))),
  b64enc: (args, where) => (arity(args, 1, where, 'b64enc'), Buffer.from(str(args[0], where, 'b64enc')).toString('base64')),
  sha256sum: (args, where) => (
    arity(args, 1, where, 'sha256sum'),
    createHash('sha256')
      .update(str(args[0], where, 'sha256sum'))
      .digest('hex')
  ),
  add: (args, where) => args.reduce<number>((sum, a) => sum + int(a, where, 'add'), 0),
  required: (args, where) => {
    arity(args, 2, where, 'required');
    if (args[1] === null || args[1] === undefined || args[1] === '')
      throw new TemplateError(`${where}: ${str(args[0], where, 'required')}`);
    return args[1];
  },
  fail: (args, where) => {
    arity(args, 1, where, 'fail');
    throw new TemplateError(`${where}: ${str(args[0], where, 'fail')}`);
  },
  eq: (args, where) => {
    if (args.length < 2) throw new TemplateError(`${where}: eq takes at least 2 arguments`);
    const [a, ...others] = args.map((x) => comparable(x, where));
    return others.some((b) => b === a);
  },
  ne: (args, where) => (arity(args, 2, where, 'ne'), comparable(args[0], where) !== comparable(args[1], where)),
  not: (args, where) => (arity(args, 1, where, 'not'), !truth(args[0])),
};

/** Functions that evaluate their arguments one at a time, as Go's do. */
const LAZY = new Set(['and', 'or']);

class Engine {
  private depth = 0;

  constructor(private readonly defines: Map<string, Node[]>) {}

  include(name: string, data: unknown, where: string): string {
    const body = this.defines.get(name);
    if (body === undefined) throw new TemplateError(`${where}: no template "${name}" is defined`);
    if (++this.depth > 100) throw new TemplateError(`${where}: include "${name}" nests too deep`);
    try {
      return this.render(body, data, [new Map([['', data]])]);
    } finally {
      this.depth -= 1;
    }
  }

  render(nodes: Node[], dot: unknown, scopes: Map<string, unknown>[]): string {
    let out = '';
    for (const node of nodes) {
      if (node.n === 'text') {
        out += node.text;
      } else if (node.n === 'print') {
        const v = this.pipeline(node.pipe, dot, scopes);
        if (node.pipe.decl === undefined) out += text(v, node.pipe.where);
      } else if (node.n === 'range') {
        const inner = [...scopes, new Map<string, unknown>()];
        out += this.range(node, this.pipeline({ ...node.pipe, decl: undefined }, dot, inner), dot, inner);
      } else {
        const inner = [...scopes, new Map<string, unknown>()];
        const v = this.pipeline(node.pipe, dot, inner);
        if (node.n === 'if') out += this.render(truth(v) ? node.body : node.otherwise, dot, inner);
        else out += truth(v) ? this.render(node.body, v, inner) : this.render(node.otherwise, dot, inner);
      }
    }
    return out;
  }

  private range(node: Extract<Node, { n: 'range' }>, v: unknown, dot: unknown, scopes: Map<string, unknown>[]): string {
    let entries: [unknown, unknown][];
    if (v === null || v === undefined) entries = [];
    else if (Array.isArray(v)) entries = v.map((e, i) => [i, e]);
    else if (isMap(v))
      entries = Object.keys(v)
        .sort()
        .map((k) => [k, v[k]]);
    else throw new TemplateError(`${node.pipe.where}: range can't iterate over a ${typeName(v)}`);
    if (entries.length === 0) return this.render(node.otherwise, dot, scopes);
    const names = node.pipe.decl?.names ?? [];
    return entries
      .map(([key, element]) => {
        const frame = new Map<string, unknown>(
          names.length === 2
            ? [
                [names[0]!, key],
                [names[1]!, element],
              ]
            : names.map((n) => [n, element]),
        );
        return this.render(node.body, element, [...scopes, frame]);
      })
      .join('');
  }

  private pipeline(pipe: Pipeline, dot: unknown, scopes: Map<string, unknown>[]): unknown {
    let value: unknown;
    pipe.commands.forEach((command, i) => {
      value = this.command(command, dot, scopes, pipe.where, i === 0 ? [] : [value]);
    });
    if (pipe.decl !== undefined) {
      const [name] = pipe.decl.names;
      if (pipe.decl.op === ':=') scopes.at(-1)!.set(name!, value);
      else {
        const scope = scopes.findLast((s) => s.has(name!));
        if (scope === undefined) throw new TemplateError(`${pipe.where}: undefined variable $${name}`);
        scope.set(name!, value);
      }
    }
    return value;
  }

  private command(args: Arg[], dot: unknown, scopes: Map<string, unknown>[], where: string, piped: unknown[]): unknown {
    const [head, ...rest] = args;
    if (head!.k !== 'fn') {
      if (rest.length > 0 || piped.length > 0) throw new TemplateError(`${where}: can't give an argument to a non-function`);
      return this.arg(head!, dot, scopes, where);
    }
    if (LAZY.has(head!.name)) {
      const thunks = [...rest.map((a) => () => this.arg(a, dot, scopes, where)), ...piped.map((p) => () => p)];
      if (thunks.length < 1) throw new TemplateError(`${where}: ${head!.name} takes at least 1 argument`);
      let v: unknown;
      for (const thunk of thunks) {
        v = thunk();
        if (head!.name === 'and' ? !truth(v) : truth(v)) return v;
      }
      return v;
    }
    return FUNCTIONS[head!.name]!([...rest.map((a) => this.arg(a, dot, scopes, where)), ...piped], where, this);
  }

  private arg(arg: Arg, dot: unknown, scopes: Map<string, unknown>[], where: string): unknown {
    if (arg.k === 'lit') return arg.v;
    if (arg.k === 'fn') return this.command([arg], dot, scopes, where, []);
    let v: unknown;
    if ('dot' in arg.base) v = dot;
    else if ('pipe' in arg.base) v = this.pipeline(arg.base.pipe, dot, scopes);
    else {
      const name = arg.base.variable;
      const scope = scopes.findLast((s) => s.has(name));
      if (scope === undefined) throw new TemplateError(`${where}: undefined variable $${name}`);
      v = scope.get(name);
    }
    for (const name of arg.path) v = field(v, name, where);
    return v;
  }
}

// ---------------------------------------------------------------------------------------------- charts

/** Parses and runs one template against `data`, with the given `define`s visible: for the renderer's own tests. */
export function renderTemplate(source: string, data: unknown, file = 'template'): string {
  const parser = new Parser(lex(source, file), file);
  const nodes = parser.parseFile();
  return new Engine(parser.defines).render(nodes, data, [new Map([['', data]])]);
}

/** Helm's merge of user values over the chart's: maps merge, anything else replaces, null deletes. */
export function mergeValues(base: unknown, over: unknown): unknown {
  if (!isMap(base) || !isMap(over)) return over;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete merged[key];
    else merged[key] = key in base ? mergeValues(base[key], value) : value;
  }
  return merged;
}

export interface RenderOptions {
  releaseName: string;
  namespace: string;
  /** Values merged over the chart's values.yaml, as `-f values.yaml` / `--set` would. */
  values?: Record<string, unknown>;
}

export interface RenderedObject {
  /** The template it came from, e.g. `templates/deployment.yaml`. */
  template: string;
  object: Record<string, unknown>;
}

export interface RenderedChart {
  objects: RenderedObject[];
  notes: string;
  values: Record<string, unknown>;
}

/**
 * The data a chart's templates see: `.Values` (a map), and `.Release` and `.Chart` (structs: a field Helm does not
 * have, or this renderer does not give, is an error). Anything else (`.Capabilities`, `.Files`, `.Template`) is
 * an error too.
 */
export function helmContext(
  values: Record<string, unknown>,
  release: { releaseName: string; namespace: string },
  chart: Record<string, unknown>,
): unknown {
  return new Struct('chartutil.Values', {
    Values: values,
    Release: new Struct('chartutil.Release', {
      Name: release.releaseName,
      Namespace: release.namespace,
      Service: 'Helm',
      IsInstall: true,
      IsUpgrade: false,
      Revision: 1,
    }),
    Chart: new Struct('chart.Metadata', {
      Name: chart.name,
      Version: chart.version,
      AppVersion: chart.appVersion,
      Description: chart.description ?? '',
    }),
  });
}

function readYaml(path: string): Record<string, unknown> {
  const value: unknown = parse(readFileSync(path, 'utf8'), { version: '1.1', uniqueKeys: true });
  if (!isMap(value)) throw new TemplateError(`${path}: not a YAML mapping`);
  return value;
}

/**
 * Renders the chart in `dir` as `helm template <releaseName> <dir> --namespace <namespace>` would, and parses
 * every manifest (YAML 1.1, as Kubernetes reads it; a duplicate key is an error).
 */
export function renderChart(dir: string, options: RenderOptions): RenderedChart {
  const chart = readYaml(join(dir, 'Chart.yaml'));
  if (chart.apiVersion !== 'v2') throw new TemplateError(`${dir}/Chart.yaml: apiVersion must be v2`);
  for (const key of ['name', 'version', 'appVersion']) {
    if (typeof chart[key] !== 'string') throw new TemplateError(`${dir}/Chart.yaml: ${key} must be a string`);
  }
  const values = mergeValues(readYaml(join(dir, 'values.yaml')), options.values ?? {});
  if (!isMap(values)) throw new TemplateError('values must be a mapping');
  const root = helmContext(values, options, chart);
  const templatesDir = join(dir, 'templates');
  const parsed = new Map<string, Node[]>();
  const defines = new Map<string, Node[]>();
  for (const name of readdirSync(templatesDir).sort()) {
    const file = `templates/${name}`;
    if (statSync(join(templatesDir, name)).isDirectory())
      throw new TemplateError(`${file}: folders in templates/ are not supported by this renderer`);
    if (!/^_.*\.tpl$|^[^_].*\.yaml$|^NOTES\.txt$/.test(name)) throw new TemplateError(`${file}: expected *.yaml, _*.tpl or NOTES.txt`);
    const parser = new Parser(lex(readFileSync(join(templatesDir, name), 'utf8'), file), file);
    const nodes = parser.parseFile();
    for (const [defined, body] of parser.defines) {
      if (defines.has(defined)) throw new TemplateError(`${file}: "${defined}" is defined twice`);
      defines.set(defined, body);
    }
    if (name.startsWith('_')) {
      if (nodes.some((node) => node.n !== 'text' || node.text.trim() !== ''))
        throw new TemplateError(`${file}: a partial may hold only defines`);
    } else parsed.set(file, nodes);
  }

  const engine = new Engine(defines);
  const objects: RenderedObject[] = [];
  let notes = '';
  for (const [file, nodes] of parsed) {
    const output = engine.render(nodes, root, [new Map([['', root]])]);
    if (file === 'templates/NOTES.txt') {
      notes = output;
      continue;
    }
    for (const doc of parseAllDocuments(output, { version: '1.1', uniqueKeys: true })) {
      const problems = [...doc.errors, ...doc.warnings];
      if (problems.length > 0) throw new TemplateError(`${file} renders invalid YAML: ${problems[0]!.message}\n${output}`);
      const object: unknown = doc.toJS();
      if (object === null || object === undefined) continue;
      if (!isMap(object) || typeof object.apiVersion !== 'string' || typeof object.kind !== 'string') {
        throw new TemplateError(`${file} renders a document without apiVersion and kind:\n${output}`);
      }
      objects.push({ template: file, object });
    }
  }
  return { objects, notes, values };
}
