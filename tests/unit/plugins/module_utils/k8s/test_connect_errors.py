"""Requests that get no HTTP answer: each failure is one sentence without a Python repr, and a protocol
mismatch (http:// to an HTTPS server, https:// to a plain-HTTP one, a port that does not speak HTTP)
fails at once, since sending again gets the same answer. Real sockets on 127.0.0.1."""
import datetime
import http.client
import socket
import ssl
import threading

import pytest
import urllib3
from kvfakes import FakePool, FakeResponse

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import client as kclient
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import connection as kconn
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import errors
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ConnectError

TLS_ALERT = b"\x15\x03\x01\x00\x02\x02\x46"  # what an OpenSSL server sends to a plain-HTTP request


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return str(folder / "cert.pem"), str(folder / "key.pem")


class Server:
    """A TCP server on 127.0.0.1 that handles each connection with ``handle(sock)``."""

    def __init__(self, handle, tls=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handle, self.tls, self.connections = handle, tls, 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                if self.tls is not None:
                    try:
                        conn = self.tls.wrap_socket(conn, server_side=True)
                    except (ssl.SSLError, OSError):  # a plain-HTTP request to a TLS server
                        continue
                self.handle(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def serve():
    servers = []

    def start(handle, tls=None):
        servers.append(Server(handle, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def request(host, read_timeout=1, **params):
    conn = kconn.resolve_connection(dict({"host": host, "api_key": "t"}, **params), {})
    client = kclient.Client(conn, sleep=lambda seconds: None)
    with pytest.raises(ConnectError) as exc:
        client.request("GET", "/api", timeout=urllib3.Timeout(connect=2, read=read_timeout))
    return str(exc.value), client.requests


def assert_one_sentence(text):
    assert "\n" not in text and text.endswith(".") and text.count("; ") <= 2, text
    for repr_sign in ("('", "Error(", "object at 0x", "\\x"):
        assert repr_sign not in text, text


def test_http_to_an_https_server_is_one_sentence_at_once(serve, server_cert):
    """The defect: six attempts, then "('Connection aborted.', RemoteDisconnected(...))"."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*server_cert)
    server = serve(lambda sock: sock.recv(4096), tls=tls)
    text, attempts = request("http://127.0.0.1:%d" % server.port)
    assert text == ("Could not talk to the API server at http://127.0.0.1:%d: it speaks HTTPS, not plain HTTP; use "
                    "https://127.0.0.1:%d in host (or the kubeconfig's server)." % (server.port, server.port))
    assert attempts == 1
    assert_one_sentence(text)


def test_http_to_an_https_server_from_several_threads_is_one_attempt_each(serve, server_cert):
    """Reads run on threads: while one probes for TLS, the others wait for its answer. A provisional 'no'
    they read meanwhile made each send its request again (7 requests for 4 reads, seen on the lab)."""
    import threading
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*server_cert)
    server = serve(lambda sock: sock.recv(4096), tls=tls)
    conn = kconn.resolve_connection({"host": "http://127.0.0.1:%d" % server.port, "api_key": "t"}, {})
    client = kclient.Client(conn, sleep=lambda seconds: None)
    errors = []

    def read():
        try:
            client.request("GET", "/api", timeout=urllib3.Timeout(connect=2, read=5))
        except ConnectError as exc:
            errors.append(str(exc))
    threads = [threading.Thread(target=read, name="read-%d" % i) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 4 and all("it speaks HTTPS, not plain HTTP" in e for e in errors)
    assert client.requests == 4


def test_http_to_a_server_answering_with_a_tls_alert(serve):
    server = serve(lambda sock: (sock.recv(4096), sock.sendall(TLS_ALERT)))
    text, attempts = request("http://127.0.0.1:%d" % server.port)
    assert "it speaks HTTPS, not plain HTTP; use https://127.0.0.1:%d in host" % server.port in text
    assert attempts == 1


def test_http_to_kube_apiserver_go_answer():
    """Go's net/http (kube-apiserver) answers a plain-HTTP request on its TLS port with 400 and this text."""
    conn = kconn.resolve_connection({"host": "http://api:6443", "api_key": "t"}, {})
    pool = FakePool([FakeResponse(400, b"Client sent an HTTP request to an HTTPS server.\n")])
    client = kclient.Client(conn, pool=pool, sleep=lambda s: None)
    with pytest.raises(ConnectError) as exc:
        client.request("GET", "/api")
    assert str(exc.value) == errors.speaks_https_message("http://api:6443")
    assert len(pool.sent) == 1


def test_https_to_a_plain_http_server(serve):
    def answer(sock):
        sock.recv(4096)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    server = serve(answer)
    text, attempts = request("https://127.0.0.1:%d" % server.port)
    assert text.startswith("Could not talk to the API server at https://127.0.0.1:%d: it did not answer in TLS "
                           "(a plain-HTTP server, or the wrong port)" % server.port), text
    assert attempts == 1
    assert_one_sentence(text)


def test_a_port_that_does_not_speak_http(serve):
    server = serve(lambda sock: (sock.recv(4096), sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")))
    text, attempts = request("http://127.0.0.1:%d" % server.port)
    assert text == ("Could not talk to the API server at http://127.0.0.1:%d: what answered there does not speak HTTP "
                    "(it said 'SSH-2.0-OpenSSH_9.6'); check the address and port in host (or the kubeconfig's "
                    "server)." % server.port)
    assert attempts == 1


def test_a_plain_server_that_drops_requests_is_retried_and_named(serve):
    """Closed without an answer, and no TLS either: a server going away, which may come back."""
    server = serve(lambda sock: sock.recv(4096))
    text, attempts = request("http://127.0.0.1:%d" % server.port)
    assert text.startswith("Could not connect to the API server http://127.0.0.1:%d: the server closed the "
                           "connection without answering (6 attempts)" % server.port), text
    assert attempts == 6
    assert_one_sentence(text)


def test_no_answer_in_time(serve):
    done = threading.Event()
    server = serve(lambda sock: (sock.recv(4096), done.wait(5)))
    try:
        text, _attempts = request("http://127.0.0.1:%d" % server.port, read_timeout=0.1)
    finally:
        done.set()
    assert ": no answer within 0.1 s (6 attempts); check host" in text
    assert_one_sentence(text)


def test_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    text, attempts = request("https://127.0.0.1:%d" % port)
    assert ": connection refused (3 attempts); check host" in text and attempts == 3
    assert_one_sentence(text)


def test_name_does_not_resolve():
    text, attempts = request("https://no-such-host.invalid:6443")
    assert text == ("Could not connect to the API server https://no-such-host.invalid:6443: the name does not "
                    "resolve; check host or the kubeconfig's server.")
    assert attempts == 1


def test_certificate_not_verified(serve, server_cert):
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*server_cert)
    server = serve(lambda sock: sock.recv(4096), tls=tls)
    text, attempts = request("https://127.0.0.1:%d" % server.port)
    assert text.startswith("TLS verification of the API server https://127.0.0.1:%d failed: its certificate could not "
                           "be verified (self-signed certificate)" % server.port), text
    assert attempts == 1
    assert_one_sentence(text)


def test_proxy_failure_names_the_proxy(serve):
    proxy = serve(lambda sock: sock.recv(4096))
    text, _attempts = request("http://api.example:6443", proxy="http://127.0.0.1:%d" % proxy.port)
    assert text.startswith("Could not reach the API server http://api.example:6443 through the proxy "
                           "http://127.0.0.1:%d: the server closed the connection without answering" % proxy.port)
    assert_one_sentence(text)


@pytest.mark.parametrize("exc, reason", [
    (urllib3.exceptions.ProtocolError("Connection aborted.", http.client.RemoteDisconnected("x")),
     "the server closed the connection without answering"),
    (urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
     "the connection was reset"),
    (urllib3.exceptions.ProtocolError("Connection aborted.", http.client.BadStatusLine("garbage")),
     "the server's answer is not HTTP"),
    (urllib3.exceptions.ReadTimeoutError(None, "/api", "Read timed out. (read timeout=60.0)"),
     "no answer within 60.0 s"),
    (urllib3.exceptions.ConnectTimeoutError(None, "Connection to h timed out. (connect timeout=10)"),
     "connection timed out"),
    (urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection "
                                                 "refused"), "connection refused"),
    (urllib3.exceptions.ProtocolError("Connection broken", ValueError("odd")), "odd"),
    (urllib3.exceptions.ProtocolError("Connection broken", ValueError()), "ValueError"),
])
def test_connection_reason_has_no_repr(exc, reason):
    assert errors.connection_reason(exc) == reason
