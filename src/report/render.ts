// Writes the human-facing outputs of a report next to report.json: report.html and the
// ATT&CK Navigator layer. Used at the end of an analysis and by `sandtrace report DIR`.
import { join } from 'node:path';
import type { Report } from './schema.js';
import { renderHtml } from './html.js';
import { navigatorLayer } from './navigator.js';
import { makeOutDir, writeOutputFile } from '../outpath.js';

export const HTML_FILE = 'report.html';
export const LAYER_FILE = 'attack-layer.json';

export async function renderOutputs(report: Report, dir: string): Promise<string[]> {
  makeOutDir(dir);
  const html = join(dir, HTML_FILE);
  const layer = join(dir, LAYER_FILE);
  await writeOutputFile(html, renderHtml(report));
  await writeOutputFile(layer, JSON.stringify(navigatorLayer(report), null, 2) + '\n');
  return [html, layer];
}
