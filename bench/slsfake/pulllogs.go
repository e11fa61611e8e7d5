package slsfake

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// zstdEncoder is shared: EncodeAll may be called concurrently.
var zstdEncoder = func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		panic(fmt.Errorf("cannot make a zstd encoder: %w", err))
	}
	return e
}()

// shardOf resolves the shard id of a GetCursor/PullLogs path.
func shardOf(ls *logstore, id string) (int, *APIError) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return 0, badRequest("ParameterInvalid", fmt.Sprintf("shard id %q is not a number", id))
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.find(n) == nil {
		return 0, errShardNotExist(n)
	}
	return n, nil
}

// serveGetCursor answers {"cursor": "..."} for from=begin|end|<unix time>.
func (s *Server) serveGetCursor(w http.ResponseWriter, r *http.Request, ls *logstore, rt route) {
	id, aerr := shardOf(ls, rt.shard)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	c, aerr := s.store.cursor(shardKey{ls.project, ls.name, id}, r.URL.Query().Get("from"))
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	s.writeJSON(w, map[string]string{"cursor": c})
}

// serveGetCursorTime answers {"cursor_time": <unix>}: when the group at
// cursor was received (now for the end cursor).
func (s *Server) serveGetCursorTime(w http.ResponseWriter, r *http.Request, ls *logstore, rt route) {
	id, aerr := shardOf(ls, rt.shard)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	t, aerr := s.store.cursorTime(shardKey{ls.project, ls.name, id}, r.URL.Query().Get("cursor"))
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	s.writeJSON(w, map[string]int64{"cursor_time": t.Unix()})
}

// servePullLogs answers up to count LogGroups from cursor as a compressed
// LogGroupList, with the next cursor, the group count and the raw size in
// headers, as SLS does. The body is lz4 unless the client asks for zstd
// through Accept-Encoding (the SDK's CompressType).
func (s *Server) servePullLogs(w http.ResponseWriter, r *http.Request, ls *logstore, rt route) {
	id, aerr := shardOf(ls, rt.shard)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	q := r.URL.Query()
	count := 1000
	if c := q.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			s.writeError(w, badRequest("ParameterInvalid", fmt.Sprintf("count %q is invalid", c)))
			return
		}
		count = min(max(n, 1), 1000)
	}
	cursor := q.Get("cursor")
	if cursor == "" {
		s.writeError(w, invalidCursor("cursor is missing"))
		return
	}
	groups, next, aerr := s.store.read(shardKey{ls.project, ls.name, id}, cursor, q.Get("end_cursor"), count)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	raw := appendLogGroupList(nil, groups)
	var body []byte
	compress := "lz4"
	if strings.Contains(r.Header.Get("Accept-Encoding"), "zstd") {
		compress = "zstd"
		body = zstdEncoder.EncodeAll(raw, nil)
	} else if len(raw) > 0 {
		body = make([]byte, lz4.CompressBlockBound(len(raw)))
		var c lz4.Compressor
		n, err := c.CompressBlock(raw, body)
		if err != nil || n == 0 {
			body = lz4Literals(raw)
		} else {
			body = body[:n]
		}
	}
	s.stats.pulled(len(groups), len(raw))
	h := w.Header()
	h.Set("x-log-requestid", s.requestID())
	// At the end of the shard the next cursor is the one asked for: the
	// SDK's consumer reads that as "already reach end of shard"
	// (aliyun-log-go-sdk consumer/shard_worker.go, cursor == NextCursor),
	// and so does Remote.ReadLogs.
	h.Set("x-log-cursor", next)
	h.Set("x-log-count", strconv.Itoa(len(groups)))
	h.Set("x-log-bodyrawsize", strconv.Itoa(len(raw)))
	h.Set("x-log-compresstype", compress)
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
