// Reads the data a single-file Allure 3 report embeds in its index.html: plugin-awesome writes every data
// file as `d("<path>","<base64>")` inside one script (core-api createReportDataScript). Used to check a
// report's contents (environments, categories, history) without a browser.

const ENTRY = /\bd\(("(?:[^"\\]|\\.)*"),("(?:[^"\\]|\\.)*")\)/g;

/** The embedded files of a single-file report, by their path in a multi-file report ("widgets/tree.json"). */
export function readEmbeddedReportData(html: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const m of html.matchAll(ENTRY)) {
    const name = JSON.parse(m[1] ?? '""') as string;
    const value = JSON.parse(m[2] ?? '""') as string;
    files.set(name, Buffer.from(value, 'base64').toString('utf8'));
  }
  return files;
}

/** One embedded JSON file, or a one-line error naming what is there instead. */
export function embeddedJson<T>(files: Map<string, string>, name: string): T {
  const text = files.get(name);
  if (text === undefined) {
    throw new Error(`report data: expected ${name}; seen only ${[...files.keys()].filter((k) => !k.startsWith('data/')).join(', ')}`);
  }
  return JSON.parse(text) as T;
}
