import { BaseHandler } from '../handler/base-handler.js';

/**
 * `--handler tensor`: named tensors in, named tensors out. Requests are KServe v2 tensors or a
 * JSON body `{"inputs": [{name, datatype, shape, data}]}`; answers are `{"outputs": [...]}` in
 * the same form. BaseHandler's defaults do exactly this.
 */
export class TensorHandler extends BaseHandler {}
