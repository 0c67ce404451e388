import { describe, expect, test } from 'vitest';
import { looksLikeProperties, parseProperties } from './java-properties.js';

const pairs = (text: string) => parseProperties(text).map(({ key, value }) => [key, value]);

describe('parseProperties reads what java.util.Properties.load reads', () => {
  test('comments, blank lines and the three separators', () => {
    const text = [
      '# a comment',
      '! also a comment',
      '',
      '   ',
      'inference_address=http://0.0.0.0:8080',
      '  management_address = http://0.0.0.0:8081',
      'model_store: /mnt/models',
      'job_queue_size 10',
      'a:=b',
      'c = : d',
      'empty=',
      'lonely',
      '\tindented\t=\tvalue',
    ].join('\n');
    expect(pairs(text)).toEqual([
      ['inference_address', 'http://0.0.0.0:8080'],
      ['management_address', 'http://0.0.0.0:8081'],
      ['model_store', '/mnt/models'],
      ['job_queue_size', '10'],
      ['a', '=b'],
      ['c', ': d'],
      ['empty', ''],
      ['lonely', ''],
      ['indented', 'value'],
    ]);
  });

  test('a trailing odd backslash continues the line, and the next line loses its leading white space', () => {
    const text = [
      'load_models=a.mar,\\',
      '    b.mar,\\',
      '\tc.mar',
      'even=x\\\\',
      'next=y',
      'cont=#not a comment\\',
      '  # still the value',
    ].join('\n');
    expect(pairs(text)).toEqual([
      ['load_models', 'a.mar,b.mar,c.mar'],
      ['even', 'x\\'],
      ['next', 'y'],
      ['cont', '#not a comment# still the value'],
    ]);
  });

  test('a comment line is never continued', () => {
    expect(pairs('# comment \\\nkey=value')).toEqual([['key', 'value']]);
  });

  test('escapes: \\t \\n \\r \\f \\uXXXX, and a backslash before any other character', () => {
    const text = 'tab=a\\tb\nnl=a\\nb\nuni=caf\\u00e9\nkey\\=with\\:seps\\ and\\ spaces=v\nslash=C:\\\\dir\nother=\\q\\#';
    expect(pairs(text)).toEqual([
      ['tab', 'a\tb'],
      ['nl', 'a\nb'],
      ['uni', 'café'],
      ['key=with:seps and spaces', 'v'],
      ['slash', 'C:\\dir'],
      ['other', 'q#'],
    ]);
  });

  test('values keep trailing white space; CRLF and CR line ends; a backslash ending the file is dropped', () => {
    expect(pairs('a=1  \r\nb=2\rc=3\\')).toEqual([
      ['a', '1  '],
      ['b', '2'],
      ['c', '3'],
    ]);
  });

  test('a key given twice appears twice, each with the line it starts on', () => {
    expect(parseProperties('# x\na=1\nb=2\\\n 3\na=4\n')).toEqual([
      { key: 'a', value: '1', line: 2 },
      { key: 'b', value: '23', line: 3 },
      { key: 'a', value: '4', line: 5 },
    ]);
  });

  test('a malformed \\uXXXX escape is an error naming the line', () => {
    expect(() => parseProperties('ok=1\nbad=\\u12g4')).toThrow(new SyntaxError('line 2: malformed \\uXXXX escape "\\u12g4"'));
  });
});

describe('looksLikeProperties', () => {
  test.each([
    ['inference_address=http://0.0.0.0:8080\nload_models=all\n', true],
    ['# TorchServe\nmodel_store: /m\njob_queue_size=10\nload_models=a.mar,\\\n  b.mar\n', true],
    ['workers: 2\nmodelStore: store\n', false], // YAML, no `=`
    ['models:\n  - a=a.mar\n', false],
    ['just some words\n', false],
    ['', false],
  ])('%j → %s', (text, expected) => {
    expect(looksLikeProperties(text)).toBe(expected);
  });
});
