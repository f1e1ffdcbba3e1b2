"""A webhook receiver for the lab: appends each POST's JSON body as one line to a file."""

import http.server
import sys

OUT, PORT = sys.argv[1], int(sys.argv[2])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(OUT, "ab") as handle:
            handle.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(204)
        self.end_headers()


http.server.HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
