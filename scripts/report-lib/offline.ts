// Keeps the Allure report offline. Allure 3 hard-codes a Google Analytics tag into every report it writes
// (`analyticsEnable: true` in plugin-awesome's generators; allure-framework/allure3#476, #784), and a
// report read at a bench, on a farm with no Internet, or by a customer must not phone home. The tag is
// removed after generation, and then the report is checked, so that a future Allure that moves or renames
// the tag fails the build instead of slipping through.

/** Hosts a report may load from. Everything else (https://…, //cdn…, ws://…) is a remote reference. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Strings that only analytics or ad code contains; searched in every HTML, JS and CSS text of the report. */
const TRACKER_PATTERNS: readonly RegExp[] = [
  /googletagmanager\.com/i,
  /google-analytics\.com/i,
  /analytics\.google\.com/i,
  /doubleclick\.net/i,
  /\bgtag\s*\(/,
  /\bwindow\.dataLayer\b/,
];

const URL_ATTRIBUTES = ['src', 'href', 'srcset', 'action', 'formaction', 'data', 'poster', 'background', 'manifest', 'ping', 'xlink:href', 'content'];

export interface RemoteReference {
  /** Where it was found: a file of the report, or a data: URI inside it. */
  where: string;
  /** The markup or text that references the remote resource, shortened. */
  what: string;
}

/** Whether a URL (as written in markup or CSS) points somewhere other than this machine or the report itself. */
export function isRemoteUrl(raw: string): boolean {
  const value = raw.trim().replace(/^['"]|['"]$/g, '');
  const m = /^(?:([a-z][a-z0-9+.-]*):)?\/\/([^/?#\s'"]*)/i.exec(value);
  if (!m) return false; // relative, data:, blob:, javascript:, about:, mailto: — nothing leaves the machine
  const scheme = (m[1] ?? '').toLowerCase();
  if (scheme === 'file') return false;
  const host = (m[2] ?? '').replace(/^[^@]*@/, '').replace(/:\d+$/, '').toLowerCase();
  return !LOCAL_HOSTS.has(host);
}

function shorten(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > 160 ? `${one.slice(0, 157)}...` : one;
}

const SCRIPT_ELEMENT = /<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi;
const LINK_ELEMENT = /<link\b[^>]*>/gi;

function attribute(attrs: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)${name.replace(':', '\\:')}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(attrs);
  return m ? (m[2] ?? m[3] ?? m[4]) : undefined;
}

function isTrackerText(text: string): boolean {
  return TRACKER_PATTERNS.some((p) => p.test(text));
}

/**
 * Removes from a generated report page every script or link element that loads from a remote host, and
 * every inline script that is analytics code. Returns the cleaned page and what was removed.
 */
export function stripThirdParty(html: string): { html: string; removed: string[] } {
  const removed: string[] = [];
  let out = html.replace(SCRIPT_ELEMENT, (element, attrs: string, body: string) => {
    const src = attribute(attrs, 'src');
    if ((src !== undefined && isRemoteUrl(src)) || (src === undefined && isTrackerText(body))) {
      removed.push(shorten(element));
      return '';
    }
    return element;
  });
  out = out.replace(LINK_ELEMENT, (element) => {
    const href = attribute(element, 'href');
    if (href !== undefined && isRemoteUrl(href)) {
      removed.push(shorten(element));
      return '';
    }
    return element;
  });
  return { html: out, removed };
}

const DATA_URI = /data:(text\/javascript|application\/javascript|text\/css)(;charset=[^;,]+)?;base64,([A-Za-z0-9+/=]+)/gi;
const CSS_REMOTE = /(?:url\(\s*(['"]?)([^)'"]+)\1\s*\)|@import\s+(['"])([^'"]+)\3)/gi;

function cssReferences(css: string, where: string): RemoteReference[] {
  const found: RemoteReference[] = [];
  for (const m of css.matchAll(CSS_REMOTE)) {
    const url = m[2] ?? m[4] ?? '';
    if (isRemoteUrl(url)) found.push({ where, what: shorten(m[0]) });
  }
  return found;
}

function trackerReferences(text: string, where: string): RemoteReference[] {
  const found: RemoteReference[] = [];
  for (const p of TRACKER_PATTERNS) {
    const m = p.exec(text);
    if (m) {
      const at = m.index;
      found.push({ where, what: shorten(text.slice(Math.max(0, at - 40), at + 80)) });
    }
  }
  return found;
}

/**
 * Every reference in one file of a report that would make a browser load something from a remote host
 * when the page opens, plus any analytics code. HTML: attributes of every element (script bodies aside),
 * inline CSS, and the scripts and styles embedded as data: URIs (single-file reports). JS and CSS files:
 * analytics code and remote CSS imports. Plain links inside the app's own code (Allure's "powered by"
 * link, a CI job URL) are not loads and are not reported.
 */
export function findRemoteReferences(text: string, file: string): RemoteReference[] {
  const found: RemoteReference[] = [];
  const lower = file.toLowerCase();
  if (lower.endsWith('.html') || lower.endsWith('.htm')) {
    const markup = text.replace(SCRIPT_ELEMENT, (_e, attrs: string) => `<script${attrs}></script>`);
    for (const tag of markup.matchAll(/<[a-z][a-z0-9-]*\b[^>]*>/gi)) {
      for (const name of URL_ATTRIBUTES) {
        const value = attribute(tag[0], name);
        if (value === undefined) continue;
        const candidates = name === 'srcset' ? value.split(',').map((c) => c.trim().split(/\s+/)[0] ?? '') : name === 'content' ? [value.replace(/^\s*\d+\s*;\s*url\s*=\s*/i, '')] : [value];
        if (candidates.some((c) => isRemoteUrl(c))) found.push({ where: file, what: shorten(tag[0]) });
      }
      const style = attribute(tag[0], 'style');
      if (style !== undefined) found.push(...cssReferences(style, file));
    }
    for (const m of markup.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style\s*>/gi)) found.push(...cssReferences(m[1] ?? '', file));
    for (const m of text.matchAll(DATA_URI)) {
      const decoded = Buffer.from(m[3] ?? '', 'base64').toString('utf8');
      const where = `${file} (embedded ${m[1]})`;
      found.push(...trackerReferences(decoded, where));
      if ((m[1] ?? '').endsWith('css')) found.push(...cssReferences(decoded, where));
    }
    found.push(...trackerReferences(text, file));
  } else if (lower.endsWith('.js') || lower.endsWith('.mjs')) {
    found.push(...trackerReferences(text, file));
  } else if (lower.endsWith('.css')) {
    found.push(...cssReferences(text, file), ...trackerReferences(text, file));
  }
  return found;
}
