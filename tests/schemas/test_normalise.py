"""Main attributes normalise to one canonical text per entity, or are refused with a reason."""

from __future__ import annotations

import pytest

from schemas import MAX_TEXT_BYTES, NormalisationError, UnknownEntityType, normalise

ACCEPTED = [
    # ip
    ("ip", " 8.8.8.8 ", "8.8.8.8"),
    ("ip", "2001:4860:4860:0000:0000:0000:0000:8888", "2001:4860:4860::8888"),
    ("ip", "2001:DB8::1", "2001:db8::1"),
    ("ip", "203.0.113.7", "203.0.113.7"),
    ("ip", "192.0.2.1", "192.0.2.1"),
    ("ip", "198.51.100.20", "198.51.100.20"),
    ("ip", "::ffff:8.8.4.4", "8.8.4.4"),
    # fqdn
    ("domain", "WWW.Example.COM", "www.example.com"),
    ("domain", "example.com.", "example.com"),
    ("domain", "Bücher.example", "xn--bcher-kva.example"),
    ("domain", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("domain", "пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("hostname", "r3---sn-4g5e6nsz.googlevideo.com", "r3---sn-4g5e6nsz.googlevideo.com"),
    ("hostname", "a-1.b2.io", "a-1.b2.io"),
    # url
    (
        "url",
        "HTTPS://User:PW@Example.COM:8443/Path/A?Q=X#Frag",
        "https://User:PW@example.com:8443/Path/A?Q=X#Frag",
    ),
    ("url", "http://[2001:DB8::1]/x", "http://[2001:db8::1]/x"),
    ("link", "  hxxp://EVIL.example/a%20b  ", "http://evil.example/a%20b"),
    # defanged values, as feeds and reports write them
    ("url", "hxxp://evil[.]example[.]com/a", "http://evil.example.com/a"),
    (
        "url",
        "HXXPS[:]//Evil(.)Example{.}com/A[.]b?q=[dot]",
        "https://evil.example.com/A[.]b?q=[dot]",
    ),
    ("url", "hxxp://user[@]evil[dot]example:8080/", "http://user@evil.example:8080/"),
    ("ip", "203.0.113[.]7", "203.0.113.7"),
    ("ip", "2001:db8[:][:]1", "2001:db8::1"),
    ("domain", "evil[.]Example[DOT]com", "evil.example.com"),
    ("hostname", "c2(.)evil{.}example", "c2.evil.example"),
    ("email-address", "bob[at]evil[.]example", "bob@evil.example"),
    ("email-address", "Bob[@]Evil(.)Example", "bob@evil.example"),
    ("malware-sample", "ftp://Files.Example.org/x.EXE", "ftp://files.example.org/x.EXE"),
    # email
    ("email-address", '"Bob" <B@X.org>', "b@x.org"),
    ("email-address", "Alice.Smith@Example.COM", "alice.smith@example.com"),
    ("email-address", "info@Bücher.example", "info@xn--bcher-kva.example"),
    # hash
    ("md5", " D41D8CD98F00B204E9800998ECF8427E ", "d41d8cd98f00b204e9800998ecf8427e"),
    ("sha1", "A" * 40, "a" * 40),
    ("sha224", "b" * 56, "b" * 56),
    ("sha256", "C" * 64, "c" * 64),
    ("sha384", "d" * 96, "d" * 96),
    ("sha512", "e" * 128, "e" * 128),
    ("sha3-224", "f" * 56, "f" * 56),
    ("sha3-256", "0" * 64, "0" * 64),
    ("sha3-384", "1" * 96, "1" * 96),
    ("sha3-512", "2" * 128, "2" * 128),
    ("sha512-224", "3" * 56, "3" * 56),
    ("sha512-256", "4" * 64, "4" * 64),
    # file
    ("file", "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
    ("file", "A" * 64, "a" * 64),
    (
        "file",
        "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    ),
    # asn
    ("asn", "AS15169", "15169"),
    ("asn", "ASN15169", "15169"),
    ("asn", " as15169 ", "15169"),
    ("asn", "15169", "15169"),
    ("asn", "4294967295", "4294967295"),
    # cidr
    ("cidr", "8.8.8.8/24", "8.8.8.0/24"),
    ("cidr", "2001:4860:4860::8888/32", "2001:4860::/32"),
    ("cidr", "203.0.113.0/24", "203.0.113.0/24"),
    # istr / str
    ("malware", "  Emotet\tLoader\n", "emotet loader"),
    ("regkey", "HKLM\\Software\\Run", "hklm\\software\\run"),
    ("mutex", "  Global\\MyMutex\x00 ", "Global\\MyMutex"),
    ("user-agent", "Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)"),
    # the other data types
    ("mac-address", "AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
    ("mac-address", "aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff"),
    ("port", "0443", "443"),
    ("breach-count", "007", "7"),
    ("breach", "{6BA7B810-9DAD-11D1-80B4-00C04FD430C8}", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
    ("date", " 2024-02-29 ", "2024-02-29"),
    ("certificate-fingerprint", "AB:CD:EF:01", "abcdef01"),
]

REJECTED = [
    ("cidr", "2001:db8::%eth0/64", "scoped"),
    ("email-address", "(" * 1100 + "a@example.com", "longer than"),
    ("email-address", "(" * 600 + "a@example.com" + ")" * 2, "nest too deeply"),
    ("port", "9" * 5000, "port number"),
    ("bin", "9" * 65, "longer than 64 digits"),
    ("malware", "emotet\ud800", "surrogate"),
    # ip: one per rule
    ("ip", "not-an-ip", "not an IPv4 or IPv6 address"),
    ("ip", "127.0.0.1", "loopback"),
    ("ip", "::1", "loopback"),
    ("ip", "10.1.2.3", "private"),
    ("ip", "172.16.5.4", "private"),
    ("ip", "192.168.1.1", "private"),
    ("ip", "fd00::1", "private"),
    ("ip", "100.64.0.1", "carrier-grade NAT"),
    ("ip", "169.254.1.1", "link-local"),
    ("ip", "fe80::1", "link-local"),
    ("ip", "fe80::1%eth0", "scoped"),
    ("ip", "224.0.0.1", "multicast"),
    ("ip", "ff02::1", "multicast"),
    ("ip", "0.0.0.0", "unspecified"),
    ("ip", "::", "unspecified"),
    ("ip", "255.255.255.255", "broadcast"),
    ("ip", "::ffff:10.0.0.1", "private"),
    # fqdn
    ("domain", "", "empty"),
    ("domain", "localhost", "top-level domain"),
    ("domain", "example.c", "top-level domain"),
    ("domain", "example.123", "top-level domain"),
    ("domain", "a..example.com", "empty label"),
    ("domain", "-a.example.com", "inner hyphens"),
    ("domain", "a-.example.com", "inner hyphens"),
    ("domain", "a_b.example.com", "inner hyphens"),
    ("domain", "a" * 64 + ".com", "longer than 63"),
    ("domain", ".".join(["a" * 60] * 5) + ".com", "longer than 253"),
    ("domain", "xn--zz.example", "punycode"),
    ("domain", "exa mple.com", "inner hyphens"),
    # url
    ("url", "example.com/path", "absolute"),
    ("url", "/relative/path", "absolute"),
    ("url", "mailto:a@example.com", "no host"),
    ("url", "http:///path", "no host"),
    ("url", "http://exa\nmple.com/", "control"),
    ("url", "http://example.com:99999/", "not a valid URL"),
    ("url", "http://[::1/", "not a valid URL"),
    # email
    ("email-address", "no-at-sign.example.com", "local@domain"),
    ("email-address", "@example.com", "local@domain"),
    ("email-address", "a b@example.com", "local@domain"),
    ("email-address", "a@example.com, b@example.com", "exactly one"),
    ("email-address", "a@localhost", "domain"),
    ("email-address", "a@exa\x00mple.com", "control"),
    # hash
    ("md5", "d41d8cd98f00b204e9800998ecf8427", "exactly 32"),
    ("sha256", "z" * 64, "hexadecimal"),
    ("sha1", "a" * 41, "exactly 40"),
    # file
    ("file", "a" * 40, "MD5"),
    ("file", "not-a-file", "MD5"),
    # asn
    ("asn", "AS0", "between 1 and 4294967295"),
    ("asn", "4294967296", "between 1 and 4294967295"),
    ("asn", "ASX", "between 1 and 4294967295"),
    ("asn", "-5", "between 1 and 4294967295"),
    # cidr
    ("cidr", "8.8.8.8/33", "CIDR"),
    ("cidr", "nonsense", "CIDR"),
    ("cidr", "10.0.0.0/8", "private"),
    ("cidr", "0.0.0.0/0", "overlaps"),
    ("cidr", "192.168.0.0/15", "overlaps a private"),
    ("cidr", "fc00::/6", "overlaps"),
    ("cidr", "::ffff:8.8.8.0/120", "IPv4-mapped"),
    # istr / str
    ("malware", " \t\n ", "empty"),
    ("malware", "a" * (MAX_TEXT_BYTES + 1), "longer than"),
    ("mutex", "\x00\x01", "empty"),
    ("mutex", "é" * (MAX_TEXT_BYTES // 2 + 1), "longer than"),
    # the other data types
    ("mac-address", "aa:bb:cc:dd:ee", "6 bytes"),
    ("port", "0", "between 1 and 65535"),
    ("port", "65536", "between 1 and 65535"),
    ("breach-count", "-1", "whole number"),
    ("breach", "not-a-uuid", "not a UUID"),
    ("date", "2023-02-29", "not a date"),
    ("hex", "xyz", "hexadecimal"),
]


@pytest.mark.parametrize(("type_name", "value", "expected"), ACCEPTED)
def test_values_normalise_to_their_canonical_text(
    type_name: str, value: str, expected: str
) -> None:
    assert normalise(type_name, value) == expected


@pytest.mark.parametrize(("type_name", "value", "reason"), REJECTED)
def test_invalid_values_are_refused_with_a_readable_reason(
    type_name: str, value: str, reason: str
) -> None:
    with pytest.raises(NormalisationError) as caught:
        normalise(type_name, value)
    error = caught.value
    assert error.code == "invalid_entity"
    assert error.type_name == type_name
    assert reason in error.reason
    assert str(error).startswith(f"invalid {type_name}: ")


def test_text_of_exactly_64_kib_is_accepted() -> None:
    assert len(normalise("value", "a" * MAX_TEXT_BYTES)) == MAX_TEXT_BYTES


def test_an_unknown_type_is_refused_as_unknown() -> None:
    with pytest.raises(UnknownEntityType) as caught:
        normalise("not-a-type", "x")
    assert caught.value.code == "unknown_entity_type"
    assert isinstance(caught.value, NormalisationError)


def test_a_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(NormalisationError, match="string"):
        normalise("asn", 15169)  # type: ignore[arg-type]
