import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { Engine, Struct, isFunction, isMap } from './go-template/evaluate.js';
import { type Node, TemplateError, parseTemplate } from './go-template/parse.js';

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

export { TemplateError } from './go-template/parse.js';
export { renderTemplate } from './go-template/evaluate.js';

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
    const { nodes, defines: fileDefines } = parseTemplate(readFileSync(join(templatesDir, name), 'utf8'), file, isFunction);
    for (const [defined, body] of fileDefines) {
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
