package slsfake

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// zstdDecoder is shared: DecodeAll may be called concurrently.
var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic(fmt.Errorf("cannot make a zstd decoder: %w", err))
	}
	return d
})

// servePutLogs stores one LogGroup. The body is a LogGroup protobuf,
// compressed as x-log-compresstype says (lz4 block, zstd frame, deflate
// (zlib) or nothing), whose raw size is x-log-bodyrawsize.
func (s *Server) servePutLogs(w http.ResponseWriter, r *http.Request, p *project, ls *logstore, rt route, body []byte) {
	now := s.now()
	raw, aerr := s.decodeBody(r, body)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	if int64(len(raw)) > s.cfg.MaxLogGroupBytes {
		s.writeError(w, badRequest("PostBodyTooLarge", fmt.Sprintf("Logs must be less than or equal to %d bytes: this LogGroup has %d", s.cfg.MaxLogGroupBytes, len(raw))))
		return
	}
	sum, err := scanLogGroup(raw, &s.rules)
	if err != nil {
		if rule, ok := err.(*APIError); ok {
			s.writeError(w, rule)
			return
		}
		s.writeError(w, badRequest("PostBodyInvalid", fmt.Sprintf("body is not a valid LogGroup: %v", err)))
		return
	}
	if aerr := checkLogTimes(sum, now, s.cfg.OutOfRangeTimeCode); aerr != nil {
		if !s.cfg.AcceptOutOfRangeTime {
			s.writeError(w, aerr)
			return
		}
		s.stats.outOfRange.Add(1)
	}

	if aerr := p.admitProject(now, int64(len(raw))); aerr != nil {
		s.stats.projectQuotaRejections.Add(1)
		s.writeError(w, aerr)
		return
	}

	ls.mu.Lock()
	var sh *shard
	if rt.hashKey != "" {
		key, err := normalizeKey(rt.hashKey)
		if err != nil {
			ls.mu.Unlock()
			s.writeError(w, badRequest("ParameterInvalid", err.Error()))
			return
		}
		sh = ls.route(key)
	} else if rt.byKey {
		ls.mu.Unlock()
		s.writeError(w, badRequest("ParameterInvalid", "key is missing for /shards/route"))
		return
	} else {
		sh = ls.pickLB()
	}
	if sh == nil {
		ls.mu.Unlock()
		s.writeError(w, &APIError{Status: http.StatusInternalServerError, Code: "LogStoreWithoutShard",
			Message: "logstore has no readwrite shard for this write"})
		return
	}
	var overrun bool
	if rt.hashKey == "" {
		sh, overrun, aerr = ls.admitLB(sh, now, int64(len(raw)), s.cfg.QuotaErrorCode)
	} else {
		overrun, aerr = ls.admit(sh, now, int64(len(raw)), s.cfg.QuotaErrorCode)
	}
	if aerr != nil {
		ls.mu.Unlock()
		s.stats.quotaRejections.Add(1)
		s.writeError(w, aerr)
		return
	}
	if overrun {
		s.stats.shardOverruns.Add(1)
	}
	shardID := sh.ID
	ls.mu.Unlock()

	s.store.append(shardKey{ls.project, ls.name, shardID}, storedGroup{raw: raw, received: now, logs: sum.logs})
	s.stats.addPut(sum.logs, len(raw), len(body))
	w.Header().Set("x-log-requestid", s.requestID())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// decodeBody undoes the body's compression and checks its raw size.
func (s *Server) decodeBody(r *http.Request, body []byte) ([]byte, *APIError) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return nil, &APIError{Status: http.StatusUnsupportedMediaType, Code: "InvalidContentType",
			Message: fmt.Sprintf("Content-Type %s is unsupported.", ct)}
	}
	rs := r.Header.Get("x-log-bodyrawsize")
	if rs == "" {
		return nil, badRequest("MissingBodyRawSize", "x-log-bodyrawsize does not exist in header when it is necessary.")
	}
	rawSize, err := strconv.ParseInt(rs, 10, 64)
	if err != nil || rawSize < 0 {
		return nil, badRequest("InvalidBodyRawSize", "x-log-bodyrawsize is invalid.")
	}
	if rawSize > s.cfg.MaxBodyRawBytes {
		return nil, badRequest("PostBodyTooLarge", fmt.Sprintf("body raw size %d is larger than %d", rawSize, s.cfg.MaxBodyRawBytes))
	}
	var raw []byte
	switch ct := r.Header.Get("x-log-compresstype"); ct {
	case "":
		raw = body
	case "lz4":
		raw = make([]byte, rawSize)
		n, err := lz4.UncompressBlock(body, raw)
		if err != nil {
			return nil, badRequest("PostBodyUncompressError", fmt.Sprintf("cannot uncompress the lz4 body: %v", err))
		}
		raw = raw[:n]
	case "zstd":
		raw, err = zstdDecoder().DecodeAll(body, make([]byte, 0, rawSize))
		if err != nil {
			return nil, badRequest("PostBodyUncompressError", fmt.Sprintf("cannot uncompress the zstd body: %v", err))
		}
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err == nil {
			raw, err = io.ReadAll(io.LimitReader(zr, rawSize+1))
		}
		if err != nil {
			return nil, badRequest("PostBodyUncompressError", fmt.Sprintf("cannot uncompress the deflate body: %v", err))
		}
	default:
		return nil, badRequest("InvalidCompressType", fmt.Sprintf("x-log-compresstype %s is unsupported.", ct))
	}
	if int64(len(raw)) != rawSize {
		return nil, badRequest("InvalidBodyRawSize", fmt.Sprintf("x-log-bodyrawsize is %d but the body holds %d bytes", rawSize, len(raw)))
	}
	return raw, nil
}
