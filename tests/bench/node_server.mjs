// The auction's broadcast on the official Node socket.io server, for `dispel bench fanout`
// comparisons (docs/performance.md). Install with `npm ci` in tests/bench.
//
//   node tests/bench/node_server.mjs --port 5002
//
// `replace old value` -> io.emit('replaced values', payload) to everyone, sender included, then
//                        an empty ack when the client asked for one (what python-socketio
//                        sends for a handler that returns None: `43<id>[]`);
// `bid-with-ack`      -> the same broadcast, then the ack {ok: true, bid: payload}.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const args = process.argv.slice(2);
const port = Number(args[args.indexOf('--port') + 1] || 5002);
const http = createServer();
const io = new Server(http, { transports: ['polling', 'websocket'], perMessageDeflate: false });

io.on('connection', (socket) => {
  socket.on('replace old value', (payload, ack) => {
    io.emit('replaced values', payload);
    if (typeof ack === 'function') ack();
  });
  socket.on('bid-with-ack', (payload, ack) => {
    io.emit('replaced values', payload);
    if (typeof ack === 'function') ack({ ok: true, bid: payload });
  });
});

http.listen(port, '127.0.0.1', () => {
  console.error(`node socket.io listening on http://127.0.0.1:${port}`);
});
