/** Parses a bench's --node-env flag, "K=V,K2=V2", into extra environment for the node it starts. */
export function parseNodeEnv(flag: string): Record<string, string> {
  return Object.fromEntries(
    flag
      .split(',')
      .filter(Boolean)
      .map((pair) => {
        const eq = pair.indexOf('=');
        if (eq < 1) throw new Error(`--node-env takes K=V pairs separated by commas; got "${pair}"`);
        return [pair.slice(0, eq), pair.slice(eq + 1)];
      }),
  );
}
