package slsfake

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Operation names, as faults match them (Fault.Ops) and Stats counts them.
const (
	OpGetProject    = "GetProject"
	OpListProject   = "ListProject"
	OpListLogStores = "ListLogStores"
	OpGetLogStore   = "GetLogStore"
	OpPutLogs       = "PutLogs"
	OpListShards    = "ListShards"
	OpGetCursor     = "GetCursor"
	OpGetCursorTime = "GetCursorTime"
	OpPullLogs      = "PullLogs"
	OpSplitShard    = "SplitShard"
	OpMergeShards   = "MergeShards"
)

// Fault describes a misbehaviour injected into matching requests. A request
// matches when its operation is in Ops (any when empty) and its project and
// logstore equal Project and Logstore (any when empty). Of the matching
// requests, Share is hit (1 means all). A hit first waits Latency, then
// either resets the connection (Reset), answers Status/ErrorCode, or — with
// neither — goes on to be served normally (a latency-only fault).
type Fault struct {
	Ops      []string `yaml:"ops,omitempty" json:"ops,omitempty"`
	Project  string   `yaml:"project,omitempty" json:"project,omitempty"`
	Logstore string   `yaml:"logstore,omitempty" json:"logstore,omitempty"`

	// Share of matching requests hit, in [0, 1]; 0 means 1.
	Share float64 `yaml:"share,omitempty" json:"share,omitempty"`
	// Random picks hits by coin flip. By default hits are spread evenly (of
	// every n matching requests, round(n*Share) are hit), so tests counting
	// errors are deterministic.
	Random bool `yaml:"random,omitempty" json:"random,omitempty"`

	Latency time.Duration `yaml:"latency,omitempty" json:"-"`
	// Status and ErrorCode of the error answer. With only one of them set
	// the other follows SLS: 500 InternalServerError, 503 ServerBusy,
	// 403 WriteQuotaExceed, 401 Unauthorized, 400 BadRequest.
	Status       int    `yaml:"status,omitempty" json:"status,omitempty"`
	ErrorCode    string `yaml:"errorCode,omitempty" json:"errorCode,omitempty"`
	ErrorMessage string `yaml:"errorMessage,omitempty" json:"errorMessage,omitempty"`
	// Reset hijacks the connection and closes it with an RST, without
	// answering.
	Reset bool `yaml:"reset,omitempty" json:"reset,omitempty"`

	// Count stops the fault after that many hits (0: no limit).
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// For stops the fault that long after it was added (0: no limit).
	For time.Duration `yaml:"for,omitempty" json:"-"`
}

func (f Fault) check() error {
	if f.Share < 0 || f.Share > 1 {
		return fmt.Errorf("share %v is outside [0, 1]", f.Share)
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("status %d is not an error status", f.Status)
	}
	if f.Reset && (f.Status != 0 || f.ErrorCode != "") {
		return errors.New("a fault either resets or answers an error, not both")
	}
	for _, op := range f.Ops {
		if !slices.Contains(allOps, op) {
			return fmt.Errorf("unknown operation %q (want one of %v)", op, allOps)
		}
	}
	return nil
}

var allOps = []string{OpGetProject, OpListProject, OpListLogStores, OpGetLogStore, OpPutLogs,
	OpListShards, OpGetCursor, OpGetCursorTime, OpPullLogs, OpSplitShard, OpMergeShards}

// FaultStatus is an active fault with its id and how often it matched and
// hit.
type FaultStatus struct {
	ID      int   `json:"id"`
	Fault   Fault `json:"fault"`
	Matched int64 `json:"matched"`
	Hits    int64 `json:"hits"`
}

// OutageMode says how an outage window fails requests.
type OutageMode string

const (
	// OutageError answers every SLS request 503 ServerBusy.
	OutageError OutageMode = "error"
	// OutageReset resets every connection that sends a request.
	OutageReset OutageMode = "reset"
	// OutageRefuse resets every connection, the open ones and each new
	// one as soon as it is accepted, so clients see the server gone. The
	// port stays bound, so nothing else can take it meanwhile.
	OutageRefuse OutageMode = "refuse"
)

// faults holds the active faults and the outage window. Its methods are
// safe for concurrent use.
type faults struct {
	mu          sync.Mutex
	nextID      int
	active      []*activeFault
	outageUntil time.Time
	outageMode  OutageMode
}

type activeFault struct {
	FaultStatus
	expires time.Time
}

// verdict is what the faults decided for one request.
type verdict struct {
	latency time.Duration
	reset   bool
	err     *APIError
}

func (fs *faults) add(f Fault, now time.Time) (int, error) {
	if err := f.check(); err != nil {
		return 0, fmt.Errorf("cannot add fault: %w", err)
	}
	if f.Share == 0 {
		f.Share = 1
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	af := &activeFault{FaultStatus: FaultStatus{ID: fs.nextID, Fault: f}}
	if f.For > 0 {
		af.expires = now.Add(f.For)
	}
	fs.active = append(fs.active, af)
	return af.ID, nil
}

func (fs *faults) remove(id int) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := len(fs.active)
	fs.active = slices.DeleteFunc(fs.active, func(a *activeFault) bool { return a.ID == id })
	return len(fs.active) != n
}

func (fs *faults) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.active = nil
	fs.outageUntil = time.Time{}
}

func (fs *faults) list(now time.Time) []FaultStatus {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.expire(now)
	out := make([]FaultStatus, len(fs.active))
	for i, a := range fs.active {
		out[i] = a.FaultStatus
	}
	return out
}

// expire drops faults past their time or count; the caller holds fs.mu.
func (fs *faults) expire(now time.Time) {
	fs.active = slices.DeleteFunc(fs.active, func(a *activeFault) bool {
		return (!a.expires.IsZero() && !now.Before(a.expires)) || (a.Fault.Count > 0 && a.Hits >= int64(a.Fault.Count))
	})
}

func (fs *faults) setOutage(until time.Time, mode OutageMode) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.outageUntil, fs.outageMode = until, mode
}

// outage reports the mode of the outage in force at now, if any.
func (fs *faults) outage(now time.Time) (OutageMode, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if now.Before(fs.outageUntil) {
		return fs.outageMode, true
	}
	return "", false
}

// decide runs every active fault against one request. Latencies add up; the
// first fault that resets or answers an error decides the outcome.
func (fs *faults) decide(now time.Time, op, project, logstore string) verdict {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.expire(now)
	var v verdict
	for _, a := range fs.active {
		f := &a.Fault
		if len(f.Ops) > 0 && !slices.Contains(f.Ops, op) ||
			f.Project != "" && f.Project != project ||
			f.Logstore != "" && f.Logstore != logstore {
			continue
		}
		a.Matched++
		var hit bool
		if f.Random {
			hit = rand.Float64() < f.Share
		} else {
			// Hit when the running total of Share crosses an integer, which
			// spreads the hits evenly over the matching requests.
			hit = int64(float64(a.Matched)*f.Share) > int64(float64(a.Matched-1)*f.Share)
		}
		if !hit {
			continue
		}
		a.Hits++
		v.latency += f.Latency
		if v.reset || v.err != nil {
			continue
		}
		switch {
		case f.Reset:
			v.reset = true
		case f.Status != 0 || f.ErrorCode != "":
			v.err = faultError(f)
		}
	}
	return v
}

func faultError(f *Fault) *APIError {
	status, code := f.Status, f.ErrorCode
	defaults := map[int]string{500: "InternalServerError", 503: "ServerBusy", 403: "WriteQuotaExceed", 401: "Unauthorized", 400: "BadRequest"}
	if code == "" {
		code = defaults[status]
		if code == "" {
			code = "InternalServerError"
		}
	}
	if status == 0 {
		status = 500
		for s, c := range defaults {
			if c == code {
				status = s
			}
		}
	}
	msg := f.ErrorMessage
	if msg == "" {
		msg = "injected by slsfake"
	}
	return &APIError{Status: status, Code: code, Message: msg}
}

// resetConn takes the connection from the HTTP server and closes it with an
// RST (linger 0), which is what a crashing or overloaded front end looks
// like to the client: "connection reset by peer", no HTTP answer.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// AddFault activates a fault and returns its id (for RemoveFault).
func (s *Server) AddFault(f Fault) (int, error) {
	return s.faults.add(f, time.Now())
}

// RemoveFault deactivates one fault; it reports whether it was active.
func (s *Server) RemoveFault(id int) bool { return s.faults.remove(id) }

// ClearFaults deactivates every fault and ends an error or reset outage
// (a refuse outage runs to its end).
func (s *Server) ClearFaults() { s.faults.clear() }

// Faults lists the active faults with their counters.
func (s *Server) Faults() []FaultStatus { return s.faults.list(time.Now()) }

// Outage fails every SLS request for d in the given way (see OutageMode).
// It returns at once; the window ends by itself.
func (s *Server) Outage(d time.Duration, mode OutageMode) error {
	switch mode {
	case OutageError, OutageReset:
		s.faults.setOutage(time.Now().Add(d), mode)
		return nil
	case OutageRefuse:
		return s.refuseFor(d)
	default:
		return fmt.Errorf("cannot start an outage of mode %q: want error, reset or refuse", mode)
	}
}
