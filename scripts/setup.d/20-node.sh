# npm dependencies (from the lock file) and the TypeScript build.
cd "$ROOT"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc -p tsconfig.build.json
cd - >/dev/null
