"""What operators are shown of a job's arguments."""

from workers.failures import masked_arguments


def test_every_address_argument_is_masked_and_the_rest_kept():
    shown = masked_arguments(
        {
            "conversation_sid": "CH" + "0" * 32,
            "address": "+15551230001",
            "proxy_address": "+15550001111",
            "projected_address": "+15550002222",
            "identity": "agent-1",
            "policy": "",
        }
    )
    assert shown == {
        "conversation_sid": "CH" + "0" * 32,
        "address": "+1555*****01",
        "proxy_address": "+1555*****11",
        "projected_address": "+1555*****22",
        "identity": "agent-1",
        "policy": "",
    }
