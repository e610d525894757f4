"""The benchmark reads wrk's numbers right, whatever unit wrk picks, and counts failed answers."""

import pytest

from bench.gunicorn.run import Result, Scenario, Setup, best, parse_wrk

pytestmark = pytest.mark.unit

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:24500/health/live
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.90ms    1.22ms  21.03ms   91.25%
    Req/Sec     1.03k    81.67     1.15k    75.00%
  Latency Distribution
     50%    3.71ms
     75%    4.15ms
     90%    4.89ms
     99%    1.20s
  2053 requests in 1.00s, 577.37KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   2052.61
Transfer/sec:    577.19KB
"""


def test_wrk_output_is_read_with_its_units_and_errors():
    assert parse_wrk(WRK_OUTPUT) == (2052.61, 1200.0, 2053, 7)
    assert parse_wrk(WRK_OUTPUT.replace("1.20s", "850.00us"))[1] == pytest.approx(0.85)


def test_unreadable_output_is_an_error():
    with pytest.raises(RuntimeError, match="cannot read wrk"):
        parse_wrk("unable to connect to 127.0.0.1:24500 Connection refused")


def test_the_best_setup_is_fastest_over_all_requests_and_never_one_with_errors():
    # given
    cpu, io = Scenario("cpu", "/a"), Scenario("io", "/b")
    sync, gthread, erring = Setup("sync", 2), Setup("gthread", 2, 4), Setup("sync", 9)
    results = [
        Result(sync, cpu, 1000, 10, 1, 0, 1.0),
        Result(sync, io, 100, 10, 1, 0, 1.0),
        Result(gthread, cpu, 800, 10, 1, 0, 1.0),
        Result(gthread, io, 300, 10, 1, 0, 1.0),
        Result(erring, cpu, 5000, 10, 1, 3, 1.0),
        Result(erring, io, 5000, 10, 1, 0, 1.0),
    ]
    # then: 800*300 > 1000*100, and errors disqualify
    assert best(results) == gthread
