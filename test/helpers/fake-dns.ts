/** A resolver answering from a table (name → addresses, computed per lookup), ENOTFOUND for anything else. */
export function tableResolver(table: Record<string, () => string[]>) {
  return async (host: string): Promise<string[]> => {
    const answer = table[host];
    if (!answer) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return answer();
  };
}
