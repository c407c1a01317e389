// GET /api/services for the NGINX gateway (njs): asks each service's /ready through the internal
// /_ready/<service> locations, in parallel, and answers like src/gateway/app.ts does.
var SERVICES = ['data-pipeline', 'training', 'model-registry', 'deployment', 'monitoring'];

function status(r) {
    Promise.all(SERVICES.map(function (name) {
        return r.subrequest('/_ready/' + name).then(function (reply) { return reply.status === 200; }, function () { return false; });
    })).then(function (ready) {
        r.headersOut['Content-Type'] = 'application/json';
        r.headersOut['Cache-Control'] = 'no-store';
        r.return(200, JSON.stringify({ services: SERVICES.map(function (name, i) { return { name: name, url: '/api/' + name, ready: ready[i] }; }) }));
    });
}

export default { status };
