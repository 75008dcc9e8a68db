/**
 * Stand-in for Vigie's transparent listeners in the namespace test (test/transparent-netns.test.ts),
 * run inside the gateway namespace: HTTP answers who asked for what; HTTPS reads the ClientHello,
 * prints its server name and the client's address, and refuses with an access_denied alert.
 * Usage: node --import tsx test/netns-hello-server.ts HTTP_PORT HTTPS_PORT
 */
import http from 'node:http';
import net from 'node:net';
import { ALERT, readClientHello, tlsAlert } from '../src/proxy/clienthello.js';

const [httpPort, httpsPort] = process.argv.slice(2).map(Number);
const web = http.createServer((req, res) => {
  res.end(`http ${req.socket.localPort} ${req.socket.remoteAddress} ${req.headers.host}\n`);
});
const tlsSide = net.createServer((socket) => {
  socket.on('error', () => {});
  void readClientHello(socket, { timeoutMs: 5000 }).then((o) => {
    process.stdout.write(`hello ${o.status === 'hello' ? o.hello.sni : o.status} ${socket.localPort} ${socket.remoteAddress}\n`);
    socket.end(tlsAlert(ALERT.accessDenied));
  });
});
let up = 0;
const ready = () => ++up === 2 && process.stdout.write('listening\n');
web.listen(httpPort, '::', ready);
tlsSide.listen(httpsPort, '::', ready);
process.on('SIGTERM', () => process.exit(0));
