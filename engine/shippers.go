package engine

import (
	"net"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Shipper is one connected client as the admin listener shows it.
type Shipper struct {
	Listener string    `json:"listener"`
	Address  string    `json:"address"`
	ClientID string    `json:"client_id"`
	Software string    `json:"software"` // name/version from ApiVersions v3+, "" before
	User     string    `json:"user"`     // the relay user, or the Project of an AccessKey login
	Project  string    `json:"project"`
	Since    time.Time `json:"connected_since"`
	Topics   []string  `json:"topics"`
	Records  int64     `json:"records"`
	Bytes    int64     `json:"bytes"`
	// RecordsPerSec and BytesPerSec are over the last rateWindow seconds.
	RecordsPerSec float64 `json:"records_per_sec"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	// Throttles and ThrottledFor: throttled answers and their total wait.
	Throttles    int64         `json:"throttles"`
	ThrottledFor time.Duration `json:"throttled_ns"`
	LastError    *Refusal      `json:"last_error,omitempty"`
}

// rateWindow is the seconds the per-shipper rates average over.
const rateWindow = 10

// maxShipperTopics bounds the topics remembered per connection.
const maxShipperTopics = 32

// shipperInfo is what a session remembers for the shipper view. Safe for
// concurrent use: the handler goroutine and append callbacks write it, the
// admin listener reads it.
type shipperInfo struct {
	since time.Time

	mu           sync.Mutex // protects the fields below
	clientID     string
	software     string
	topics       []string
	records      int64
	bytes        int64
	buckets      [rateWindow + 1]rateBucket // per second, ring by Unix second
	throttles    int64
	throttledFor time.Duration
	lastError    *Refusal
}

type rateBucket struct {
	sec            int64
	records, bytes int64
}

func (i *shipperInfo) setClient(clientID string) {
	i.mu.Lock()
	if clientID != i.clientID {
		i.clientID = logName(clientID)
	}
	i.mu.Unlock()
}

func (i *shipperInfo) setSoftware(name, version string) {
	i.mu.Lock()
	i.software = logName(name + "/" + version)
	i.mu.Unlock()
}

func (i *shipperInfo) clientIDOf() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.clientID
}

func (i *shipperInfo) setLastError(r Refusal) {
	i.mu.Lock()
	i.lastError = &r
	i.mu.Unlock()
}

func (i *shipperInfo) throttled(d time.Duration) {
	i.mu.Lock()
	i.throttles++
	i.throttledFor += d
	i.mu.Unlock()
}

// stored counts what a Produce of this connection stored for topic.
func (i *shipperInfo) stored(topic string, records int32, bytes int) {
	now := time.Now().Unix()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.records += int64(records)
	i.bytes += int64(bytes)
	b := &i.buckets[now%int64(len(i.buckets))]
	if b.sec != now {
		*b = rateBucket{sec: now}
	}
	b.records += int64(records)
	b.bytes += int64(bytes)
	for _, t := range i.topics {
		if t == topic {
			return
		}
	}
	if len(i.topics) < maxShipperTopics {
		i.topics = append(i.topics, logName(topic))
	}
}

// snapshot fills the shipper's figures; rates are over the last
// rateWindow whole seconds.
func (i *shipperInfo) snapshot(sh *Shipper, now time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	sh.ClientID, sh.Software, sh.Since = i.clientID, i.software, i.since
	sh.Topics = append([]string{}, i.topics...) // [] rather than null before the first write
	sh.Records, sh.Bytes = i.records, i.bytes
	sh.Throttles, sh.ThrottledFor = i.throttles, i.throttledFor
	if i.lastError != nil {
		e := *i.lastError
		sh.LastError = &e
	}
	sec := now.Unix()
	var records, bytes int64
	for _, b := range i.buckets {
		if b.sec < sec && b.sec >= sec-rateWindow {
			records += b.records
			bytes += b.bytes
		}
	}
	sh.RecordsPerSec = float64(records) / rateWindow
	sh.BytesPerSec = float64(bytes) / rateWindow
}

// Shippers lists the connected clients, busiest (bytes/s) first.
func (s *Server) Shippers() []Shipper {
	now := time.Now()
	var out []Shipper
	s.sessions.Range(func(k, _ any) bool {
		sess := k.(*session)
		sh := Shipper{Listener: sess.ln.opts.Name, Address: sess.peer}
		if sess.authenticated.Load() {
			p := sess.principalOf()
			sh.Project, sh.User = p.Project, loginUser(p, sess.ln)
		}
		sess.shipper.snapshot(&sh, now)
		out = append(out, sh)
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].BytesPerSec != out[j].BytesPerSec {
			return out[i].BytesPerSec > out[j].BytesPerSec
		}
		return out[i].Address < out[j].Address
	})
	return out
}

// ListenerStatus is one listener as the status page shows it.
type ListenerStatus struct {
	Name        string `json:"name"`
	Protocol    string `json:"protocol"`
	Addr        string `json:"addr"`
	Advertised  string `json:"advertised"`
	Connections int    `json:"connections"`
}

func (h hostPort) String() string { return net.JoinHostPort(h.host, strconv.Itoa(int(h.port))) }

// Listeners lists the configured listeners with their open connections.
func (s *Server) Listeners() []ListenerStatus {
	counts := map[*listener]int{}
	s.sessions.Range(func(k, _ any) bool {
		counts[k.(*session).ln]++
		return true
	})
	out := make([]ListenerStatus, 0, len(s.listeners))
	for _, ln := range s.listeners {
		ls := ListenerStatus{Name: ln.opts.Name, Protocol: ln.opts.Protocol, Addr: ln.addr, Connections: counts[ln]}
		if ln.stop != nil {
			ls.Advertised = ln.advertised.String()
		}
		out = append(out, ls)
	}
	return out
}

// loginUser is who a connection of ln logged in as p: the relay user
// (SASL or a client certificate), else on a SASL listener the username
// of an AccessKey login, its Project (SLS's PLAIN); "" without a login.
func loginUser(p Principal, ln *listener) string {
	if p.User != "" || !ln.opts.sasl() {
		return p.User
	}
	return p.Project
}
