/**
 * `<line number>-<slug of the URL>.<ext>`: the line number makes names unique within a batch, the slug
 * makes them readable (`12-example-com-blog-post.png`).
 */

const maxSlugLength = 80;

export function imageFileName(line: number, url: string | null, format: string): string {
  return `${line}-${url === null ? 'html' : slugOfUrl(url)}.${extensionFor(format)}`;
}

export function slugOfUrl(url: string): string {
  let text: string;
  try {
    const u = new URL(url);
    text = `${u.hostname.replace(/^www\./, '')}${u.port ? `-${u.port}` : ''}${safeDecode(u.pathname)}${safeDecode(u.search)}`;
  } catch {
    text = url;
  }
  const slug = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return truncateAtDash(slug) || 'page';
}

export function extensionFor(format: string): string {
  return format === 'jpeg' ? 'jpg' : format;
}

/** The format a response's Content-Type names (`image/png` → `png`), if it is one of ours. */
export function formatOfContentType(contentType: string | null): string | undefined {
  const match = /^image\/(png|jpeg|webp)\b/i.exec(contentType ?? '');
  return match?.[1].toLowerCase();
}

function truncateAtDash(slug: string): string {
  if (slug.length <= maxSlugLength) return slug;
  const cut = slug.slice(0, maxSlugLength);
  const dash = cut.lastIndexOf('-');
  return (dash > maxSlugLength / 2 ? cut.slice(0, dash) : cut).replace(/-+$/, '');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
