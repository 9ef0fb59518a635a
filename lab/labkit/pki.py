"""The lab's certificates, made with the `cryptography` package.

One cluster CA signs the apiserver's serving cert, the client certs (admin, controller
manager, simulator) and the simulator's serving cert; a separate front-proxy CA signs the
aggregation layer's proxy client cert, as kubeadm does.
"""
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, private=False):
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn, org=None):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY))


def make_ca(folder: Path, name: str, cn: str):
    key = _key()
    cert = (_builder(_name(cn), _name(cn), key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(folder / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))
    _write(folder / f"{name}.key", _pem_key(key), private=True)


def _load_ca(folder: Path, name: str):
    cert = x509.load_pem_x509_certificate((folder / f"{name}.crt").read_bytes())
    key = serialization.load_pem_private_key((folder / f"{name}.key").read_bytes(), None)
    return cert, key


def make_cert(folder: Path, ca: str, name: str, cn: str, org=None, server_names=(), client=False):
    """A leaf cert signed by CA `ca`: a server cert when server_names are given, else a client cert."""
    ca_cert, ca_key = _load_ca(folder, ca)
    key = _key()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client or not server_names else []
    builder = _builder(_name(cn, org), ca_cert.subject, key.public_key())
    if server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        sans = []
        for entry in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(entry)))
            except ValueError:
                sans.append(x509.DNSName(entry))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(folder / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))
    _write(folder / f"{name}.key", _pem_key(key), private=True)


def make_service_account_keys(folder: Path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(folder / "sa.key", key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.TraditionalOpenSSL,
                                                serialization.NoEncryption()), private=True)
    _write(folder / "sa.pub", key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


APISERVER_NAMES = ("localhost", "127.0.0.1", "10.96.0.1", "kubernetes", "kubernetes.default",
                   "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
SIMULATOR_NAMES = ("localhost", "127.0.0.1", "virt-api.kubevirt.svc",
                   "virt-api.kubevirt.svc.cluster.local")


def ensure_pki(folder: Path):
    """Make every cert the lab needs that is not there yet; later `up`s reuse them."""
    folder.mkdir(parents=True, exist_ok=True)

    def missing(name):
        return not (folder / f"{name}.crt").exists()

    for ca, cn in (("ca", "virtops-lab-ca"), ("front-proxy-ca", "virtops-lab-front-proxy-ca")):
        if missing(ca):
            make_ca(folder, ca, cn)
    leaves = (
        ("ca", "apiserver", "kube-apiserver", None, APISERVER_NAMES),
        ("ca", "admin", "virtops-lab-admin", "system:masters", ()),
        ("ca", "controller-manager", "system:kube-controller-manager", None, ()),
        ("ca", "simulator-client", "system:kubevirt-simulator", "system:masters", ()),
        ("ca", "simulator", "virt-api", None, SIMULATOR_NAMES),
        ("ca", "faultproxy", "lab-faultproxy", None, ("localhost", "127.0.0.1")),
        ("front-proxy-ca", "front-proxy-client", "front-proxy-client", None, ()),
    )
    for ca, name, cn, org, names in leaves:
        if missing(name):
            make_cert(folder, ca, name, cn, org=org, server_names=names)
    if not (folder / "sa.key").exists():
        make_service_account_keys(folder)
