export { createUrlPolicy, systemResolver, type Resolver, type UrlPolicy, type UrlPolicyOptions } from './url-policy.js';
export { startPolicyProxy, refusedHeader, type PolicyProxy, type ProxyLookupLimits } from './proxy.js';
export { createBoundedResolver, type BoundedResolver, type DnsOptions } from './dns.js';
export { chromeEnvironment, policyBrowserArgs, sandboxArgs } from './browser-args.js';
