// Node's https.Agent as applications use it: N requests in turn through one agent, which keeps
// TLS sessions (maxCachedSessions) and opens a new connection for each (the server closes).
// usage: node nodeagent.js PORT TLSv1.2|TLSv1.3 N     prints "answers=K"
'use strict';
const https = require('https');

const port = Number(process.argv[2]);
const version = process.argv[3];
const n = Number(process.argv[4]);
const agent = new https.Agent({
    keepAlive: false, rejectUnauthorized: false, minVersion: version, maxVersion: version,
});

function get(i) {
    return new Promise((resolve, reject) => {
        const req = https.get({ host: 'localhost', port, path: `/node${i}`, agent }, (res) => {
            let body = '';
            res.on('data', (d) => { body += d; });
            res.on('end', () => resolve(body.includes('hello from the backend')));
        });
        req.on('error', reject);
        req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    });
}

(async () => {
    let answers = 0;
    for (let i = 0; i < n; i++) {
        answers += (await get(i)) ? 1 : 0;
    }
    console.log(`answers=${answers}`);
    process.exit(answers === n ? 0 : 1);
})().catch((e) => { console.error(e.message); process.exit(2); });
