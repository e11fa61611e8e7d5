package shardwriter

import (
	"net/http"
	"sync/atomic"
	"time"
)

// slsClock estimates SLS's clock from the Date header of its responses, so
// that log times are checked against the clock SLS checks them with (the
// relay's own clock may be skewed). Safe for concurrent use.
type slsClock struct {
	offset atomic.Int64 // SLS's time minus ours, in ns; 0 until observed
	seen   atomic.Bool
}

// now returns the current time on SLS's clock, as last estimated (our
// clock before any answer was seen).
func (c *slsClock) now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load()))
}

// observe records an answer dated date (second resolution, RFC 7231)
// that arrived between sent and received on our clock. SLS's clock read
// date at some point of the exchange, truncated to the second: the
// estimate takes the middle of the exchange and of that second. The latest
// answer wins: clocks drift slowly, and a stepped clock (on either side)
// is followed at the next answer.
func (c *slsClock) observe(date, sent, received time.Time) {
	mid := sent.Add(received.Sub(sent) / 2)
	c.offset.Store(int64(date.Add(500 * time.Millisecond).Sub(mid)))
	c.seen.Store(true)
}

// dateObserver is the RoundTripper under every SLS request: it passes each
// request on to next and feeds the Date of each response to clock. An
// origin server with a clock sends Date on every answer (RFC 9110 6.6.1),
// errors included; an answer without one changes nothing.
type dateObserver struct {
	next  http.RoundTripper
	clock *slsClock
}

func (d *dateObserver) RoundTrip(req *http.Request) (*http.Response, error) {
	sent := time.Now()
	resp, err := d.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if date, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
		d.clock.observe(date, sent, time.Now())
	}
	return resp, nil
}

// observeDates returns a copy of hc whose requests go through a
// dateObserver feeding clock; hc itself is not changed.
func observeDates(hc *http.Client, clock *slsClock) *http.Client {
	c := *hc
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = &dateObserver{next: next, clock: clock}
	return &c
}
