"""`gateway.translate`: every kind of SDK failure becomes Bindery's error with the best code there
is (Twilio's; the HTTP status where Twilio gave none; 0 when no answer came) and its operation.
The SDK's own exceptions, as it raises them; the page-fetch and 502 cases through real HTTP are in
tests/integration/test_job_reports.py."""

from __future__ import annotations

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from workers.errors import TwilioRefused, TwilioUnavailable
from workers.gateway import translate


def test_a_rest_error_keeps_twilios_code():
    error = translate(
        TwilioRestException(400, "/v1/x", "Unable to create record: bad", 50407, "POST"),
        "participant.create",
    )
    assert isinstance(error, TwilioRefused)
    assert (error.code, error.status, error.reported_code) == (50407, 400, 50407)
    assert error.operation == "participant.create"
    assert str(error) == "Twilio 50407: Unable to create record: bad (participant.create)"


def test_a_body_without_a_code_is_reported_by_its_http_status():
    # What the SDK raises for a non-JSON error body: the status in place of the code.
    error = translate(
        TwilioRestException(502, "/v1/x", "Unable to create record", 502, "POST"),
        "participant.create",
    )
    assert isinstance(error, TwilioUnavailable)
    assert (error.code, error.reported_code) == (0, 502)
    assert str(error) == "Twilio HTTP 502: Unable to create record (participant.create)"


def test_a_problem_details_answer_keeps_its_code_and_status():
    problem = TwilioServiceException(
        "https://www.twilio.com/docs/errors/50416", "Conflict", 409, 50416, detail="held"
    )
    error = translate(problem, "participant.create")
    assert isinstance(error, TwilioRefused)
    assert (error.code, error.status, error.message) == (50416, 409, "held")


def test_no_answer_is_code_0_and_retried():
    error = translate(requests.ConnectTimeout("timed out"), "conversation.fetch")
    assert isinstance(error, TwilioUnavailable)
    assert error.reported_code == 0 and "ConnectTimeout" in error.message
