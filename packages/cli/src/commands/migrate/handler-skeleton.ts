/*
 * The TypeScript handler written in place of a TorchServe Python handler. It runs as it is (tensors
 * in as JSON, the model's outputs out), and each hook says where its Python counterpart is, for
 * the author to port. The Python is not translated: it is read with a regex for `def name(`.
 */

/** The methods of a TorchServe handler that Kiln's BaseHandler has a hook for. */
export const PYTHON_METHODS = ['initialize', 'preprocess', 'inference', 'postprocess', 'handle'] as const;
export type PythonMethod = (typeof PYTHON_METHODS)[number];

export interface PythonHandler {
  /** Where the Python is kept in the project, e.g. `torchserve/handler.py`; undefined for a TorchServe built-in. */
  file: string | undefined;
  /** The first `class Name` of the file. */
  className: string | undefined;
  /** Each method found, with its 1-based line. */
  methods: Partial<Record<PythonMethod, number>>;
  /** The function after `:` in `module:function`, when TorchServe called a function, not a class. */
  entry: string | undefined;
}

export function readPythonHandler(source: string, file: string, entry: string | undefined): PythonHandler {
  const methods: Partial<Record<PythonMethod, number>> = {};
  const lines = source.split('\n');
  lines.forEach((line, i) => {
    const name = /^\s*def (\w+)\(/.exec(line)?.[1];
    if (name !== undefined && (PYTHON_METHODS as readonly string[]).includes(name)) methods[name as PythonMethod] ??= i + 1;
  });
  return { file, className: /^class (\w+)\s*[(:]/m.exec(source)?.[1], methods, entry };
}

/** `src/handler.ts` for a Python handler, or for a TorchServe built-in Kiln has no counterpart of (`builtin`). */
export function handlerSkeleton(python: PythonHandler, builtin?: string): string {
  const className = python.className !== undefined && /^[A-Z]\w*$/.test(python.className) ? python.className : 'MigratedHandler';
  const at = (method: PythonMethod) => {
    const line = python.methods[method];
    if (python.file === undefined)
      return `TorchServe's built-in ${builtin ?? 'handler'} (ts/torch_handler/${builtin ?? 'base_handler'}.py)`;
    return line === undefined ? `not defined in ${python.file}` : `${python.file}:${line}`;
  };
  const origin =
    python.file === undefined
      ? `TorchServe's built-in handler ${builtin}, which Kiln has no built-in for`
      : `the TorchServe handler ${python.file}${python.className === undefined ? '' : ` (class ${python.className})`}`;
  const found = PYTHON_METHODS.filter((m) => python.methods[m] !== undefined);
  const entry =
    python.entry === undefined
      ? []
      : [
          ` * TorchServe called the function ${python.entry}(data, context) of that file, once with data None to`,
          ' * initialize and then once per batch; its parts map onto the hooks below the same way.',
        ];
  return `import { BaseHandler, tensorValues, type HandlerContext, type KilnRequest, type Tensors } from '@kiln/handler-sdk';

/*
 * Written by kiln migrate in place of ${origin}.
${found.length > 0 ? ` * Its methods: ${found.map((m) => `${m} (line ${python.methods[m]})`).join(', ')}.\n` : ''}${entry.map((l) => `${l}\n`).join('')} *
 * It runs as it is: preprocess reads tensors from a JSON body {"inputs": ...}, inference runs the ONNX
 * model once on the whole batch, and postprocess answers each output's values. Port the Python into
 * the hooks: each says where its counterpart is. TorchServe's handle(data, context) got a list of
 * requests; Kiln's BaseHandler.handle() calls preprocess once per request, stacks the tensors into
 * one batch, runs inference once and calls postprocess once per request, so a request that fails
 * fails alone. The SDK: docs/reference/handler-sdk.md.
 */

/** The handler: section of model-config.yaml (TorchServe: context.model_yaml_config["handler"]). */
export type Config = Record<string, unknown>;

export type Answer = Record<string, unknown>;

export default class ${className} extends BaseHandler<unknown, Answer, Config> {
  // Python: initialize(self, context), ${at('initialize')}.
  // Files it read from context.system_properties["model_dir"] are in context.modelDir; settings
  // from context.model_yaml_config["handler"] are in context.config.handler.
  override async initialize(context: HandlerContext<Config>): Promise<void> {
    await super.initialize(context); // opens the ONNX session on the archive's --serialized-file
  }

  // Python: preprocess(self, data), ${at('preprocess')}.
  // TorchServe passed the whole batch; this gets one request. What row.get("data") or
  // row.get("body") gave is requestBytes(request) (from '@kiln/handler-sdk'), a JSON body is
  // request.json, and images have decodeImage, resizeImage and imageToTensor.
  override preprocess(request: KilnRequest, context: HandlerContext<Config>): Tensors | Promise<Tensors> {
    return super.preprocess(request, context);
  }

  // Python: inference(self, data), ${at('inference')}.
  // TorchServe's default ran self.model(data); this runs the ONNX model on the stacked batch.
  override inference(batch: Tensors, context: HandlerContext<Config>): Promise<Tensors> {
    return super.inference(batch, context);
  }

  // Python: postprocess(self, data), ${at('postprocess')}.
  // TorchServe returned a list with one element per request; this returns one request's answer,
  // from its rows of the outputs.
  override postprocess(output: Tensors): Answer {
    return Object.fromEntries(Object.entries(output).map(([name, value]) => [name, tensorValues(value)]));
  }
${
  python.methods.handle === undefined
    ? ''
    : `
  // Python: handle(self, data, context), ${at('handle')}.
  // BaseHandler.handle() runs preprocess, inference and postprocess as described above. Override
  // handle(requests, context) only if the Python did more than that; it returns one answer, or one
  // Error, per request.
`
}}
`;
}
