# shotfleet node image: Debian's Chromium, CJK and emoji fonts, runs as a non-root user.
#   docker build -t shotfleet . && docker run --rm -p 3000:3000 shotfleet
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV PUPPETEER_SKIP_DOWNLOAD=1
COPY package.json package-lock.json .puppeteerrc.cjs ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-noto-cjk fonts-noto-color-emoji fonts-liberation ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 shotfleet
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Never root: as root Chromium cannot use its sandbox. With SHOTFLEET_CHROME_SANDBOX=auto the node launches a
# sandboxed Chromium once at start and keeps the sandbox when it comes up; that needs the container to allow
# unprivileged user namespaces (Docker's default seccomp profile does not: see the README, Security). Where it
# is refused the node runs without the sandbox and logs a warning; set SHOTFLEET_CHROME_SANDBOX=on to refuse
# to start instead. Chromium gets only PATH, HOME, locale, time zone, font and XDG variables, never secrets.
USER shotfleet
ENV NODE_ENV=production SHOTFLEET_CHROME_PATH=/usr/lib/chromium/chromium SHOTFLEET_CHROME_SANDBOX=auto
EXPOSE 3000
# Liveness only (/livez): /status is 503 while starting and draining, which is readiness, not a reason to restart.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SHOTFLEET_PORT || 3000) + '/livez', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tini reaps Chromium's zombies; node itself gets SIGTERM and drains (not npm, which would swallow it).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/cli/main.js", "serve"]
