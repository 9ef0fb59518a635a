"""A tiny Kubernetes REST client for labctl (stdlib only: labctl must start fast and work
before the venv's `kubernetes` package matters). Tests and the collection use real clients."""
import json
import ssl
import urllib.error
import urllib.request


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status


class Api:
    def __init__(self, url, ca, cert, key):
        self.url = url.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.ctx.load_cert_chain(str(cert), str(key))

    def request(self, method, path, body=None, content_type="application/json", timeout=10):
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("message", raw.decode(errors="replace"))
            except ValueError:
                message = raw.decode(errors="replace")
            raise ApiError(exc.code, message) from None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def apply(self, path, obj, manager="labctl"):
        """Server-side apply of one object at its own path."""
        return self.request("PATCH", f"{path}?fieldManager={manager}&force=true", obj,
                            content_type="application/apply-patch+yaml")
