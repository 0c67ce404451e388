import { serverError } from '../errors.js';
import type { ModelVersion } from './model-version.js';

interface Versions {
  versions: Map<string, ModelVersion>;
  defaultVersion: string;
}

/** Models by name and version, each with a default version (the first registered, until changed). */
export class ModelRegistry {
  private readonly models = new Map<string, Versions>();

  add(entry: ModelVersion): void {
    const existing = this.models.get(entry.name);
    if (existing === undefined) {
      this.models.set(entry.name, { versions: new Map([[entry.version, entry]]), defaultVersion: entry.version });
      return;
    }
    if (existing.versions.has(entry.version)) {
      throw serverError(
        'KILN_ERR_MODEL_CONFLICT',
        `model "${entry.name}" version ${entry.version} is already registered; unregister it first or archive a new version`,
      );
    }
    existing.versions.set(entry.version, entry);
  }

  remove(entry: ModelVersion): void {
    const model = this.models.get(entry.name);
    if (model === undefined) return;
    model.versions.delete(entry.version);
    if (model.versions.size === 0) this.models.delete(entry.name);
    else if (model.defaultVersion === entry.version) model.defaultVersion = model.versions.keys().next().value!;
  }

  /** The named version, or the default one; 404 errors name what exists. */
  resolve(name: string, version?: string): ModelVersion {
    const model = this.models.get(name);
    if (model === undefined) {
      const known = [...this.models.keys()];
      throw serverError(
        'KILN_ERR_MODEL_NOT_FOUND',
        `Model not found: ${name}${known.length > 0 ? `; registered models: ${known.join(', ')}` : '; no models are registered'}`,
      );
    }
    const entry = model.versions.get(version ?? model.defaultVersion);
    if (entry === undefined) {
      throw serverError(
        'KILN_ERR_VERSION_NOT_FOUND',
        `Model version: ${version} does not exist for model: ${name}; versions: ${[...model.versions.keys()].join(', ')}`,
      );
    }
    return entry;
  }

  defaultVersion(name: string): string | undefined {
    return this.models.get(name)?.defaultVersion;
  }

  setDefault(name: string, version: string): void {
    const entry = this.resolve(name, version);
    this.models.get(name)!.defaultVersion = entry.version;
  }

  versions(name: string): ModelVersion[] {
    return [...(this.models.get(name)?.versions.values() ?? [])];
  }

  names(): string[] {
    return [...this.models.keys()].sort();
  }

  all(): ModelVersion[] {
    return [...this.models.values()].flatMap((m) => [...m.versions.values()]);
  }
}
