package shardwriter

import (
	"errors"
	"strings"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// quotaAnswer slows the pacer SLS's quota answer err is about: the shard's
// for ShardWriteQuotaExceed, the project's for the project-level code
// WriteQuotaExceed, and of that one the limit its message names
// (quotaDim). Throttling page,
// https://www.alibabacloud.com/help/en/sls/user-guide/expansion-of-resources
// (Chinese edition https://help.aliyun.com/zh/sls/expansion-of-resources):
// "WriteQuotaExceed (project-level resource quota exceeded)",
// "ShardWriteQuotaExceed (shard-level resource quota exceeded)". It
// reports whether that pacer now holds writers to a rate; if not (nothing
// accepted yet to go by), the retry backs off as with fixed pacing.
func (w *writer) quotaAnswer(err error) bool {
	code := errorCode(err)
	p, scope, dim := w.projectPace, "project", quotaDim(err)
	if code == "ShardWriteQuotaExceed" {
		p, scope, dim = w.pace, "shard", paceBoth
	}
	if p.quotaAnswer(dim) {
		bps, rps := p.rates()
		w.log.Debug("SLS answered a write quota code; pacing down", "code", code, "scope", scope,
			"bytes_per_sec", int64(bps), "requests_per_sec", int64(rps))
	}
	return p.limited()
}

// quotaDim tells from a WriteQuotaExceed's message which of the project's
// quotas SLS refused for. The throttling page gives "Project write quota
// exceed: inflow: xxx" (write traffic) and "Project write quota exceed:
// qps: xxx" (writes); the limits page
// (https://www.alibabacloud.com/help/en/sls/basic-resources, "Data read and
// write") the older "Inflow Quota Exceed" and "Write QPS Exceed". Any
// other message cuts both.
func quotaDim(err error) paceDim {
	var se *sls.Error
	if !errors.As(err, &se) {
		return paceBoth
	}
	switch msg := strings.ToLower(se.Message); {
	case strings.Contains(msg, "inflow"):
		return paceBytes
	case strings.Contains(msg, "qps"):
		return paceRequests
	}
	return paceBoth
}
