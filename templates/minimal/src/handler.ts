import { BaseHandler, RequestError, type HandlerContext, type KilnRequest } from '@kiln/handler-sdk';

/** The `handler:` section of model-config.yaml. */
export interface WordsConfig {
  /** Put at the head of every answer (default "Hello"). */
  greeting?: string;
}

export interface WordsAnswer {
  greeting: string;
  words: number;
  upper: string;
  reversed: string;
}

/**
 * Answers `{"text": "..."}` with its word count, the text upper-cased and the text reversed.
 *
 * There is no ONNX model here, so the handler overrides handle() instead of preprocess → inference →
 * postprocess: BaseHandler's inference() needs a session, which only an archive with a
 * --serialized-file has.
 */
export default class WordsHandler extends BaseHandler<unknown, WordsAnswer, WordsConfig> {
  private greeting = 'Hello';

  override async initialize(context: HandlerContext<WordsConfig>): Promise<void> {
    await super.initialize(context); // creates no session: the archive has no model
    const { greeting } = context.config.handler;
    // A bad setting should stop the model from loading, not fail every request later.
    if (greeting !== undefined && typeof greeting !== 'string') {
      throw new TypeError(`handler.greeting in model-config.yaml must be a string, received ${JSON.stringify(greeting)}`);
    }
    this.greeting = greeting ?? this.greeting;
  }

  override async handle(requests: KilnRequest[]): Promise<(WordsAnswer | Error)[]> {
    // Returning an Error at index i fails request i alone (a RequestError answers it with 400);
    // the other requests in the batch are still answered.
    return requests.map((request) => {
      try {
        return this.answer(readText(request));
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    });
  }

  private answer(text: string): WordsAnswer {
    return {
      greeting: this.greeting,
      words: text.split(/\s+/).filter((word) => word !== '').length,
      upper: text.toUpperCase(),
      // By code point, not UTF-16 unit, so emoji and other astral characters survive reversal.
      reversed: Array.from(text).reverse().join(''),
    };
  }
}

function readText(request: KilnRequest): string {
  if (request.json === undefined) {
    const received = request.contentType ?? 'no content type';
    throw new RequestError(`send a JSON body {"text": "..."} with content type application/json; received ${received}`);
  }
  const text = (request.json as { text?: unknown } | null)?.text;
  if (typeof text !== 'string') {
    throw new RequestError(`the body must be {"text": "<a string>"}; received ${JSON.stringify(request.json).slice(0, 100)}`);
  }
  return text;
}
