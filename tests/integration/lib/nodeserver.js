// A Node TLS echo server whose ticket keys come from a file (tlsresume keys export --format
// node) or, with "-", from base64 lines on stdin (tlsresume keys sync --format node --stdout):
// each line replaces the keys with setTicketKeys().
// usage: node nodeserver.js PORT CERT KEY KEYFILE|- [CONTEXT]   prints "listening" when ready
// CONTEXT is the sessionIdContext (default tlsresume-test).
'use strict';
const fs = require('fs');
const readline = require('readline');
const tls = require('tls');

const [port, cert, key, keyfile, context] = process.argv.slice(2);
const opts = {
    cert: fs.readFileSync(cert), key: fs.readFileSync(key), minVersion: 'TLSv1.2',
    sessionIdContext: context || 'tlsresume-test',
};
if (keyfile !== '-') {
    opts.ticketKeys = fs.readFileSync(keyfile);
}
const server = tls.createServer(opts, (sock) => {
    sock.on('data', (d) => sock.write(d));
    sock.on('error', () => {});
});
if (keyfile === '-') {
    readline.createInterface({ input: process.stdin }).on('line', (line) => {
        server.setTicketKeys(Buffer.from(line.trim(), 'base64'));
        console.log('keys');
    });
}
server.listen(Number(port), '127.0.0.1', () => console.log('listening'));
