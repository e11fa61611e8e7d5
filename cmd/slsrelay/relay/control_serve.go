package relay

// The control socket's protocol (control.go describes it) and its
// handlers.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/slsrelay/slsrelay/wal"
)

// Control protocol paths.
const (
	controlWALStatus   = "/v1/wal/status"
	controlDeadLetters = "/v1/dead-letters"
	controlReplay      = "/v1/dead-letters/replay"
	controlDrop        = "/v1/dead-letters/drop"
)

// controlRequest is the body of a replay or drop.
type controlRequest struct {
	Select DeadLetterSelection `json:"select"`
	// AccessKey, for a replay, is the key the replayed entries carry.
	AccessKey *controlKey `json:"access_key,omitempty"`
}

type controlKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// controlEvent is one line of a replay's or drop's answer.
type controlEvent struct {
	Replayed uint64 `json:"replayed,omitempty"`
	Offset   *int64 `json:"offset,omitempty"` // with Replayed
	Dropped  uint64 `json:"dropped,omitempty"`
	Done     bool   `json:"done,omitempty"`
	Error    string `json:"error,omitempty"`
}

// serveWALStatus answers the table, or JSON when asked for it (Accept:
// application/json): the control socket's and the admin listener's
// /wal/status.
func (r *Relay) serveWALStatus(w http.ResponseWriter, req *http.Request) {
	if r.wal == nil {
		http.Error(w, "WAL not open", http.StatusServiceUnavailable)
		return
	}
	if acceptsJSON(req) {
		w.Header().Set("Content-Type", "application/json")
		WriteWALStatusJSON(w, r.wal.Stats())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	WriteWALStatus(w, r.wal.Stats())
}

// acceptsJSON tells whether req's Accept names application/json.
func acceptsJSON(req *http.Request) bool {
	for _, v := range req.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "application/json") {
				return true
			}
		}
	}
	return false
}

func (r *Relay) serveDeadLetters(w http.ResponseWriter, req *http.Request) {
	list, err := WALDeadLetters{r.wal}.DeadLetters(req.Context())
	if err != nil {
		controlError(w, http.StatusInternalServerError, err)
		return
	}
	if list == nil {
		list = []DeadLetterInfo{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

func (r *Relay) serveReplay(w http.ResponseWriter, req *http.Request) {
	cr, ok := readControlRequest(w, req)
	if !ok {
		return
	}
	var key *wal.Credential
	if k := cr.AccessKey; k != nil {
		if k.ID == "" || k.Secret == "" {
			controlError(w, http.StatusBadRequest, errors.New("access_key needs id and secret"))
			return
		}
		key = &wal.Credential{AccessKeyID: k.ID, AccessKeySecret: k.Secret}
	}
	events := newEventStream(w)
	err := WALDeadLetters{r.wal}.Replay(req.Context(), cr.Select, key, func(id uint64, off int64) {
		attrs := []any{"id", id, "offset", off}
		if key != nil {
			attrs = append(attrs, "access_key_id", key.AccessKeyID)
		}
		r.log.Info("dead letter replayed (control socket)", attrs...)
		events.send(controlEvent{Replayed: id, Offset: &off})
	})
	events.end(err)
}

func (r *Relay) serveDrop(w http.ResponseWriter, req *http.Request) {
	cr, ok := readControlRequest(w, req)
	if !ok {
		return
	}
	if cr.AccessKey != nil {
		controlError(w, http.StatusBadRequest, errors.New("access_key goes with replay only"))
		return
	}
	events := newEventStream(w)
	err := WALDeadLetters{r.wal}.Drop(req.Context(), cr.Select, func(id uint64) {
		r.log.Info("dead letter dropped (control socket)", "id", id)
		events.send(controlEvent{Dropped: id})
	})
	events.end(err)
}

// readControlRequest decodes a replay's or drop's body; on error it has
// answered.
func readControlRequest(w http.ResponseWriter, req *http.Request) (controlRequest, bool) {
	var cr controlRequest
	dec := json.NewDecoder(io.LimitReader(req.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cr); err != nil {
		// The decoder's message quotes no value, so no secret.
		controlError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return cr, false
	}
	if cr.Select.Empty() {
		controlError(w, http.StatusBadRequest, errors.New("no dead letters selected"))
		return cr, false
	}
	if err := cr.Select.Check(); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return cr, false
	}
	return cr, true
}

func controlError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(controlEvent{Error: err.Error()})
}

// eventStream writes a replay's or drop's answer line by line, each
// flushed, so the command shows each dead letter as it is done.
type eventStream struct {
	w   http.ResponseWriter
	enc *json.Encoder
	rc  *http.ResponseController
}

func newEventStream(w http.ResponseWriter) *eventStream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return &eventStream{w: w, enc: json.NewEncoder(w), rc: http.NewResponseController(w)}
}

func (s *eventStream) send(e controlEvent) {
	if s.enc.Encode(e) == nil {
		_ = s.rc.Flush()
	}
}

// end writes the last line: done, or err.
func (s *eventStream) end(err error) {
	if err != nil {
		s.send(controlEvent{Error: err.Error()})
		return
	}
	s.send(controlEvent{Done: true})
}
