def test_create_and_get_detector(principal_factory, make_client):
    alice = principal_factory()
    gd = make_client(alice)
    detector_id = gd.create_detector(Enable=True)["DetectorId"]
    got = gd.get_detector(DetectorId=detector_id)
    assert got["Status"] == "ENABLED"
    assert gd.list_detectors()["DetectorIds"] == [detector_id]
