package relay

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"time"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/wal"
)

// The status page at / on the admin listener: plain server-rendered HTML
// that reloads itself every statusRefresh, readable on a phone (tables
// scroll sideways in their own box, nothing needs scripts).

//go:embed status_page.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"age":      fmtAge,
	"bytes":    fmtBytes,
	"rate":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"byteRate": func(v float64) string { return fmtBytes(int64(v)) + "/s" },
	"hint":     engine.RefusalHint,
}).Parse(statusHTML))

// statusRefresh is how often the page reloads itself.
const statusRefresh = 5

// statusDeadLetters is how many dead letters the page lists.
const statusDeadLetters = 10

// stalledAge: a shard whose oldest undelivered entry is older is shown as
// behind rather than delivering.
const stalledAge = time.Minute

// statusData is what the page shows.
type statusData struct {
	Now       time.Time
	Refresh   int
	Ready     string // "" when ready, else why not
	Listeners []engine.ListenerStatus
	Shippers  []engine.Shipper
	Logstores []logstoreBacklog
	Shards    []shardState
	WAL       wal.Stats
	HasWAL    bool
	Writers   *writerTotals
	Dead      []*wal.DeadLetter
	DeadErr   string
	Refusals  []engine.Refusal
}

// logstoreBacklog is one Logstore's undelivered data over its shards.
type logstoreBacklog struct {
	Project, Logstore string
	Shards            int
	Entries, Bytes    int64
	Oldest            time.Duration
}

// shardState is one shard's writer as the WAL's positions show it.
type shardState struct {
	Stream          wal.StreamStats
	State           string // idle, delivering, behind
	Delivered, Next int64
}

type writerTotals struct {
	LogGroups, Logs, Retries, DeadLetters int64
}

func (r *Relay) serveStatus(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/" {
		http.NotFound(w, req)
		return
	}
	d := r.statusData()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusTemplate.Execute(w, d); err != nil {
		r.log.Warn("cannot render the status page", "err", err)
	}
}

func (r *Relay) statusData() *statusData {
	d := &statusData{Now: time.Now(), Refresh: statusRefresh}
	if err := r.ready(); err != nil {
		d.Ready = err.Error()
	}
	if r.server != nil {
		d.Listeners = r.server.Listeners()
		d.Shippers = r.server.Shippers()
		d.Refusals = r.server.RecentRefusals()
	}
	if r.wal != nil {
		d.HasWAL = true
		d.WAL = r.wal.Stats()
		d.Logstores, d.Shards = backlogOf(d.WAL)
		for dl, err := range r.wal.DeadLetters() {
			if err != nil {
				d.DeadErr = err.Error()
				break
			}
			dl.Entry = nil // the page shows none of the batch (it holds the key)
			d.Dead = append(d.Dead, dl)
			if len(d.Dead) == statusDeadLetters {
				break
			}
		}
	}
	if r.writers != nil {
		st := r.writers.Stats()
		d.Writers = &writerTotals{LogGroups: st.LogGroups.Load(), Logs: st.Logs.Load(), Retries: st.Retries.Load(), DeadLetters: st.DeadLetters.Load()}
	}
	return d
}

// backlogOf sums the WAL's streams per Logstore (those with a backlog
// first, oldest first) and lists every shard's writer state.
func backlogOf(st wal.Stats) ([]logstoreBacklog, []shardState) {
	byLogstore := map[[2]string]*logstoreBacklog{}
	var shards []shardState
	for _, s := range st.Streams {
		k := [2]string{s.Key.Project, s.Key.Logstore}
		b := byLogstore[k]
		if b == nil {
			b = &logstoreBacklog{Project: k[0], Logstore: k[1]}
			byLogstore[k] = b
		}
		b.Shards++
		b.Entries += s.PendingEntries
		b.Bytes += s.PendingBytes
		b.Oldest = max(b.Oldest, s.OldestPending)
		state := "idle"
		switch {
		case s.PendingEntries > 0 && s.OldestPending >= stalledAge:
			state = "behind"
		case s.PendingEntries > 0:
			state = "delivering"
		}
		shards = append(shards, shardState{Stream: s, State: state, Delivered: s.Committed, Next: s.NextOffset})
	}
	var out []logstoreBacklog
	for _, b := range byLogstore {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Oldest != out[j].Oldest {
			return out[i].Oldest > out[j].Oldest
		}
		return out[i].Project+"/"+out[i].Logstore < out[j].Project+"/"+out[j].Logstore
	})
	sort.SliceStable(shards, func(i, j int) bool {
		a, b := shards[i].Stream.Key, shards[j].Stream.Key
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		if a.Logstore != b.Logstore {
			return a.Logstore < b.Logstore
		}
		return a.Partition < b.Partition
	})
	return out, shards
}

// fmtAge is a duration as people read it: 0s, 42s, 3m10s, 2h5m0s.
func fmtAge(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// fmtBytes is a byte count in binary units.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
