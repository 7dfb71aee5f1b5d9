// Node's tls client: a full handshake, then a resumption with tls.connect({session}).
// usage: node nodeclient.js PORT TLSv1.2|TLSv1.3     prints reused=true|false
'use strict';
const tls = require('tls');

const port = Number(process.argv[2]);
const version = process.argv[3];

function connect(session) {
    return new Promise((resolve, reject) => {
        let saved = null;
        const sock = tls.connect({
            host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false,
            minVersion: version, maxVersion: version, session,
        }, () => sock.write('ping\n'));
        sock.on('session', (s) => { saved = s; });
        sock.on('data', () => {
            const reused = sock.isSessionReused();
            sock.end();
            sock.on('close', () => resolve({ reused, session: saved || sock.getSession() }));
        });
        sock.on('error', reject);
        sock.setTimeout(10000, () => reject(new Error('timeout')));
    });
}

(async () => {
    const first = await connect(undefined);
    const second = await connect(first.session);
    console.log(`first reused=${first.reused}`);
    console.log(`second reused=${second.reused}`.replace('second ', ''));
    process.exit(second.reused ? 0 : 1);
})().catch((e) => { console.error(e.message); process.exit(2); });
