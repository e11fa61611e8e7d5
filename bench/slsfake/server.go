package slsfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// APIError is an error as SLS answers it: an HTTP status, an errorCode and
// an errorMessage. Go methods of Server return it too, so tests can check
// the code.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"errorCode"`
	Message string `json:"errorMessage"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// Server is the SLS stand-in. Create it with New, serve with Start (or use
// it as an http.Handler), stop with Close. All methods are safe for
// concurrent use.
type Server struct {
	cfg      Config
	projects map[string]*project   // fixed after New
	keys     map[string]*accessKey // fixed after New
	store    *store
	faults   faults
	stats    counters

	rules contentRules // fixed after New

	reqSeq atomic.Uint64
	// clock is time.Now except in tests that need the quota buckets to see
	// a fixed time; it is set before Start and never changed. The server's
	// own time is clock() plus skew (see now).
	clock func() time.Time
	skew  atomic.Int64 // nanoseconds, set by SetClockSkew

	mu          sync.Mutex // guards the fields below
	srv         *http.Server
	ln          net.Listener
	addr        string
	conns       map[net.Conn]struct{}
	closed      bool
	closing     chan struct{}
	refusing    *time.Timer // ends the refuse outage
	refusingNow atomic.Bool
}

type project struct {
	name        string
	description string
	created     time.Time
	logstores   map[string]*logstore
	order       []string
	state       atomic.Value // ProjectState

	mu              sync.Mutex // guards the quota and its buckets
	quota           ProjectQuota
	requests, bytes tokenBucket
}

// New builds a stand-in from cfg (defaults filled in, see Config). It does
// not listen yet.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, fmt.Errorf("cannot start slsfake: %w", err)
	}
	now := time.Now()
	s := &Server{
		cfg:      cfg,
		projects: make(map[string]*project),
		keys:     make(map[string]*accessKey),
		store:    newStore(cfg.MaxStoredBytes),
		conns:    make(map[net.Conn]struct{}),
		closing:  make(chan struct{}),
		clock:    time.Now,
		rules:    contentRules{strictKeys: cfg.StrictKeys, maxLogs: cfg.MaxLogsPerGroup},
	}
	s.stats.init()
	for _, pc := range cfg.Projects {
		p := &project{name: pc.Name, description: pc.Description, created: now, logstores: make(map[string]*logstore),
			quota: *cfg.ProjectQuota}
		if pc.Quota != nil {
			p.quota = *pc.Quota
		}
		for _, lc := range pc.Logstores {
			q := *cfg.DefaultQuota
			if lc.Quota != nil {
				q = *lc.Quota
			}
			p.logstores[lc.Name] = newLogstore(pc.Name, lc, q, now)
			p.order = append(p.order, lc.Name)
		}
		p.state.Store(pc.State.orDefault())
		s.projects[pc.Name] = p
	}
	for i := range cfg.AccessKeys {
		k := &cfg.AccessKeys[i]
		s.keys[k.ID] = newAccessKey(k)
	}
	for _, f := range cfg.Faults {
		if _, err := s.faults.add(f, now); err != nil {
			return nil, fmt.Errorf("cannot start slsfake: %w", err)
		}
	}
	return s, nil
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until Close.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.srv != nil {
		ln.Close()
		return errors.New("cannot start slsfake: it was already started or closed")
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.trackConn,
	}
	s.ln, s.addr = ln, ln.Addr().String()
	go s.serve(s.srv, &refusingListener{Listener: ln, s: s})
	return nil
}

// refusingListener turns connections away during a refuse outage: each is
// reset as soon as it is accepted. The port stays bound all along, so no
// other socket (a client's ephemeral port, on a busy test machine) can take
// it while the outage lasts.
type refusingListener struct {
	net.Listener
	s *Server
}

func (l *refusingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.s.refusingNow.Load() {
			return c, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not an orderly close
		}
		c.Close()
	}
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	// Serve returns when the listener is closed, either by Close or by a
	// refuse outage; neither is an error worth reporting.
	_ = srv.Serve(ln)
}

func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// Addr is the address the stand-in listens on (host:port), empty before
// Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops listening, drops every connection and ends pending latency
// faults. Stored data stays readable through the Go accessors.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	if s.refusing != nil {
		s.refusing.Stop()
	}
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// refuseFor resets every connection, open and new, for d.
func (s *Server) refuseFor(d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil || s.closed {
		return errors.New("cannot refuse connections: slsfake is not serving")
	}
	if s.refusing != nil {
		return errors.New("cannot refuse connections: a refuse outage is already running")
	}
	s.refusingNow.Store(true)
	for c := range s.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	s.refusing = time.AfterFunc(d, func() {
		s.mu.Lock()
		s.refusingNow.Store(false)
		s.refusing = nil
		s.mu.Unlock()
	})
	return nil
}

// Endpoint is the endpoint to give the SDK: the configured host name and
// the real port. Only an *http.Client from HTTPClient (or NewHTTPClient)
// can reach it, since nothing resolves the name.
func (s *Server) Endpoint() string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return net.JoinHostPort(s.cfg.EndpointHost, port)
}

// ServeHTTP serves the SLS API and, under /_, the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_") {
		s.serveControl(w, r)
		return
	}
	// Date is the server's clock, skew included, as an origin server
	// with a clock dates every answer (RFC 9110 6.6.1): clients that
	// estimate SLS's clock from it see the skewed one.
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	now := time.Now()
	rt := parseRoute(r, s.cfg.EndpointHost)
	s.stats.request(rt.op)

	if mode, ok := s.faults.outage(now); ok {
		s.stats.faultHits.Add(1)
		if mode == OutageReset {
			resetConn(w)
			return
		}
		s.writeError(w, &APIError{Status: http.StatusServiceUnavailable, Code: "ServerBusy",
			Message: "The server is busy, please try again later."})
		return
	}
	v := s.faults.decide(now, rt.op, rt.project, rt.logstore)
	if v.latency > 0 || v.reset || v.err != nil {
		s.stats.faultHits.Add(1)
	}
	if v.latency > 0 && !s.sleep(r.Context(), v.latency) {
		return
	}
	if v.reset {
		resetConn(w)
		return
	}
	if v.err != nil {
		s.writeError(w, v.err)
		return
	}
	s.serveAPI(w, r, rt)
}

// sleep waits d unless the client goes away or the server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// serveAPI runs the checks SLS runs, in its order: the project must exist,
// then the signature must hold, then the key must be allowed, then the
// logstore must exist.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, rt route) {
	if rt.op == "" {
		s.writeError(w, &APIError{Status: http.StatusNotFound, Code: "NotSupported",
			Message: fmt.Sprintf("slsfake does not serve %s %s", r.Method, r.URL.Path)})
		return
	}
	body, aerr := s.readBody(r)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	var p *project
	if rt.op != OpListProject {
		p = s.projects[rt.project]
		if p == nil {
			s.writeError(w, &APIError{Status: http.StatusNotFound, Code: "ProjectNotExist",
				Message: fmt.Sprintf("The Project does not exist : %s", rt.project)})
			return
		}
	}
	key, aerr := s.authenticate(r, body, s.now())
	if aerr == nil {
		aerr = key.checkState(r)
	}
	if aerr == nil && p != nil {
		aerr = projectRefusal(p.name, p.state.Load().(ProjectState))
	}
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	if p != nil || rt.op == OpListProject {
		action, res := actionOf[rt.op], s.resourceOf(rt.op, rt.project, rt.logstore)
		if !allowed(key.policy, action, res) {
			s.writeError(w, denied(action, res))
			return
		}
	}
	var ls *logstore
	if rt.logstore != "" {
		ls = p.logstores[rt.logstore]
		if ls == nil {
			s.writeError(w, &APIError{Status: http.StatusNotFound, Code: "LogStoreNotExist",
				Message: fmt.Sprintf("logstore %s does not exist", rt.logstore)})
			return
		}
	}
	switch rt.op {
	case OpListProject:
		s.serveListProject(w, key)
	case OpGetProject:
		s.serveGetProject(w, p)
	case OpListLogStores:
		s.serveListLogStores(w, p)
	case OpGetLogStore:
		s.serveGetLogStore(w, ls)
	case OpListShards:
		s.writeJSON(w, ls.list())
	case OpPutLogs:
		s.servePutLogs(w, r, p, ls, rt, body)
	case OpGetCursor:
		s.serveGetCursor(w, r, ls, rt)
	case OpGetCursorTime:
		s.serveGetCursorTime(w, r, ls, rt)
	case OpPullLogs:
		s.servePullLogs(w, r, ls, rt)
	case OpSplitShard, OpMergeShards:
		s.serveSplitMerge(w, r, ls, rt)
	}
}

// readBody reads the whole request body; it must be read before the
// signature check anyway (Content-MD5, v4 payload hash). Compressed bodies
// are never larger than the raw bound by more than LZ4's worst case, so
// twice the raw bound is a safe cap.
func (s *Server) readBody(r *http.Request) ([]byte, *APIError) {
	if r.Body == nil || r.ContentLength == 0 {
		return nil, nil
	}
	limit := 2*s.cfg.MaxBodyRawBytes + 1024
	if r.ContentLength > limit {
		return nil, badRequest("PostBodyTooLarge", fmt.Sprintf("body of %d bytes is larger than %d", r.ContentLength, limit))
	}
	if r.ContentLength > 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, badRequest("PostBodyInvalid", fmt.Sprintf("cannot read the body: %v", err))
		}
		return buf, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badRequest("PostBodyInvalid", fmt.Sprintf("cannot read the body: %v", err))
	}
	if int64(len(buf)) > limit {
		return nil, badRequest("PostBodyTooLarge", fmt.Sprintf("body is larger than %d bytes", limit))
	}
	return buf, nil
}

// requestID makes an id shaped like SLS's (24 upper-case hex digits).
func (s *Server) requestID() string {
	return fmt.Sprintf("%08X%016X", uint32(time.Now().Unix()), s.reqSeq.Add(1))
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, &APIError{Status: 500, Code: "InternalServerError", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-log-requestid", s.requestID())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (s *Server) writeError(w http.ResponseWriter, e *APIError) {
	s.stats.errors.Add(1)
	body, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-log-requestid", s.requestID())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	w.Write(body)
}
