import { describe, expect, test } from 'vitest';
import { fromWireError, toWireError, type WireError } from '../runtime/wire.js';
import { ERROR_CATALOGUE } from './catalogue.js';
import { KilnError, isKilnErrorCode, serverError, toKilnError } from './kiln-error.js';

describe('KilnError', () => {
  test('takes its status from the catalogue', () => {
    for (const code of ['KILN_ERR_BAD_REQUEST', 'KILN_ERR_QUEUE_FULL', 'KILN_ERR_RESPONSE_TIMEOUT', 'KILN_ERR_OUTPUT_EXISTS'] as const) {
      expect(new KilnError(code, 'x').status).toBe(ERROR_CATALOGUE[code].status);
    }
    expect(serverError('KILN_ERR_QUEUE_FULL', 'full').status).toBe(503);
    expect(isKilnErrorCode('KILN_ERR_INTERNAL')).toBe(true);
    expect(isKilnErrorCode('KILN_ERR_NOPE')).toBe(false);
  });
});

describe('toKilnError', () => {
  test('a KilnError is returned as it is', () => {
    const error = serverError('KILN_ERR_MODEL_NOT_FOUND', 'no such model');
    expect(toKilnError(error)).toBe(error);
  });

  test('anything else thrown in the server is KILN_ERR_INTERNAL (500), with its message and the stack where it was thrown', () => {
    const thrown = new TypeError('cannot read properties of undefined');
    const error = toKilnError(thrown);
    expect({ code: error.code, status: error.status, message: error.message }).toEqual({
      code: 'KILN_ERR_INTERNAL',
      status: 500,
      message: 'cannot read properties of undefined',
    });
    expect(error.stack).toContain(thrown.stack!.split('\n')[1]);
    expect(error.cause).toBe(thrown);
    expect(toKilnError('a string').message).toBe('a string');
  });

  test("a framework error with a 4xx statusCode is the client's: KILN_ERR_BAD_REQUEST", () => {
    const thrown = Object.assign(new SyntaxError('Unexpected token } in JSON at position 9'), { statusCode: 400 });
    expect(toKilnError(thrown)).toMatchObject({
      code: 'KILN_ERR_BAD_REQUEST',
      status: 400,
      message: 'Unexpected token } in JSON at position 9',
    });
  });

  test('what a handler threw is KILN_ERR_HANDLER_FAILED, naming the phase', () => {
    expect(toKilnError(new Error('no labels'), 'KILN_ERR_HANDLER_FAILED', 'postprocess')).toMatchObject({
      code: 'KILN_ERR_HANDLER_FAILED',
      status: 500,
      message: 'postprocess failed: no labels',
      phase: 'postprocess',
    });
  });
});

describe('errors between a worker and the server', () => {
  test('cross as plain data and come back whole', () => {
    const error = toKilnError(new Error('boom'), 'KILN_ERR_HANDLER_FAILED', 'inference');
    const wire = toWireError(error);
    expect(JSON.parse(JSON.stringify(wire))).toEqual(wire);
    const back = fromWireError(wire);
    expect(back).toBeInstanceOf(KilnError);
    expect({ code: back.code, status: back.status, message: back.message, phase: back.phase, stack: back.stack }).toEqual({
      code: error.code,
      status: 500,
      message: error.message,
      phase: 'inference',
      stack: error.stack,
    });
  });

  test('a code the server does not know is KILN_ERR_INTERNAL, naming it', () => {
    // As it would arrive from a newer worker: parsed, not type-checked.
    const wire: WireError = JSON.parse('{"code": "KILN_ERR_FROM_THE_FUTURE", "message": "hi"}');
    const back = fromWireError(wire);
    expect({ code: back.code, status: back.status, message: back.message }).toEqual({
      code: 'KILN_ERR_INTERNAL',
      status: 500,
      message: 'KILN_ERR_FROM_THE_FUTURE: hi',
    });
  });
});
