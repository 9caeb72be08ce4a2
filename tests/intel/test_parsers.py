"""Every list format: real public samples where they exist, samples built from GuardDuty's format
documentation otherwise, and malformed files of each format with the exact errors expected."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from intel.parsers import FIRE_EYE_COLUMNS, ListFormatError, RejectedLine, parse_file, parse_list, trail_value

EXTERNAL = Path("/work/shared/data/external")
STIX2 = EXTERNAL / "stix2"


def test_txt_real_ipsum_level3():
    parsed = parse_file(str(EXTERNAL / "ipsum/levels/3.txt"), "TXT")
    assert parsed.counts == {"ip": 14217, "cidr": 0, "domain": 0, "ipv6": 0}
    assert parsed.rejected_total == 0


def test_txt_real_tor_exit_nodes_has_ipv6():
    parsed = parse_file(str(EXTERNAL / "tor-ip-addresses/tor-exit-nodes.lst"), "TXT")
    assert parsed.counts["ip"] == 1746
    assert parsed.counts["ipv6"] == 619
    assert len(parsed.ipv6) == 619 and len(parsed.ipv4) == 1127


def test_txt_real_maltrail_reports_ports_per_line():
    parsed = parse_file(str(EXTERNAL / "maltrail/trails/static/suspicious/crypto_mining.txt"), "TXT")
    assert "pool.minexmr.com" in parsed.domains
    first = parsed.rejected[0]
    assert first == RejectedLine(9, "an address with a port is not an entry; drop the ':port': '107.191.47.239:3333'",
                                 "107.191.47.239:3333")
    assert parsed.rejected_total > len(parsed.rejected) == 100


def test_txt_mixed_entries_comments_and_bad_lines():
    text = (
        "# my list\n"
        "\n"
        "192.0.2.0/24\n"
        "198.51.100.1   # inline comment # with # hashes\n"
        "Example.COM.\n"
        "*.wild.example.org\n"
        "2001:db8::/32\n"
        "2001:db8:1::5\n"
        "::ffff:203.0.113.9\n"
        "300.1.1.1\n"
        "bad_domain!.com\n"
        "com\n"
        "2001:zz::1\n"
        "10.0.0.0/33\n"
    )
    parsed = parse_list(text.encode(), "TXT")
    assert parsed.counts == {"ip": 3, "cidr": 2, "domain": 2, "ipv6": 2}
    assert parsed.domains == {"example.com"} and parsed.wildcards == {"wild.example.org"}
    assert (0xC0000200, 0xC00002FF) in parsed.ipv4
    assert (0xCB007109, 0xCB007109) in parsed.ipv4  # IPv4-mapped IPv6 is stored as IPv4
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (10, "not a valid IPv4 address: '300.1.1.1'"),
        (11, "not a valid domain name: 'bad_domain!.com'"),
        (12, "not an IP address, CIDR or domain name: 'com'"),
        (13, "not a valid IPv6 address: '2001:zz::1'"),
        (14, "not a valid CIDR block: '10.0.0.0/33'"),
    ]
    assert parsed.rejected_total == 5


def test_txt_first_100_rejected_kept_all_counted():
    text = "\n".join(f"bad entry {i}" for i in range(250)) + "\n192.0.2.1\n"
    parsed = parse_list(text, "TXT")
    assert parsed.rejected_total == 250
    assert len(parsed.rejected) == 100
    assert parsed.rejected[99].line == 100
    assert parsed.entries == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"type": "bundle", "objects": []}', "This file looks like STIX, not TXT. TXT lists hold one IP address, CIDR block or domain per line."),
        (b"Indicator type, Indicator, Description\nIPv4, 192.0.2.1, x\n", "This file looks like OTX_CSV, not TXT. TXT lists hold one IP address, CIDR block or domain per line."),
        (b"198.51.100.1#4#2#Malicious Host#US##0.0,0.0#3\n", "This file looks like ALIEN_VAULT, not TXT. TXT lists hold one IP address, CIDR block or domain per line."),
        (b"\x00\x01\x02binary", "This is a binary file, not a text list."),
        (b"\xff\xfe1.2.3.4", "The file is not UTF-8 text (bad byte at offset 0)."),
        (b"hello world\nfoo bar\n", "No entry of this file is valid TXT (2 rejected; first: line 1: not an IP address, CIDR or domain name: 'hello world')."),
    ],
)
def test_txt_refused(data, message):
    with pytest.raises(ListFormatError) as exc:
        parse_list(data, "TXT")
    assert str(exc.value) == message


def test_unknown_format_and_size_limit():
    with pytest.raises(ListFormatError, match="Unknown format 'CSV'; use one of TXT, STIX, OTX_CSV"):
        parse_list(b"1.2.3.4", "CSV")
    with pytest.raises(ListFormatError, match=r"The file is 36,700,161 bytes; the limit is 36,700,160 bytes \(35 MB\)."):
        parse_list(b"1" * (35 * 1024 * 1024 + 1), "TXT")


def test_gzip_is_accepted():
    parsed = parse_list(gzip.compress(b"192.0.2.1\nexample.com\n"), "TXT")
    assert parsed.entries == 2


# STIX 2 ---------------------------------------------------------------------------------


def test_stix21_oasis_examples():
    parsed = parse_file(str(STIX2 / "oasis-cti-stix2-json-schemas/examples/indicator-for-c2-ip-address.json"), "STIX")
    assert parsed.ipv4 == [(0x0A000000, 0x0A000000)]
    apt1 = parse_file(str(STIX2 / "oasis-cti-stix2-json-schemas/examples/threat-reports/apt1.json"), "STIX")
    assert apt1.counts["cidr"] == 4 and apt1.counts["domain"] == 3
    # [ipv4-addr:value = '223.166.0.0/15']
    assert (0xDFA60000, 0xDFA7FFFF) in apt1.ipv4
    assert apt1.rejected[0].reason == "pattern has no IP address or domain name (e.g. only file hashes)"


def test_stix20_unit42_playbook():
    parsed = parse_file(str(STIX2 / "unit42-playbook-viewer/playbook_json/solarphoenix.json"), "STIX")
    assert parsed.counts == {"ip": 55, "cidr": 0, "domain": 637, "ipv6": 0}
    assert "seatat0605e9c461km4q.appsync-api.us-east-1.avsvmcloud.com" in parsed.domains
    assert parsed.ignored_total == 28


def test_stix_compound_pattern_goes_through_the_grammar():
    poison = parse_file(str(STIX2 / "oasis-cti-stix2-json-schemas/examples/threat-reports/poisonivy.json"), "STIX")
    # "[domain-name:value = 'domain autuo.xicp.net' OR ipv4-addr:value = '60.10.1.115']": the IP is kept
    assert (0x3C0A0173, 0x3C0A0173) in poison.ipv4
    assert any(r.reason == "not a valid domain name: 'domain autuo.xicp.net'" for r in poison.rejected)


def test_stix_invalid_pattern_and_ipv6():
    bundle = (
        '{"type": "bundle", "id": "bundle--1", "objects": ['
        '{"type": "indicator", "spec_version": "2.1", "id": "indicator--a", "pattern_type": "stix",'
        ' "pattern": "[ipv6-addr:value = \'2001:db8::1\']"},'
        '{"type": "indicator", "spec_version": "2.1", "id": "indicator--b", "pattern_type": "stix",'
        ' "pattern": "[ipv4-addr:value = \'1.2.3.4\' AND"},'
        '{"type": "indicator", "spec_version": "2.1", "id": "indicator--c", "pattern_type": "snort",'
        ' "pattern": "alert tcp any any"}]}'
    )
    parsed = parse_list(bundle, "STIX")
    assert parsed.ipv6 == [(0x20010DB8 << 96 | 1, 0x20010DB8 << 96 | 1)]
    assert parsed.rejected[0].line == 2 and parsed.rejected[0].reason.startswith("invalid STIX pattern: ")
    assert parsed.rejected[1] == RejectedLine(3, "pattern type 'snort' is not supported (only 'stix')", "indicator--c")


STIX1 = """<?xml version="1.0" encoding="UTF-8"?>
<stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1" xmlns:cybox="http://cybox.mitre.org/cybox-2"
  xmlns:AddressObject="http://cybox.mitre.org/objects#AddressObject-2"
  xmlns:DomainNameObj="http://cybox.mitre.org/objects#DomainNameObject-1"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="example:Package-1" version="1.1.1">
  <stix:Observables cybox_major_version="2" cybox_minor_version="1">
    <cybox:Observable id="example:Observable-1">
      <cybox:Object><cybox:Properties xsi:type="AddressObject:AddressObjectType" category="ipv4-addr">
        <AddressObject:Address_Value condition="Equals">198.51.100.1##comma##198.51.100.2</AddressObject:Address_Value>
      </cybox:Properties></cybox:Object>
    </cybox:Observable>
    <cybox:Observable id="example:Observable-2">
      <cybox:Object><cybox:Properties xsi:type="AddressObject:AddressObjectType" category="ipv4-addr">
        <AddressObject:Address_Value condition="InclusiveBetween">192.0.2.0##comma##192.0.2.255</AddressObject:Address_Value>
      </cybox:Properties></cybox:Object>
    </cybox:Observable>
    <cybox:Observable id="example:Observable-3">
      <cybox:Object><cybox:Properties xsi:type="DomainNameObj:DomainNameObjectType">
        <DomainNameObj:Value condition="Equals">evil.example.com</DomainNameObj:Value>
      </cybox:Properties></cybox:Object>
    </cybox:Observable>
    <cybox:Observable id="example:Observable-4">
      <cybox:Object><cybox:Properties xsi:type="AddressObject:AddressObjectType" category="ipv4-addr">
        <AddressObject:Address_Value condition="InclusiveBetween">192.0.2.9##comma##192.0.2.1</AddressObject:Address_Value>
      </cybox:Properties></cybox:Object>
    </cybox:Observable>
  </stix:Observables>
</stix:STIX_Package>
"""


def test_stix1_xml_addresses_ranges_and_domains():
    parsed = parse_list(STIX1, "STIX")
    assert parsed.ipv4 == [(0xC6336401, 0xC6336401), (0xC6336402, 0xC6336402), (0xC0000200, 0xC00002FF)]
    assert parsed.domains == {"evil.example.com"}
    assert parsed.rejected == [RejectedLine(4, "not a valid address range: '192.0.2.9' - '192.0.2.1'",
                                            "192.0.2.9##comma##192.0.2.1")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("192.0.2.1\n", "A STIX list is a STIX 2 JSON bundle or a STIX 1.x XML package."),
        ('{"type": "bundle", "objects": [', "This is not a STIX file: invalid JSON at line 1, column 32."),
        ('{"type": "report", "objects": []}', 'This is not a STIX 2 bundle: expected a JSON object {"type": "bundle", "objects": [...]}.'),
        ('{"type": "bundle", "objects": [{"type": "malware"}]}', "This STIX bundle contains no indicator objects."),
        ("<html><body/></html>", "This XML document is not a STIX 1.x package (root element is not STIX_Package)."),
        ("<stix:STIX_Package", "This is not a STIX file: invalid XML (unclosed token: line 1, column 0)."),
        ("Indicator type, Indicator, Description\n", "This file looks like OTX_CSV, not STIX. A STIX list is a STIX 2 JSON bundle or a STIX 1.x XML package."),
    ],
)
def test_stix_refused(data, message):
    with pytest.raises(ListFormatError) as exc:
        parse_list(data, "STIX")
    assert str(exc.value) == message


# CSV family and AlienVault (no public samples: built from GuardDuty's format documentation) ---

OTX = """Indicator type, Indicator, Description
CIDR, 192.0.2.0/24, example
IPv4, 198.51.100.1, example
Domain name, bad.example.net, example
IPv6, 2001:db8::7, example
FileHash-MD5, 001dd76872d80801692ff942308c64e6, a hash
IPv4, not-an-ip.example, wrong type
CIDR, 198.51.100.0/40, bad prefix
"""


def test_otx_csv():
    parsed = parse_list(OTX, "OTX_CSV")
    assert parsed.counts == {"ip": 2, "cidr": 1, "domain": 1, "ipv6": 1}
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (6, "indicator type 'FileHash-MD5' is not IPv4, IPv6, CIDR or Domain name"),
        (7, "declared IPv4 but the value is a domain"),
        (8, "not a valid CIDR block: '198.51.100.0/40'"),
    ]


PROOFPOINT = """ip, category, score, first_seen, last_seen, ports (|)
198.51.100.1, 1, 100, 2000-01-01, 2000-01-01,
203.0.113.1, 1, 100, 2000-01-01, 2000-01-01, 80
203.0.113.2, 1, high, 2000-01-01, 2000-01-01, 80
203.0.113.300, 1, 100, 2000-01-01, 2000-01-01, 80
203.0.113.3, 1
"""


def test_proof_point():
    parsed = parse_list(PROOFPOINT, "PROOF_POINT")
    assert parsed.ipv4 == [(0xC6336401, 0xC6336401), (0xCB007101, 0xCB007101)]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (4, "score 'high' is not a number"),
        (5, "not a valid IPv4 address: '203.0.113.300'"),
        (6, "expected at least 5 columns: value, category, score, first_seen, last_seen"),
    ]
    domains = parse_list("domain, category, score, first_seen, last_seen, ports (|)\nevil.example.com, 1, 100, 2000-01-01, 2000-01-01,\n", "PROOF_POINT")
    assert domains.domains == {"evil.example.com"}


def _fire_eye_row(**values: str) -> str:
    return ",".join(values.get(c, "") for c in FIRE_EYE_COLUMNS)


def test_fire_eye():
    text = "\n".join([
        ", ".join(FIRE_EYE_COLUMNS),
        _fire_eye_row(reportId="r1", cidr="192.0.2.0/24"),
        _fire_eye_row(reportId="r2", ip="198.51.100.1", domain="evil.example.com"),
        _fire_eye_row(reportId="r3", md5="001dd76872d80801692ff942308c64e6"),
        "r4,too,few,columns",
        _fire_eye_row(reportId="r5", ip="198.51.100.999"),
    ]) + "\n"
    parsed = parse_list(text, "FIRE_EYE")
    assert parsed.counts == {"ip": 1, "cidr": 1, "domain": 1, "ipv6": 0}
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (4, "no value in the cidr, ip or domain columns"),
        (5, "expected 47 columns, found 4"),
        (6, "not a valid IPv4 address: '198.51.100.999'"),
    ]


def test_alien_vault():
    text = (
        "198.51.100.1#4#2#Malicious Host#US##0.0,0.0#3\n"
        "evil.example.com#4#2#Malicious Host#US##0.0,0.0#3\n"
        "2001:db8::9#4#2#Scanning Host#DE##0.0,0.0#3\n"
        "198.51.100.2#x#2#Malicious Host#US##0.0,0.0#3\n"
        "198.51.100.3#4\n"
    )
    parsed = parse_list(text, "ALIEN_VAULT")
    assert parsed.counts == {"ip": 2, "cidr": 0, "domain": 1, "ipv6": 1}
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (4, "reliability and risk must be whole numbers"),
        (5, "expected value#reliability#risk#type#country#city#lat,lon#x"),
    ]


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("OTX_CSV", "192.0.2.1\n", "This is not an OTX_CSV file: it must start with the header line 'Indicator type, Indicator, Description'."),
        ("OTX_CSV", '{"type": "bundle"}', "This file looks like STIX, not OTX_CSV. "),
        ("PROOF_POINT", "Indicator type, Indicator, Description\n", "This file looks like OTX_CSV, not PROOF_POINT. "),
        ("PROOF_POINT", "192.0.2.1, 1, 100, 2000-01-01, 2000-01-01,\n", "This is not a PROOF_POINT file: it must start with the header line 'ip, category, score, first_seen, last_seen, ports (|)' (or 'domain, ...')."),
        ("FIRE_EYE", "ip, category, score, first_seen, last_seen, ports (|)\n", "This file looks like PROOF_POINT, not FIRE_EYE. "),
        ("FIRE_EYE", "reportId, title\nr1, t\n", "This is not a FIRE_EYE file: it must start with the iSIGHT CSV header 'reportId, title, threatScape, ...' including the columns cidr, domain and ip."),
        ("ALIEN_VAULT", "192.0.2.1\n192.0.2.2\n", "This is not an ALIEN_VAULT file: each line must be value#reliability#risk#type#country#city#lat,lon#x."),
        ("ALIEN_VAULT", "<xml/>", "This file looks like STIX, not ALIEN_VAULT. "),
        ("OTX_CSV", "Indicator type, Indicator, Description\nIPv4, nope, x\n", "No entry of this file is valid OTX_CSV (1 rejected; first: line 2: not an IP address, CIDR or domain name: 'nope')."),
    ],
)
def test_csv_family_refused(fmt, data, message):
    with pytest.raises(ListFormatError) as exc:
        parse_list(data, fmt)
    assert str(exc.value) == message


def test_trail_values():
    assert trail_value("http://1.2.3.4:8080/x # c") == "1.2.3.4"
    assert trail_value("107.191.47.239:3333") == "107.191.47.239"
    assert trail_value("5.63.151.0/24 # rapid7") == "5.63.151.0/24"
    assert trail_value("evil.example.com/path") == "evil.example.com"
    assert trail_value("# comment") is None


def test_txt_inline_comment_with_hashes_is_not_mistaken_for_alien_vault():
    parsed = parse_list("198.51.100.1 # seen # twice # today\n", "TXT")
    assert parsed.ipv4 == [(0xC6336401, 0xC6336401)]
