/**
 * The front half of the Go text/template subset that helm-render.ts renders charts with: the lexer splits a template
 * into text and actions (applying the `{{-` / `-}}` trim markers and dropping comments), the tokenizer turns each
 * action into tokens, and the parser builds the node tree and collects the file's `define`s. It refuses, at parse
 * time, any keyword or function this renderer does not support; which names are functions is the evaluator's to say
 * (go-template/evaluate.ts), so it is passed in rather than imported.
 */

export class TemplateError extends Error {}

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

export type Arg =
  | { k: 'lit'; v: unknown }
  | { k: 'fn'; name: string }
  | { k: 'field'; base: { dot: true } | { variable: string } | { pipe: Pipeline }; path: string[] };
export interface Pipeline {
  decl: { names: string[]; op: ':=' | '=' } | undefined;
  commands: Arg[][];
  where: string;
}
export type Node =
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
    private readonly isFunction: (name: string) => boolean,
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
      nodes.push({ n: 'print', pipe: parsePipeline(segment.tokens, where, this.isFunction) });
    }
    return { nodes, stop: undefined };
  }

  private parseControl(word: 'if' | 'with' | 'range', tokens: Token[], where: string): Node {
    const pipe = parsePipeline(tokens, where, this.isFunction, word === 'range');
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

function parsePipeline(tokens: Token[], where: string, isFunction: (name: string) => boolean, range = false): Pipeline {
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
    const [arg, next] = parseArg(tokens, at, where, isFunction);
    commands.at(-1)!.push(arg);
    at = next;
  }
  if (commands.at(-1)!.length === 0) throw new TemplateError(`${where}: missing command`);
  for (const command of commands.slice(1)) {
    if (command[0]!.k !== 'fn') throw new TemplateError(`${where}: only a function can follow |`);
  }
  return { decl, commands, where };
}

function parseArg(tokens: Token[], at: number, where: string, isFunction: (name: string) => boolean): [Arg, number] {
  const token = tokens[at]!;
  switch (token.t) {
    case 'lit':
      return [{ k: 'lit', v: token.v }, at + 1];
    case 'field':
      return [{ k: 'field', base: { dot: true }, path: token.path }, at + 1];
    case 'var':
      return [{ k: 'field', base: { variable: token.name }, path: token.path }, at + 1];
    case 'ident':
      if (!isFunction(token.v)) {
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
      return [{ k: 'field', base: { pipe: parsePipeline(tokens.slice(at + 1, end - 1), where, isFunction) }, path: close.path }, end];
    }
    default:
      throw new TemplateError(`${where}: unexpected "${token.t}"`);
  }
}

/** A template file's nodes and, separately, its `define`s. */
export interface ParsedTemplate {
  nodes: Node[];
  defines: Map<string, Node[]>;
}

/** Lexes and parses one template file; `isFunction` says which names a pipeline may call. */
export function parseTemplate(source: string, file: string, isFunction: (name: string) => boolean): ParsedTemplate {
  const parser = new Parser(lex(source, file), file, isFunction);
  const nodes = parser.parseFile();
  return { nodes, defines: parser.defines };
}
