#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver for inspector's tests.

It decodes each POST /v1/traces with the official OTLP protobuf definitions
(PyPI's opentelemetry-proto) and appends it to OUT as one JSON line (the
protobuf JSON mapping: ids in base64, times as strings). A body that does not
decode is answered 400 and written as {"undecodable": "..."}.

usage: receiver.py PORT OUT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def main():
    port, out = int(sys.argv[1]), sys.argv[2]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = ExportTraceServiceRequest()
            try:
                if self.path != "/v1/traces":
                    raise ValueError("path " + self.path)
                if self.headers.get("Content-Type") != "application/x-protobuf":
                    raise ValueError("content type " + str(self.headers.get("Content-Type")))
                request.ParseFromString(body)
                line = MessageToDict(request)
                status = 200
            except Exception as e:  # noqa: BLE001 - any failure is the test's finding
                line = {"undecodable": str(e)}
                status = 400
            with open(out, "a") as f:
                f.write(json.dumps(line) + "\n")
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
