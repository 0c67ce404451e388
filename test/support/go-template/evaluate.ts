/**
 * The back half of the Go text/template subset that helm-render.ts renders charts with: Go's truth and field
 * access, the text an action writes for a value, the template, Helm and Sprig functions the chart uses (FUNCTIONS,
 * plus the lazy `and` and `or`), and the Engine that walks a parsed tree against its data. Values are what the YAML
 * parser gives (maps, lists, strings, float64 numbers, booleans, null) plus Struct for Helm's `.Release` and `.Chart`.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { type Arg, type Node, type Pipeline, TemplateError, parseTemplate } from './parse.js';

/** A Go struct (.Release, .Chart): a field it lacks is an error, where a map's missing key is nil. */
export class Struct {
  constructor(
    readonly type: string,
    readonly fields: Record<string, unknown>,
  ) {}
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

export function isMap(v: unknown): v is Record<string, unknown> {
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

/** Whether a pipeline may call `name`: what the parser checks every function name against. */
export function isFunction(name: string): boolean {
  return Object.hasOwn(FUNCTIONS, name) || LAZY.has(name);
}

export class Engine {
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

/** Parses and runs one template against `data`, with the given `define`s visible: for the renderer's own tests. */
export function renderTemplate(source: string, data: unknown, file = 'template'): string {
  const { nodes, defines } = parseTemplate(source, file, isFunction);
  return new Engine(defines).render(nodes, data, [new Map([['', data]])]);
}
