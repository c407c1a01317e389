// The service boundary (docs/ARCHITECTURE.md, "Boundaries"), checked by `npm test` (scripts/run-tests.mjs).
const SERVICES = '(data-pipeline|training|model-registry|deployment|monitoring|gateway)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'service-internals',
      comment:
        "A service imports another service only through its client/ and its import-free route schemas (routes/schemas.ts): never its service/, store/ or routes (nor, so, its tables).",
      severity: 'error',
      from: { path: `^src/${SERVICES}/` },
      to: { path: `^src/${SERVICES}/`, pathNot: ['^src/$1/', `^src/${SERVICES}/client/`, `^src/${SERVICES}/routes/schemas\\.ts$`] },
    },
    {
      name: 'client-is-thin',
      comment:
        "A client/ holds the interface and the HTTP implementation; it loads none of its own service's code at run time (the in-process implementation is offered by the service's plugin), so 'xray serve X' never loads Y's internals through Y's client.",
      severity: 'error',
      from: { path: `^src/${SERVICES}/client/` },
      to: { path: `^src/${SERVICES}/`, pathNot: [`^src/${SERVICES}/client/`, `^src/${SERVICES}/routes/schemas\\.ts$`], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'core-imports-no-service',
      comment: 'src/core/ is the shared building blocks: it imports no service, the gateway or the CLI.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: `^src/(${SERVICES.slice(1, -1)}|cli)/` },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs'] },
  },
};
