import { spawn } from 'node:child_process';

/**
 * podman as this machine runs it (as root): runc, since crun refuses hybrid cgroups; cgroupfs, with no systemd
 * to manage scopes; limits no higher than the machine allows (raising them is refused).
 */
const globalFlags = ['--runtime', 'runc', '--cgroup-manager=cgroupfs'];
export const limitFlags = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1000:1000'];

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `podman ARGS…`; `echo` streams its output (for the long build). */
export function podman(args: string[], opts: { echo?: boolean; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', [...globalFlags, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      if (opts.echo) process.stdout.write(d);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      if (opts.echo) process.stderr.write(d);
    });
    child.on('error', (err) => reject(new Error(`cannot run podman (${err.message}): apt-get install -y podman runc`)));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** podman that must succeed: its stdout, or an error naming the command and what it said. */
export async function podmanOk(args: string[], opts: { echo?: boolean } = {}): Promise<string> {
  const r = await podman(args, opts);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-800)}`);
  return r.stdout;
}

/** State of a container: running, its exit code once it stopped. */
export async function containerState(name: string): Promise<{ running: boolean; exitCode: number }> {
  const out = await podmanOk(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', name]);
  const [running, exitCode] = out.trim().split(' ');
  return { running: running === 'true', exitCode: Number(exitCode) };
}
