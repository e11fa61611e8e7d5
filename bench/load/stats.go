package load

import "sync/atomic"

// Stats are what a load run counts; the harness samples them every second.
type Stats struct {
	Sent       atomic.Int64 // records handed to the client
	Acked      atomic.Int64 // records acknowledged
	Failed     atomic.Int64 // records that ended in an error
	AckedBytes atomic.Int64 // raw value bytes of acknowledged records
	WireBytes  atomic.Int64 // Produce request bytes written to sockets
	Requests   atomic.Int64 // Produce requests written
	Throttles  atomic.Int64 // responses carrying a throttle
	ThrottleUs atomic.Int64 // throttle time imposed, summed
	Lat        Histogram    // ack latency: send → acknowledged
	// ReqLat is each Produce request's round trip as its client saw it:
	// from the start of its write to the end of reading its response
	// (franz-go's BrokerE2E). Lat minus ReqLat is the client's own
	// queueing: linger, the in-flight limit, a full buffer.
	ReqLat   Histogram
	AckedIDs IDSet
	IDs      IDs
	Conns    atomic.Int64 // connections up
	LastErr  atomic.Pointer[string]
}

func (s *Stats) setErr(err error) {
	if err != nil {
		m := err.Error()
		s.LastErr.Store(&m)
	}
}

// Err returns the last error a producer saw, or "".
func (s *Stats) Err() string {
	if p := s.LastErr.Load(); p != nil {
		return *p
	}
	return ""
}
