/**
 * File source. In: a YAML config path. Out: each saved, valid version of the file as a Config,
 * or a ConfigError naming the file, the config path, line and column. Watches the file's folder
 * (editors save by writing a temp file and renaming it over the original, which a watch on the
 * file itself would lose) and re-reads on any event for that name; identical content emits nothing.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseConfig } from '../config/parse.js';
import type { Config } from '../config/schema.js';
import { ConsulXdsError } from '../errors.js';

export interface ConfigFileHandlers {
  onConfig(config: Config, origin: string): void;
  onError(error: Error): void;
}

export class ConfigFileSource {
  private readonly file: string;
  private readonly handlers: ConfigFileHandlers;
  private watcher?: FSWatcher;
  private lastText?: string;
  private pending?: NodeJS.Timeout;
  private reading: Promise<void> = Promise.resolve();

  constructor(file: string, handlers: ConfigFileHandlers) {
    this.file = path.resolve(file);
    this.handlers = handlers;
  }

  /** Reads the file once (throws if it is missing or invalid: there is nothing to serve), then watches it. */
  async start(): Promise<Config> {
    const text = await this.readText();
    const config = parseConfig(text, this.file);
    this.lastText = text;
    this.watcher = watch(path.dirname(this.file), { persistent: false }, (_event, name) => {
      if (name !== null && name !== path.basename(this.file)) return;
      // Several events arrive per save; read once they settle.
      if (this.pending) clearTimeout(this.pending);
      this.pending = setTimeout(() => {
        this.pending = undefined;
        this.reading = this.reading.then(() => this.reload());
      }, 15);
    });
    return config;
  }

  close(): void {
    this.watcher?.close();
    if (this.pending) clearTimeout(this.pending);
  }

  private async readText(): Promise<string> {
    try {
      return await readFile(this.file, 'utf8');
    } catch (err) {
      throw new ConsulXdsError('CXDS_CONFIG_FILE', `${this.file}: cannot read config file: ${(err as Error).message}`, { cause: err });
    }
  }

  private async reload(): Promise<void> {
    let text: string;
    try {
      text = await this.readText();
    } catch (err) {
      // A rename-in-progress or a deleted file: keep the last good config.
      this.handlers.onError(err as Error);
      return;
    }
    if (text === this.lastText) return;
    this.lastText = text;
    try {
      this.handlers.onConfig(parseConfig(text, this.file), this.file);
    } catch (err) {
      this.handlers.onError(err as Error);
    }
  }
}
