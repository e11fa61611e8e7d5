"""Produce with kafka-python and say, per record, whether it was acknowledged.

Run by engine/kafkatest/kafkapython.go with Debian's /usr/bin/python3 (the
python3-kafka package, kafka-python 2.0.2). Everything comes on stdin, one
JSON object a line, so that no password is in the command line:

  line 1:   the producer's configuration (see PyConfig in kafkapython.go)
  then:     one record a line: {"id", "value", "key", "partition",
            "headers": [[name, value], ...], "timestamp_ms", "topic"}
            (topic: the configuration's when not given)

On stdout, one JSON object a line, in the order the answers come:

  {"id", "ok": true, "partition", "offset", "wait_ms"}
  {"id", "ok": false, "error", "error_name", "error_code", "wait_ms"}
  {"done": true, "acked", "failed", "max_wait_ms"}   after stdin ends
  {"fatal": "..."}                                   the producer could not start

wait_ms is from the send() call to the acknowledgement (or the error).
kafka-python's own log goes to stderr at WARNING (DEBUG with "debug").
"""

import json
import logging
import sys
import threading
import time

import kafka
import kafka.errors

_out = threading.Lock()  # one writer at a time: callbacks run on the sender thread


def emit(obj):
    line = json.dumps(obj) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def describe(err):
    """The error as the test matches it: the class, Kafka's name and code."""
    out = {"error": "%s: %s" % (type(err).__name__, err)}
    name = getattr(err, "message", None)  # BrokerResponseError: e.g. TOPIC_AUTHORIZATION_FAILED
    if isinstance(name, str):
        out["error_name"] = name
    code = getattr(err, "errno", None)
    if isinstance(code, int):
        out["error_code"] = code
    return out


def producer_params(cfg):
    params = {
        "bootstrap_servers": cfg["bootstrap"],
        "client_id": cfg.get("client_id") or "kafka-python",
        "acks": cfg.get("acks", 1),
        "retries": cfg.get("retries", 0),
        "security_protocol": cfg.get("security_protocol", "PLAINTEXT"),
        "request_timeout_ms": cfg.get("request_timeout_ms", 30000),
        "max_block_ms": cfg.get("max_block_ms", 60000),
        "linger_ms": cfg.get("linger_ms", 0),
        "retry_backoff_ms": cfg.get("retry_backoff_ms", 100),
        "metadata_max_age_ms": cfg.get("metadata_max_age_ms", 300000),
    }
    if cfg.get("compression"):
        params["compression_type"] = cfg["compression"]
    if cfg.get("api_version"):
        params["api_version"] = tuple(cfg["api_version"])
    if params["security_protocol"].startswith("SASL_"):
        params["sasl_mechanism"] = cfg.get("sasl_mechanism") or "PLAIN"
        params["sasl_plain_username"] = cfg.get("username", "")
        params["sasl_plain_password"] = cfg.get("password", "")
    if params["security_protocol"].endswith("SSL"):
        params["ssl_cafile"] = cfg.get("cafile")
        params["ssl_check_hostname"] = True
    return params


def main():
    cfg = json.loads(sys.stdin.readline())
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if cfg.get("debug") else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        producer = kafka.KafkaProducer(**producer_params(cfg))
    except Exception as err:  # NoBrokersAvailable, an authentication failure, a TLS error
        emit({"fatal": describe(err)["error"]})
        return 1

    stats = {"acked": 0, "failed": 0, "max_wait_ms": 0.0}
    stats_lock = threading.Lock()  # protects stats

    def answered(rec_id, sent, md=None, err=None):
        wait_ms = (time.monotonic() - sent) * 1000.0
        if err is None:
            out = {"id": rec_id, "ok": True, "partition": md.partition, "offset": md.offset, "wait_ms": wait_ms}
        else:
            out = dict(describe(err), id=rec_id, ok=False, wait_ms=wait_ms)
        with stats_lock:
            if err is None:
                stats["acked"] += 1
                stats["max_wait_ms"] = max(stats["max_wait_ms"], wait_ms)
            else:
                stats["failed"] += 1
        emit(out)

    for line in sys.stdin:
        if not line.strip():
            continue
        rec = json.loads(line)
        key = rec.get("key")
        headers = [(h[0], h[1].encode()) for h in rec.get("headers") or []]
        sent = time.monotonic()
        try:
            future = producer.send(rec.get("topic") or cfg["topic"], value=rec["value"].encode(), key=key.encode() if key is not None else None,
                                   partition=rec.get("partition"), headers=headers or None,
                                   timestamp_ms=rec.get("timestamp_ms"))
        except Exception as err:  # KafkaTimeoutError: no metadata within max_block_ms
            answered(rec["id"], sent, err=err)
            continue
        future.add_callback(lambda md, i=rec["id"], s=sent: answered(i, s, md=md))
        future.add_errback(lambda err, i=rec["id"], s=sent: answered(i, s, err=err))

    close_s = cfg.get("close_timeout_ms", 30000) / 1000.0
    try:
        producer.flush(timeout=close_s)
    except Exception as err:
        emit({"fatal": "flush: " + describe(err)["error"]})
    producer.close(timeout=close_s)
    with stats_lock:
        emit(dict(stats, done=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
