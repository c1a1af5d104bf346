"""What a certificate or private key file is: the names a certificate is for
and the type of its key (RSA or ECDSA), read with cryptography (certbot's
and acme's own dependency).

nginx serves an RSA and an ECDSA certificate from one server block and
picks per client, so the installer needs the key type to know which of a
block's certificate pairs a new certificate replaces.
"""
import ipaddress
from typing import List, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

RSA = "rsa"
ECDSA = "ecdsa"


def _key_type(key: object) -> Optional[str]:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return RSA
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return ECDSA
    return None  # Ed25519 and the like: nginx serves them, nothing pairs them


def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _certificate(path: str) -> Optional[x509.Certificate]:
    data = _read(path)
    try:
        return x509.load_pem_x509_certificate(data) if data else None
    except ValueError:
        return None


def key_type(path: str) -> Optional[str]:
    """RSA or ECDSA for a PEM private key or certificate file; None when it
    cannot be read or is of another type."""
    data = _read(path)
    if not data:
        return None
    if b"PRIVATE KEY-----" in data:
        try:
            return _key_type(serialization.load_pem_private_key(data, password=None))
        except (ValueError, TypeError):  # encrypted, or not a key after all
            return None
    cert = _certificate(path)
    return _key_type(cert.public_key()) if cert is not None else None


def der_key_type(der: Optional[bytes]) -> Optional[str]:
    """RSA or ECDSA for a DER certificate (as a TLS handshake returns it);
    None when it cannot be read or is of another type."""
    try:
        return _key_type(x509.load_der_x509_certificate(der).public_key()) if der else None
    except ValueError:
        return None


def names(path: str) -> List[str]:
    """The names a certificate file is for (DNS names and IP addresses of its
    subjectAltName, else its CN); none when it cannot be read."""
    cert = _certificate(path)
    if cert is None:
        return []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [a.value for a in cert.subject.get_attributes_for_oid(
            x509.oid.NameOID.COMMON_NAME) if isinstance(a.value, str)]
    found = list(san.value.get_values_for_type(x509.DNSName))
    return found + [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)
                    if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address))]
