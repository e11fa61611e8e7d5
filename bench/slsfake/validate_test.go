package slsfake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// groupOf builds a one-tag LogGroup whose logs each hold the given
// key/value pairs, stamped now.
func groupOf(logs int, kv ...string) *sls.LogGroup {
	now := uint32(time.Now().Unix())
	lg := &sls.LogGroup{Topic: strp("t"), Source: strp("127.0.0.1"),
		LogTags: []*sls.LogTag{{Key: strp("__tag__:host"), Value: strp("h1")}}}
	for range logs {
		l := &sls.Log{Time: u32p(now)}
		for i := 0; i+1 < len(kv); i += 2 {
			l.Contents = append(l.Contents, &sls.LogContent{Key: strp(kv[i]), Value: strp(kv[i+1])})
		}
		lg.Logs = append(lg.Logs, l)
	}
	return lg
}

// wantAnswer checks an SDK error against the status and code SLS answers;
// status 0 means the put must pass.
func wantAnswer(t *testing.T, err error, status int, code string) {
	t.Helper()
	if status == 0 {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	if e := slsErr(t, err); e.HTTPCode != int32(status) || e.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", e.HTTPCode, e.Code, e.Message, status, code)
	}
}

// TestPutLogsContentRules sends each rule's breach through the SDK, under
// the default rules and under StrictKeys, and checks SLS's answer and that
// nothing was stored when refused.
func TestPutLogsContentRules(t *testing.T) {
	big := strings.Repeat("v", 1_000_000)
	f := func(name string, lg *sls.LogGroup, defStatus int, defCode string, strictStatus int, strictCode string) {
		t.Run(name, func(t *testing.T) {
			for _, strict := range []bool{false, true} {
				cfg := testConfig()
				cfg.StrictKeys = strict
				s := start(t, cfg)
				err := demoClient(s).PutLogs(proj, ls1, lg)
				status, code := defStatus, defCode
				if strict {
					status, code = strictStatus, strictCode
				}
				wantAnswer(t, err, status, code)
				if stored := s.LogCount(proj, ls1); (status == 0) != (stored == len(lg.Logs)) || status != 0 && stored != 0 {
					t.Fatalf("strict=%v: %d logs stored after answer %d", strict, stored, status)
				}
			}
		})
	}
	f("json-like keys", groupOf(1, "content", "x", "level", "info", "ts_1", "1"), 0, "", 0, "")
	f("the relay's content key", groupOf(1, "content", "x"), 0, "", 0, "")
	f("__time__", groupOf(1, "__time__", "1"), 400, "InvalidKey", 400, "InvalidKey")
	f("__source__", groupOf(1, "__source__", "x"), 400, "InvalidKey", 400, "InvalidKey")
	f("__topic__", groupOf(1, "__topic__", "x"), 400, "InvalidKey", 400, "InvalidKey")
	f("__partition_time__", groupOf(1, "__partition_time__", "x"), 400, "InvalidKey", 400, "InvalidKey")
	f("_extract_others_", groupOf(1, "_extract_others_", "x"), 400, "InvalidKey", 400, "InvalidKey")
	f("__extract_others__", groupOf(1, "__extract_others__", "x"), 400, "InvalidKey", 400, "InvalidKey")
	f("reserved name inside a key", groupOf(1, "my__time__", "x"), 0, "", 400, "InvalidKey")
	f("empty key", groupOf(1, "", "x"), 400, "InvalidKey", 400, "InvalidKey")
	f("128-byte key", groupOf(1, strings.Repeat("k", 128), "x"), 0, "", 0, "")
	f("129-byte key", groupOf(1, strings.Repeat("k", 129), "x"), 400, "InvalidKey", 400, "InvalidKey")
	f("200-byte key", groupOf(1, strings.Repeat("k", 200), "x"), 400, "InvalidKey", 400, "InvalidKey")
	f("@timestamp (Beats)", groupOf(1, "@timestamp", "x"), 0, "", 400, "InvalidKey")
	f("dotted key (Logstash, Fluentd)", groupOf(1, "log.file.path", "x"), 0, "", 400, "InvalidKey")
	f("leading digit", groupOf(1, "1st", "x"), 0, "", 400, "InvalidKey")
	f("__tag__: key in a log", groupOf(1, "__tag__:host", "x"), 0, "", 400, "InvalidKey")
	f("non-UTF-8 key", groupOf(1, "k\xff", "x"), 400, "InvalidEncoding", 400, "InvalidEncoding")
	f("non-UTF-8 value", groupOf(1, "content", "caf\xe9"), 400, "InvalidEncoding", 400, "InvalidEncoding")
	f("UTF-8 value", groupOf(1, "content", "café ☕"), 0, "", 0, "")
	f("1 MiB value", groupOf(1, "content", strings.Repeat("v", 1<<20)), 0, "", 0, "")
	f("2 MB value", groupOf(1, "content", strings.Repeat("v", 2_000_000)), 400, "PostBodyTooLarge", 400, "PostBodyTooLarge")
	f("4096 logs", groupOf(4096, "content", "x"), 0, "", 0, "")
	f("5000 logs", groupOf(5000, "content", "x"), 400, "PostBodyTooLarge", 400, "PostBodyTooLarge")
	f("6 MB LogGroup", groupOf(6, "content", big), 400, "PostBodyTooLarge", 400, "PostBodyTooLarge")
	f("11 MB request", groupOf(11, "content", big), 400, "PostBodyTooLarge", 400, "PostBodyTooLarge")

	bad := groupOf(1, "content", "x")
	bad.Topic = strp("t\xff")
	f("non-UTF-8 topic", bad, 400, "InvalidEncoding", 400, "InvalidEncoding")
	badTag := groupOf(1, "content", "x")
	badTag.LogTags[0].Value = strp("\xc3")
	f("non-UTF-8 tag", badTag, 400, "InvalidEncoding", 400, "InvalidEncoding")
}

// TestPutLogsRawBodyRules sends the LogGroup limits through
// PostRawLogWithCompressType, the SDK's path for a body built elsewhere.
func TestPutLogsRawBodyRules(t *testing.T) {
	s := start(t, testConfig())
	c := demoClient(s)
	f := func(name string, lg *sls.LogGroup, status int, code string) {
		t.Run(name, func(t *testing.T) {
			raw, err := lg.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			wantAnswer(t, c.PostRawLogWithCompressType(proj, ls1, raw, sls.Compress_LZ4, nil), status, code)
		})
	}
	f("good", groupOf(2, "content", "x"), 0, "")
	f("__source__ key", groupOf(1, "__source__", "x"), 400, "InvalidKey")
	f("5000 logs", groupOf(5000, "content", "x"), 400, "PostBodyTooLarge")
	f("non-UTF-8 value", groupOf(1, "content", "\x80"), 400, "InvalidEncoding")
}

// TestLogTimeWindow checks SLS's [-7 days, +15 min] window against the
// server's own clock, which the test moves from Go and from the control
// API.
func TestLogTimeWindow(t *testing.T) {
	at := func(d time.Duration) *sls.LogGroup {
		lg := groupOf(1, "content", "x")
		lg.Logs[0].Time = u32p(uint32(time.Now().Add(d).Unix()))
		return lg
	}
	f := func(name string, skew, logAge time.Duration, accept bool, status int, code string) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.AcceptOutOfRangeTime = accept
			if code == "InvalidTimestamp" {
				cfg.OutOfRangeTimeCode = code
			}
			s := start(t, cfg)
			s.SetClockSkew(skew)
			err := demoClient(s).PutLogs(proj, ls1, at(logAge))
			wantAnswer(t, err, status, code)
			if status != 0 && code != "RequestTimeExpired" && !strings.Contains(slsErr(t, err).Message, "time is out of range") {
				t.Fatalf("message %q", slsErr(t, err).Message)
			}
			if accept && s.Stats().OutOfRangeGroups != 1 {
				t.Fatalf("OutOfRangeGroups = %d, want 1", s.Stats().OutOfRangeGroups)
			}
		})
	}
	f("now", 0, 0, false, 0, "")
	f("6 days old", 0, -6*24*time.Hour, false, 0, "")
	f("8 days old", 0, -8*24*time.Hour, false, 400, "PostBodyInvalid")
	f("8 days old, the InvalidTimestamp reading", 0, -8*24*time.Hour, false, 400, "InvalidTimestamp")
	f("8 days old, accepted by option", 0, -8*24*time.Hour, true, 0, "")
	f("10 min ahead", 0, 10*time.Minute, false, 0, "")
	f("20 min ahead", 0, 20*time.Minute, false, 400, "PostBodyInvalid")
	// The server clock 10 minutes behind: a log 10 minutes ahead of the
	// client is 20 ahead of SLS, while the request time (10 minutes off)
	// still passes.
	f("10 min ahead of a server 10 min behind", -10*time.Minute, 10*time.Minute, false, 400, "PostBodyInvalid")
	f("now, server 10 min ahead", 10*time.Minute, 0, false, 0, "")
	// Past 15 minutes of skew the request itself is refused.
	f("server 20 min ahead", 20*time.Minute, 0, false, 400, "RequestTimeExpired")

	t.Run("control API", func(t *testing.T) {
		s := start(t, testConfig())
		post := func(body string) (int, clockState) {
			resp, err := http.Post("http://"+s.Addr()+"/_clock", "application/json", bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var st clockState
			json.NewDecoder(resp.Body).Decode(&st)
			return resp.StatusCode, st
		}
		if code, st := post(`{"skew":"-10m"}`); code != 200 || st.Skew != "-10m0s" || s.ClockSkew() != -10*time.Minute {
			t.Fatalf("POST skew: %d %+v, skew %v", code, st, s.ClockSkew())
		}
		wantAnswer(t, demoClient(s).PutLogs(proj, ls1, at(10*time.Minute)), 400, "PostBodyInvalid")
		target := time.Now().Add(time.Hour).UTC()
		if code, _ := post(`{"now":"` + target.Format(time.RFC3339) + `"}`); code != 200 {
			t.Fatalf("POST now: %d", code)
		}
		if d := s.Now().Sub(target); d < -2*time.Second || d > 2*time.Second {
			t.Fatalf("server clock %v, want about %v", s.Now(), target)
		}
		if code, _ := post(`{"skew":"bad"}`); code != 400 {
			t.Fatalf("bad skew: %d, want 400", code)
		}
		if code, _ := post(`{}`); code != 400 {
			t.Fatalf("empty: %d, want 400", code)
		}
	})
}
