# shotfleet image: Debian's Chromium, fonts for the world's major scripts, every role as a non-root user.
#   docker build -t shotfleet . && docker run --rm -p 3000:3000 shotfleet                    (a node)
#   docker run --rm -p 4000:4000 -e SHOTFLEET_TOKEN=… shotfleet node dist/src/cli/main.js hub   (a hub)
# Node 24 is the current LTS line (Krypton); Debian trixie the current stable release, whose Chromium gets security updates.
FROM node:24-trixie-slim AS build
WORKDIR /app
ENV PUPPETEER_SKIP_DOWNLOAD=1
# Behind a TLS-inspecting proxy, pass its CA for npm (this stage only; the runtime image never sees it):
#   --build-arg NODE_EXTRA_CA_CERTS=/tmp/build-ca.pem --volume /etc/proxy-ca.pem:/tmp/build-ca.pem:ro
ARG NODE_EXTRA_CA_CERTS
COPY package.json package-lock.json .puppeteerrc.cjs ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# tsconfig also includes bench/, which is not copied: the image compiles and ships the service only.
 RUN npm run build \
 && rm dist/src/api/update-readme.js dist/src/api/update-readme.js.map \
 && npm prune --omit=dev \
 && find node_modules -depth -type d -empty -delete

FROM node:24-trixie-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="shotfleet" \
      org.opencontainers.image.description="Broker-less, self-throttling screenshot service: render node, hub, HAProxy config" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/node:24-trixie-slim"
# Fonts: Noto core covers Latin, Greek, Cyrillic, Arabic, Hebrew, Thai, the Indic scripts and many more; Noto CJK
# covers Chinese, Japanese and Korean; the emoji font is in colour; Liberation stands in for Arial/Times/Courier.
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji \
      fonts-liberation ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && useradd --create-home --uid 10001 --user-group shotfleet
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
# Never root: as root Chromium cannot use its sandbox. With SHOTFLEET_CHROME_SANDBOX=auto the node launches a
# sandboxed Chromium once at start and keeps the sandbox when it comes up; that needs the container to allow
# unprivileged user namespaces, which Docker's and containerd's default seccomp profiles refuse: run it with
# deploy/seccomp/shotfleet-chromium.json (README, Security). Where it is refused the node runs without the sandbox and logs
# a warning; SHOTFLEET_CHROME_SANDBOX=on refuses to start instead. Chromium gets only PATH, HOME, locale, time
# zone, font and XDG variables, never secrets.
USER shotfleet
ENV NODE_ENV=production LANG=C.UTF-8 SHOTFLEET_CHROME_PATH=/usr/lib/chromium/chromium SHOTFLEET_CHROME_SANDBOX=auto
EXPOSE 3000 4000
# Liveness only (/livez): /status is 503 while starting and draining, which is readiness, not a reason to restart.
# One image, two long-running roles: the port is SHOTFLEET_PORT when set, else the role's default (the hub's
# 4000 when the container's command runs `hub`, else the node's 3000).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const cmd = require('fs').readFileSync('/proc/1/cmdline', 'utf8').split('\\0'); const port = process.env.SHOTFLEET_PORT || (cmd.includes('hub') ? 4000 : 3000); fetch('http://127.0.0.1:' + port + '/livez', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tini reaps Chromium's zombies; node itself gets SIGTERM and drains (not npm, which would swallow it).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/cli/main.js", "serve"]
