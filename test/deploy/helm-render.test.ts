import { describe, expect, test } from 'vitest';
import { TemplateError, helmContext, mergeValues, renderTemplate } from '../support/helm-render.js';

// The renderer the chart tests rely on: what it does is checked against what Go's text/template and Helm do
// (the expected strings are theirs), and what it does not support must fail, never render something else.

const render = (source: string, data: unknown = {}, defines = '') => renderTemplate(defines + source, data);

describe('Go template syntax', () => {
  test('trim markers remove the whitespace, newlines included, on their side only', () => {
    expect(render('a  \n  {{- "b" -}}  \n  c')).toBe('abc');
    expect(render('a {{- "b" }} c')).toBe('ab c');
    expect(render('a {{ "b" -}} c')).toBe('a bc');
    expect(render('{{ -3 }}')).toBe('-3');
    expect(render('x\n{{- /* a comment */ -}}\ny')).toBe('xy');
    expect(render('x {{/* a comment with }} in it */}} y')).toBe('x  y');
  });

  test('fields of maps and of the dot, variables, parentheses and pipelines', () => {
    const data = { Values: { image: { repository: 'kiln', tag: '' }, n: 3 } };
    expect(render('{{ .Values.image.repository }}:{{ default "0.1.0" .Values.image.tag }}', data)).toBe('kiln:0.1.0');
    expect(render('{{ $v := .Values }}{{ $v.image.repository }}/{{ $.Values.n }}', data)).toBe('kiln/3');
    expect(render('{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}')).toBe('b');
    expect(render('{{ (printf "%s-%s" "a" "b") | quote }}')).toBe('"a-b"');
    expect(render('{{ "abcdef-" | trunc 6 | trimSuffix "f" }}')).toBe('abcde');
    expect(() => render('{{ .Values.missing }}', data)).toThrow(/is nil \(a missing value\?\)/);
  });

  test('if / else if / else, with, range over lists and maps (in key order)', () => {
    const tmpl = '{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}';
    expect([{ a: 1 }, { b: 'x' }, { a: 0, b: [] }].map((d) => render(tmpl, d))).toEqual(['A', 'B', 'C']);
    expect(render('{{ with .m }}{{ .k }}{{ else }}none{{ end }}', { m: { k: 'v' } })).toBe('v');
    expect(render('{{ with .m }}{{ .k }}{{ else }}none{{ end }}', { m: {} })).toBe('none');
    expect(render('{{ range $i, $e := .l }}{{ $i }}={{ $e }};{{ end }}', { l: ['a', 'b'] })).toBe('0=a;1=b;');
    expect(render('{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}', { m: { b: 2, a: 1 } })).toBe('a=1;b=2;');
    expect(render('{{ range .l }}{{ . }}{{ else }}empty{{ end }}', { l: null })).toBe('empty');
    expect(render('{{ and 1 "" "x" }}|{{ or 0 "" "x" }}|{{ not "" }}|{{ eq "a" "b" "a" }}|{{ ne "a" "a" }}')).toBe('|x|true|true|false');
    expect(render('{{ and false (fail "not evaluated") }}')).toBe('false');
  });

  test('define and include, with the included data as . and $', () => {
    const defines = '{{- define "t.name" -}}{{ .name }}-{{ $.suffix }}{{- end -}}\n';
    expect(render('[{{ include "t.name" . }}]', { name: 'kiln', suffix: 'x' }, defines)).toBe('[kiln-x]');
    expect(() => render('{{ include "nope" . }}')).toThrow(/no template "nope"/);
  });
});

describe('Helm and Sprig functions', () => {
  test('toYaml writes YAML 1.1 as Helm does: keys sorted, "off" quoted, no final newline', () => {
    expect(render('{{ toYaml .v }}', { v: { b: 'off', a: [1, 'x'] } })).toBe('a:\n  - 1\n  - x\nb: "off"');
    expect(render('x:\n  {{- toYaml .v | nindent 2 }}', { v: { k: 'v' } })).toBe('x:\n  k: v');
    expect(render('{{ toYaml .v | indent 2 }}', { v: { a: 1, b: 2 } })).toBe('  a: 1\n  b: 2');
  });

  test('quote, printf, b64enc, sha256sum, add, contains, default', () => {
    expect(render('{{ quote "a\\"b" 5 true }}')).toBe('"a\\"b" "5" "true"');
    expect(render('{{ printf "%s=%v %q %%" "a" 5 "b" }}')).toBe('a=5 "b" %');
    expect(render('{{ b64enc "kiln-token" }}')).toBe('a2lsbi10b2tlbg==');
    expect(render('{{ sha256sum "abc" }}')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(render('{{ add 5 30 120 5 10 }}')).toBe('170');
    expect(render('{{ contains "kiln" "my-kiln" }} {{ contains "kiln" "other" }}')).toBe('true false');
    expect(render('{{ default 3 0 }} {{ default 3 4 }} {{ default "d" "" }}')).toBe('3 4 d');
    expect(render('{{ "abc" | trunc -2 }}')).toBe('bc');
  });

  test('required and fail stop the render with their message', () => {
    expect(() => render('{{ required "token.value is required" .v }}', { v: '' })).toThrow(/token\.value is required/);
    expect(render('{{ required "x" .v }}', { v: 0 })).toBe('0');
    expect(() => render('{{ fail "keda and hpa exclude each other" }}')).toThrow(/keda and hpa exclude each other/);
  });

  test('values merge as Helm merges them: maps deeply, lists replaced, null deletes', () => {
    expect(mergeValues({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: null, e: 2 })).toEqual({ a: { b: 1, c: [3] }, e: 2 });
  });
});

describe('what is not supported fails loudly', () => {
  test.each([
    ['an unknown function', '{{ tpl "x" . }}', /function "tpl" is not supported/],
    ['the template action', '{{ template "x" . }}', /"template" is not supported/],
    ['block', '{{ block "x" . }}{{ end }}', /"block" is not supported/],
    ['break', '{{ range .Values.l }}{{ break }}{{ end }}', /"break" is not supported/],
    ['a missing built-in object', '{{ .Capabilities.KubeVersion }}', /can't evaluate field Capabilities/],
    ['a field of nil', '{{ .Values.nope.deeper }}', /nil pointer evaluating interface \{\}\.deeper/],
    ['printing a map', '{{ .Values }}', /is a map, not a scalar/],
    ['printf %d', '{{ printf "%d" 5 }}', /%d is not supported/],
    ['a float64 value Go writes in exponent form', '{{ .Values.big }}', /exponent form/],
    ['eq on numbers', '{{ eq 1 1 }}', /compare strings or booleans/],
    ['an unclosed if', '{{ if true }}x', /has no end/],
    ['a stray end', '{{ end }}', /unexpected \{\{end\}\}/],
    ['a wrong argument count', '{{ trunc 5 }}', /trunc takes 2 argument/],
    ['an argument to a non-function', '{{ .Values 1 }}', /argument to a non-function/],
    ['a nested define', '{{ if true }}{{ define "x" }}{{ end }}{{ end }}', /define must be at the top level/],
    ['an undefined variable', '{{ $nope }}', /undefined variable \$nope/],
  ])('%s', (_, source, message) => {
    const data = helmContext({ l: [1], big: 1_000_000 }, { releaseName: 'kiln', namespace: 'default' }, { name: 'kiln' });
    expect(() => renderTemplate(source, data)).toThrow(TemplateError);
    expect(() => renderTemplate(source, data)).toThrow(message);
  });
});
