import type { Datatype } from './datatypes.js';

/** One input or output of the ONNX graph. A dynamic dimension is -1. */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** Absent when the model does not fix the rank. */
  shape?: number[];
}

export interface Signature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface FileEntry {
  size: number;
  sha256: string;
}

/** `MAR-INF/MANIFEST.json`: TorchServe's fields plus Kiln's signature, SDK version and file hashes. */
export interface Manifest {
  /** `dd/mm/yyyy HH:MM:SS` in UTC, as TorchServe writes it. */
  createdOn: string;
  runtime: 'node';
  archiverVersion: string;
  sdkVersion: string;
  model: {
    modelName: string;
    modelVersion: string;
    /** The ONNX file at the archive root. Absent for handlers that do not use ONNX. */
    serializedFile?: string;
    /** A built-in handler name, or `handler.mjs[:export]`. */
    handler: string;
    configFile?: string;
    description?: string;
  };
  /** Present when the archive has a serialized ONNX file. */
  signature?: Signature;
  /** Every file in the archive but the manifest itself, by archive path. */
  files: Record<string, FileEntry>;
}

export const MANIFEST_PATH = 'MAR-INF/MANIFEST.json';
/** The bundled handler's path inside an archive. */
export const BUNDLED_HANDLER_FILE = 'handler.mjs';
