import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { exportedMetricNames, metricNamesIn } from './helpers/exported-metrics.js';
import { repoRoot } from './helpers/processes.js';

const prometheusDir = path.join(repoRoot, 'deploy/prometheus');

function promtool(args: string[], cwd = prometheusDir) {
  const run = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
}

const alerts = YAML.parse(fs.readFileSync(path.join(prometheusDir, 'alerts.yml'), 'utf8')) as RuleFile;

describe('deploy/prometheus/alerts.yml', () => {
  it('passes promtool check rules', () => {
    const run = promtool(['check', 'rules', 'alerts.yml']);
    expect(run.status, run.output).toBe(0);
    expect(run.output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('passes its unit tests (promtool test rules alerts.test.yml)', () => {
    const run = promtool(['test', 'rules', 'alerts.test.yml']);
    expect(run.status, run.output).toBe(0);
  });

  it('the unit tests cover every alert, firing and quiet', () => {
    const tests = YAML.parse(fs.readFileSync(path.join(prometheusDir, 'alerts.test.yml'), 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const rule of alerts.groups.flatMap((g) => g.rules)) {
      expect(
        cases.some((c) => c.alertname === rule.alert && c.exp_alerts.length > 0),
        `${rule.alert} firing`,
      ).toBe(true);
      expect(
        cases.some((c) => c.alertname === rule.alert && c.exp_alerts.length === 0),
        `${rule.alert} quiet`,
      ).toBe(true);
    }
  });

  it('names only metrics the node or hub exports', async () => {
    const exported = await exportedMetricNames();
    const named = alerts.groups.flatMap((g) => g.rules.flatMap((r) => metricNamesIn(r.expr)));
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter((name) => !exported.has(name))).toEqual([]);
  });
});

describe('deploy/grafana/shotfleet.json', () => {
  const dashboard = JSON.parse(fs.readFileSync(path.join(repoRoot, 'deploy/grafana/shotfleet.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
    templating: { list: { query?: string | { query: string } }[] };
  };
  const panelExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  const variableQueries = dashboard.templating.list.map((v) => (typeof v.query === 'object' ? v.query.query : '')).filter(Boolean);

  it('every query names only metrics the node or hub exports', async () => {
    const exported = await exportedMetricNames();
    const named = [...panelExprs, ...variableQueries].flatMap(metricNamesIn);
    expect(named.filter((name) => !exported.has(name))).toEqual([]);
    for (const expr of panelExprs) expect(metricNamesIn(expr), expr).not.toEqual([]);
  });

  it('shows throughput, shed by reason, saturation, render and queue p50/p99, upload backlog, browser restarts, fleet vs desired, per-key requests and pages', () => {
    const all = panelExprs.join('\n');
    for (const needed of [
      /rate\(shotfleet_requests_total/,
      /sum by \(reason\) \(rate\(shotfleet_shed_total/,
      /shotfleet_saturation_ratio/,
      /histogram_quantile\(0\.5, sum by \(le\) \(rate\(shotfleet_render_duration_seconds_bucket/,
      /histogram_quantile\(0\.99, sum by \(le\) \(rate\(shotfleet_render_duration_seconds_bucket/,
      /histogram_quantile\(0\.5, sum by \(le\) \(rate\(shotfleet_queue_wait_seconds_bucket/,
      /histogram_quantile\(0\.99, sum by \(le\) \(rate\(shotfleet_queue_wait_seconds_bucket/,
      /shotfleet_upload_backlog_bytes/,
      /shotfleet_browser_restarts_total/,
      /shotfleet_hub_desired_nodes/,
      /shotfleet_hub_nodes/,
      /sum by \(key, code\) \(rate\(shotfleet_key_requests_total/,
      /sum by \(key\) \(shotfleet_key_pages_in_use/,
    ]) {
      expect(all).toMatch(needed);
    }
  });

  it('every query is valid PromQL (promtool checks them as recording rules)', () => {
    // Grafana's own variables stand in for what Grafana substitutes at query time.
    const promql = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*').replaceAll('$instance', '.*');
    const rules = { groups: [{ name: 'dashboard', rules: panelExprs.map((expr, i) => ({ record: `dashboard:query${i}`, expr: promql(expr) })) }] };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-dashboard-'));
    try {
      fs.writeFileSync(path.join(dir, 'queries.yml'), YAML.stringify(rules));
      const run = promtool(['check', 'rules', 'queries.yml'], dir);
      expect(run.status, run.output).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
