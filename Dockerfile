# syntax=docker/dockerfile:1
# Multi-stage: dependencies are installed (and native modules built) in the first stage; the
# runtime image has no build tools and runs as an unprivileged user.
FROM node:26-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:26-slim AS runtime
ENV NODE_ENV=production LAPOR_ENV=production LAPOR_HOST=0.0.0.0 LAPOR_PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY adapters ./adapters
COPY workers ./workers
COPY config ./config
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:3000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/lapor.js"]
CMD ["start"]
