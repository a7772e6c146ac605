"""The hello_http server on asyncio's low-level Protocol API (no framework),
with the same parsing rules as examples/hello_http.rs. Prints
"listening on 127.0.0.1:PORT" once ready. Run with the venv's python;
`uvloop` as the second argument uses uvloop's loop instead."""
import asyncio
import sys

BODY = b"Hello, World!"
KEEP = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\n" + BODY
CLOSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\n" + BODY
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        out = []
        close = False
        while not close:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 8192:
                    out.append(BAD)
                    close = True
                break
            lines = self.buf[:end].split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
                out.append(BAD)
                close = True
                break
            keep = parts[2] == b"HTTP/1.1"
            length = 0
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if not sep:
                    out.append(BAD)
                    close = True
                    break
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    keep = value == b"keep-alive" if value in (b"close", b"keep-alive") else keep
            if close:
                break
            total = end + 4 + length
            if len(self.buf) < total:
                break
            self.buf = self.buf[total:]
            out.append(KEEP if keep else CLOSE)
            close = not keep
        if out:
            self.t.write(b"".join(out))
        if close:
            self.t.close()


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", port)
    print(f"asyncio http listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main(port))
