// The hello_http server on Node's http module (keep-alive and pipelining are
// Node's own). Prints "listening on 127.0.0.1:PORT" once ready.
const http = require('http');
const port = Number(process.argv[2] || 8080);
const body = 'Hello, World!';
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 0;
server.listen(port, '127.0.0.1', () => {
  console.log(`node http listening on 127.0.0.1:${server.address().port}`);
});
