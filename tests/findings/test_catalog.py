from findings.catalog import FINDING_TYPE_RE, FINDING_TYPES, THREAT_PURPOSES, finding_type, severity_label


def test_every_type_has_guardduty_name_and_valid_severity():
    assert len(FINDING_TYPES) == 86  # tables 5.1-5.3 (less retired types) and the two attack sequences
    for name, entry in FINDING_TYPES.items():
        match = FINDING_TYPE_RE.match(name)
        assert match, name
        assert match["purpose"] in THREAT_PURPOSES, name
        assert 1.0 <= entry.severity <= 10.0
        assert entry.description.endswith("."), name


def test_known_entries():
    assert finding_type("Recon:EC2/PortProbeUnprotectedPort").action == "PORT_PROBE"
    assert finding_type("Backdoor:EC2/C&CActivity.B!DNS").action == "DNS_REQUEST"
    assert finding_type("Policy:S3/BucketAnonymousAccessGranted").resource_type == "AccessKey"
    assert finding_type("Exfiltration:S3/MaliciousIPCaller").resource_type == "S3Bucket"
    assert finding_type("UnauthorizedAccess:EC2/SSHBruteForce").resource_type == "Instance"
    assert finding_type("UnauthorizedAccess:EC2/SSHBruteForce").varies
    assert severity_label(8) == "High" and severity_label(9.5) == "Critical" and severity_label(3.9) == "Low"
