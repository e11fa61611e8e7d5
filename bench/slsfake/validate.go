package slsfake

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// PutLogs content rules. Each rule cites the page it comes from; CONTRACT.md
// lists them all with the answer the stand-in gives.
const (
	// DefaultMaxLogGroupBytes: "The maximum length of a log group is 5 MB"
	// (https://www.alibabacloud.com/help/en/log-service/latest/log-group).
	// A PutLogs body is one LogGroup, so this bounds its raw size too.
	DefaultMaxLogGroupBytes = 5 << 20
	// DefaultMaxLogsPerGroup: "You can call the PutLogs operation to write up
	// to 3 MB log group data or 4,096 logs each time ... the request will
	// fail" (https://www.alibabacloud.com/help/doc-detail/29026.htm, the
	// older PutLogs reference; the current one states only the 10 MB), whose
	// error table answers "400 PostBodyTooLarge: Logs must be less than or
	// equal to 3 MB and 4096 entries." The SDK's producer sends 4096 by
	// default but lets a user raise it to 40960 (producer/producer.go),
	// which suggests live SLS takes more: Config.MaxLogsPerGroup can follow
	// that reading, and Config.MaxLogGroupBytes the 3 MB one.
	DefaultMaxLogsPerGroup = 4096
	// maxKeyBytes: "The key is a UTF-8 encoded string of up to 128 bytes"
	// (data model, https://www.alibabacloud.com/help/doc-detail/48871.htm).
	maxKeyBytes = 128
	// maxValueBytes: "The value can be a string of up to 1,048,576 bytes"
	// (same page); the PutLogs reference: "The value of each log entry in
	// the log group cannot be greater than 1 MB. If one of the preceding
	// limits is exceeded, the request will fail".
	maxValueBytes = 1 << 20
	// SLS accepts log times within [now-7d, now+15min] of its own clock:
	// "目前只接受日志数据时间戳在服务端当前处理时间前后 [-7x24小时, +15分钟]"
	// (PutLogs, https://help.aliyun.com/document_detail/29026.html); its
	// error table answers a time outside it "400 PostBodyInvalid: The post
	// data time is out of range" (the English reference says "[-168 hours,
	// +15 minutes]"), and lists InvalidTimestamp separately for "Invalid
	// timestamps are in logs" (Config.OutOfRangeTimeCode picks that one).
	maxLogAge    = 7 * 24 * time.Hour
	maxLogFuture = 15 * time.Minute
)

// reservedKeys may not be log keys: "The key cannot start with a digit or
// contain the following keywords: __time__, __source__, __topic__,
// __partition_time__, _extract_others_, __extract_others__" (data model,
// https://www.alibabacloud.com/help/doc-detail/48871.htm). The reserved
// fields page (https://www.alibabacloud.com/help/en/sls/reserved-fields)
// adds no other plain key: its other fields are __tag__:… system tags,
// which the key syntax (letters, digits, underscores) already excludes.
var reservedKeys = []string{"__time__", "__source__", "__topic__", "__partition_time__", "_extract_others_", "__extract_others__"}

// contentRules are the checks PutLogs applies to each key and value, fixed
// at New from the Config.
type contentRules struct {
	strictKeys bool
	maxLogs    int
}

// checkKey applies the key rules to a log content key. "contain the
// following keywords" reads two ways: the key is one of them (always
// refused), or the key has one inside it (refused under StrictKeys only,
// with the character rule).
func (cr *contentRules) checkKey(k []byte) *APIError {
	switch {
	case len(k) == 0:
		return badRequest("InvalidKey", "log key is empty")
	case !utf8.Valid(k):
		return badRequest("InvalidEncoding", fmt.Sprintf("log key %q is not UTF-8", k))
	case len(k) > maxKeyBytes:
		return badRequest("InvalidKey", fmt.Sprintf("log key of %d bytes is longer than %d", len(k), maxKeyBytes))
	}
	key := string(k)
	for _, r := range reservedKeys {
		if key == r || cr.strictKeys && strings.Contains(key, r) {
			return badRequest("InvalidKey", fmt.Sprintf("log key %s is reserved (%s)", key, r))
		}
	}
	if cr.strictKeys && !keySyntaxOK(key) {
		return badRequest("InvalidKey", fmt.Sprintf("log key %q: want letters, digits and underscores, not starting with a digit", key))
	}
	return nil
}

// keySyntaxOK: "It can contain letters, digits, and underscores (_). The
// key cannot start with a digit" (data model page).
func keySyntaxOK(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= '0' && c <= '9' {
			if i == 0 {
				return false
			}
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
			return false
		}
	}
	return true
}

func checkValue(k, v []byte) *APIError {
	if !utf8.Valid(v) {
		return badRequest("InvalidEncoding", fmt.Sprintf("value of log key %q is not UTF-8", k))
	}
	if len(v) > maxValueBytes {
		// The code is inferred: the PutLogs reference lists the 1 MB value
		// limit among those whose breach fails the request, and
		// PostBodyTooLarge is its only size code.
		return badRequest("PostBodyTooLarge", fmt.Sprintf("value of log key %q has %d bytes, more than %d", k, len(v), maxValueBytes))
	}
	return nil
}

// checkText applies the UTF-8 rule to the other strings of a LogGroup
// (topic, source, tag keys and values): the data model defines all of them
// as strings, and protobuf strings are UTF-8.
func checkText(what string, b []byte) *APIError {
	if !utf8.Valid(b) {
		return badRequest("InvalidEncoding", fmt.Sprintf("%s is not UTF-8", what))
	}
	return nil
}

// checkLogTimes applies the time window to a LogGroup's oldest and newest
// log, against the server's clock (now), answering with code.
func checkLogTimes(sum groupSummary, now time.Time, code string) *APIError {
	if sum.logs == 0 {
		return nil
	}
	oldest, newest := now.Add(-maxLogAge).Unix(), now.Add(maxLogFuture).Unix()
	if int64(sum.minTime) < oldest || int64(sum.maxTime) > newest {
		return badRequest(code, fmt.Sprintf("The post data time is out of range: a log time is outside [%d, %d] (server time %s)",
			oldest, newest, now.UTC().Format(http.TimeFormat)))
	}
	return nil
}
