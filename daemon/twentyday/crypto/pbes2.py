"""Passphrase-encrypted PKCS#8 (RFC 5958) with PBES2 (RFC 8018) at a work factor we choose.

``cryptography``'s ``BestAvailableEncryption`` writes PKCS#8 with OpenSSL's default of
2,048 PBKDF2 rounds, and it offers no way to ask for more for PKCS#8 (its encryption
builder is for OpenSSH and PKCS#12 keys only). A stolen identity file is then guessed
against at a few hundred thousand passphrases per second per core. This module writes the
same standard structure with PBKDF2-HMAC-SHA256 at :data:`PBKDF2_ROUNDS` and AES-256-CBC,
which ``cryptography`` and OpenSSL (``openssl pkey``) read as they read any PKCS#8 key.

Only the one fixed structure is written, so its DER is spelled out here rather than
pulling in an ASN.1 library::

    EncryptedPrivateKeyInfo ::= SEQUENCE {
        encryptionAlgorithm  SEQUENCE { id-PBES2, SEQUENCE {
            SEQUENCE { id-PBKDF2, SEQUENCE { salt OCTET STRING, iterationCount INTEGER,
                                             keyLength INTEGER, SEQUENCE { id-hmacWithSHA256, NULL } } },
            SEQUENCE { aes256-CBC, iv OCTET STRING } } },
        encryptedData        OCTET STRING }
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

#: OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about 0.1 s per key block here.
PBKDF2_ROUNDS = 600_000

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_HMAC_SHA256 = "1.2.840.113549.2.9"
_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_NULL = b"\x05\x00"


def encrypt_pkcs8(private_key_info: bytes, passphrase: bytes, rounds: int = PBKDF2_ROUNDS) -> bytes:
    """The unencrypted PKCS#8 DER ``private_key_info``, encrypted, as an "ENCRYPTED PRIVATE KEY" PEM block."""
    salt, iv = os.urandom(16), os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", passphrase, salt, rounds, 32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(private_key_info) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    kdf = _sequence(_oid(_PBKDF2), _sequence(_octets(salt), _integer(rounds), _integer(32),
                                             _sequence(_oid(_HMAC_SHA256), _NULL)))
    scheme = _sequence(_oid(_AES256_CBC), _octets(iv))
    der = _sequence(_sequence(_oid(_PBES2), _sequence(kdf, scheme)), _octets(encrypted))
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + lines + b"\n-----END ENCRYPTED PRIVATE KEY-----\n"


def _tagged(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _sequence(*items: bytes) -> bytes:
    return _tagged(0x30, b"".join(items))


def _octets(data: bytes) -> bytes:
    return _tagged(0x04, data)


def _integer(value: int) -> bytes:
    return _tagged(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # a leading 0 keeps it positive


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    encoded = bytearray([40 * first + second])
    for arc in rest:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        encoded += bytes(reversed(chunk))
    return _tagged(0x06, bytes(encoded))
