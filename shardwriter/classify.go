package shardwriter

import (
	"errors"
	"fmt"
	"strings"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/twmb/franz-go/pkg/kerr"
)

// verdict is what a writer does after a failed PutLogs.
type verdict int

const (
	// retry the same logs with back-off (RetryInterval doubling up to
	// MaxRetryInterval): the network, a 5xx, a quota, a key or project
	// that is disabled for now — states that pass.
	retry verdict = iota
	// refreshRetry is retry after re-reading the shard list.
	refreshRetry
	// split: SLS refused the body; some logs in it are invalid. The group
	// is sent again in halves until the refused logs are found; only they
	// become dead letters (sendLogs).
	split
	// deadLetter: SLS will never take these logs as they are (the Logstore
	// is gone, the key cannot write); retrying would block the shard.
	deadLetter
)

var verdictNames = [...]string{retry: "retry", refreshRetry: "retry", split: "split", deadLetter: "dead_letter"}

// errorRule is one row of the table: what a writer does with an SLS answer,
// the Kafka error a shipper sees for it (KafkaErrorOf, for the front end's
// own SLS calls), and whether it counts in the alerting metric
// slsrelay_sls_alert_errors_total (a state an operator must fix or watch).
type errorRule struct {
	name    string // what SLS's answer means, distinct per rule
	verdict verdict
	kafka   *kerr.Error
	alert   bool
}

// The table, by rule (codes below in errorCodes, statuses in ruleForStatus):
//
//	rule          answer                                        writer            Kafka error                 alert
//	network       transport error, SDK ClientError              retry, back-off   NETWORK_EXCEPTION           yes
//	server        5xx, ServerBusy, 408, 429                     retry, back-off   NETWORK_EXCEPTION           yes
//	quota         403 WriteQuotaExceed, ShardWriteQuotaExceed…  retry, back-off   NETWORK_EXCEPTION           yes
//	shard_gone    404 ShardNotExist                             re-read shards    NETWORK_EXCEPTION           no
//	passing_auth  401 Unauthorized (key disabled, STS token     retry, back-off   TOPIC_AUTHORIZATION_FAILED  yes
//	              expired), 403 ProjectForbidden, other 401/403
//	key_gone      401 InvalidAccessKeyId, SignatureNotMatch,    dead letter       TOPIC_AUTHORIZATION_FAILED  yes
//	              "AccessKeyId not found"
//	write_denied  401 "denied by sts or ram, action:            dead letter +     TOPIC_AUTHORIZATION_FAILED  yes
//	              log:PostLogStoreLogs"
//	not_exist     404 ProjectNotExist, LogStoreNotExist         dead letter       UNKNOWN_TOPIC_OR_PARTITION  yes
//	unknown_404   other 404                                     dead letter       UNKNOWN_TOPIC_OR_PARTITION  yes
//	clock         400 RequestTimeExpired, InvalidRequestTime…   retry, back-off   NETWORK_EXCEPTION           yes
//	bad_request   400/411/415 about the request's headers       dead letter       UNKNOWN_SERVER_ERROR        yes
//	group_invalid 400 InvalidTopic, InvalidSource               dead letter       CORRUPT_MESSAGE             yes
//	invalid_body  400 PostBodyInvalid, InvalidKey…, 413         split             CORRUPT_MESSAGE             no
//	unknown_400   other 400                                     split             CORRUPT_MESSAGE             no
//	unknown_4xx   other 4xx                                     retry, back-off   NETWORK_EXCEPTION           yes
//
// Every rule whose Kafka error is TOPIC_AUTHORIZATION_FAILED also tells the
// catalog (Catalog.WriteDenied): new requests with the key are refused at
// once, and its next batch proves the key again before it is acknowledged.
//
// Back-off: RetryInterval (default 1 s), doubling at each failure of a run,
// up to MaxRetryInterval (default 5 s). A split ends at single logs: a log
// SLS refuses alone is a dead letter with SLS's answer as the reason.
//
// The SDK's own producer retries every error but HTTP 400 and 404
// (producer.GetDefaultProducerConfig: NoRetryStatusCodeList {400, 404}) with
// back-off from 100 ms to 50 s; the table follows it, except that a 400
// about the body is split rather than dropped, and a 400 about the
// request's headers is not split. Codes: SLS's common error codes
// (https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes)
// and the PutLogs reference (https://www.alibabacloud.com/help/doc-detail/29026.htm).
var (
	ruleNetwork      = errorRule{"network", retry, kerr.NetworkException, true}
	ruleServer       = errorRule{"server", retry, kerr.NetworkException, true}
	ruleQuota        = errorRule{"quota", retry, kerr.NetworkException, true}
	ruleShardGone    = errorRule{"shard_gone", refreshRetry, kerr.NetworkException, false}
	rulePassingAuth  = errorRule{"passing_auth", retry, kerr.TopicAuthorizationFailed, true}
	ruleKeyGone      = errorRule{"key_gone", deadLetter, kerr.TopicAuthorizationFailed, true}
	ruleWriteDenied  = errorRule{"write_denied", deadLetter, kerr.TopicAuthorizationFailed, true}
	ruleNotExist     = errorRule{"not_exist", deadLetter, kerr.UnknownTopicOrPartition, true}
	ruleClock        = errorRule{"clock", retry, kerr.NetworkException, true}
	ruleBadRequest   = errorRule{"bad_request", deadLetter, kerr.UnknownServerError, true}
	ruleInvalidBody  = errorRule{"invalid_body", split, kerr.CorruptMessage, false}
	ruleUnknown4xx   = errorRule{"unknown_4xx", retry, kerr.NetworkException, true}
	ruleUnknown404   = errorRule{"unknown_404", deadLetter, kerr.UnknownTopicOrPartition, true}
	ruleUnknown400   = errorRule{"unknown_400", split, kerr.CorruptMessage, false}
	ruleGroupInvalid = errorRule{"group_invalid", deadLetter, kerr.CorruptMessage, true}
)

// errorCodes maps SLS error codes to their rule; the HTTP status decides
// for codes not listed (ruleFor).
var errorCodes = map[string]errorRule{
	// 5xx and throttling: SLS is busy or failing; it passes.
	"InternalServerError": ruleServer, // 500
	"ServerBusy":          ruleServer, // 503
	"RequestTimeout":      ruleServer, // 500/408
	// 403 quotas: per project and shard write quotas (Quotas page); they pass.
	"WriteQuotaExceed":      ruleQuota,
	"ShardWriteQuotaExceed": ruleQuota,
	"ProjectQuotaExceed":    ruleQuota,
	"QuotaExceed":           ruleQuota,
	// 404.
	"ProjectNotExist":  ruleNotExist,
	"LogStoreNotExist": ruleNotExist,
	"ShardNotExist":    ruleShardGone, // a split or merge: re-read the shards
	// 401/403 states that pass: a disabled AccessKey, an expired STS token,
	// a project forbidden until paid. "Unauthorized" covers the first two
	// (SLS's message says which; see writeDenied for the one that does not
	// pass).
	"Unauthorized":         rulePassingAuth,
	"SecurityTokenExpired": rulePassingAuth,
	"ProjectForbidden":     rulePassingAuth,
	"WriteNotAllowed":      rulePassingAuth, // Logstore read-only for now
	// 401 that cannot pass: the key does not exist, or its secret is not
	// the one SLS has. The entries are kept as dead letters, replayable
	// with another key.
	"InvalidAccessKeyId": ruleKeyGone,
	"SignatureNotMatch":  ruleKeyGone,
	// 400 about the request's headers (common error codes): the clock…
	"RequestTimeExpired":   ruleClock,
	"RequestTimeTooSkewed": ruleClock,
	"InvalidRequestTime":   ruleClock,
	"InvalidDateFormat":    ruleClock,
	// …or a fault of the relay's requests: no log is to blame, nothing
	// is split; the entries wait as dead letters for a fixed relay.
	"MissingContentType":      ruleBadRequest,
	"MissingBodyRawSize":      ruleBadRequest,
	"InvalidBodyRawSize":      ruleBadRequest,
	"InvalidCompressType":     ruleBadRequest,
	"MissingHost":             ruleBadRequest,
	"MissingDate":             ruleBadRequest,
	"MissingAPIVersion":       ruleBadRequest,
	"InvalidAPIVersion":       ruleBadRequest,
	"MissingContentLength":    ruleBadRequest,
	"InvalidContentType":      ruleBadRequest,
	"PostBodyUncompressError": ruleBadRequest,
	"InvalidTopic":            ruleGroupInvalid, // the group's topic/source: every half would fail
	"InvalidSource":           ruleGroupInvalid,
	// 400 about the logs: split to find them.
	"PostBodyInvalid":  ruleInvalidBody,
	"PostBodyTooLarge": ruleInvalidBody,
	"InvalidLogSize":   ruleInvalidBody,
	"InvalidTimestamp": ruleInvalidBody,
	"InvalidKey":       ruleInvalidBody,
	"InvalidEncoding":  ruleInvalidBody,
	"InvalidContent":   ruleInvalidBody,
	"LogGroupInvalid":  ruleInvalidBody,
	"InvalidLogGroup":  ruleInvalidBody,
	"ParameterInvalid": ruleInvalidBody,
	"InvalidParameter": ruleInvalidBody,
}

// writeDeniedMessage marks a 401 saying the key may not write this
// Logstore: RAM or STS policy denies log:PostLogStoreLogs (SLS's documented
// permission for its Kafka endpoint). Retrying cannot fix it; the catalog
// is told, so that the front end refuses the key for that Logstore.
const writeDeniedMessage = "denied by sts or ram, action: log:postlogstorelogs"

// keyNotFoundMessage starts SLS's 401 Unauthorized for an AccessKey id it
// does not know (deleted, or never created): "AccessKeyId not found: <id>"
// (common error codes, https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes).
// Retrying cannot bring the key back; the entries wait as dead letters,
// replayable with another key.
const keyNotFoundMessage = "accesskeyid not found"

// ruleFor returns the rule for err, and the reason to give in dead
// letters and logs (SLS's status, code and message; never a secret).
func ruleFor(err error) (errorRule, string) {
	var se *sls.Error
	if errors.As(err, &se) {
		if se.Code == "ClientError" { // the SDK's wrapper of a transport error (client.go)
			return ruleNetwork, "network: " + se.Message
		}
		reason := fmt.Sprintf("SLS answered %d %s: %s", se.HTTPCode, se.Code, se.Message)
		if se.HTTPCode == 401 {
			switch msg := strings.ToLower(se.Message); {
			case strings.Contains(msg, writeDeniedMessage):
				return ruleWriteDenied, reason
			case strings.HasPrefix(msg, keyNotFoundMessage):
				return ruleKeyGone, reason
			}
		}
		if r, ok := errorCodes[se.Code]; ok {
			return r, reason
		}
		return ruleForStatus(int(se.HTTPCode)), reason
	}
	var bre *sls.BadResponseError
	if errors.As(err, &bre) {
		return ruleForStatus(bre.HTTPCode), fmt.Sprintf("SLS answered %d: %s", bre.HTTPCode, bre.ErrorMessage)
	}
	return ruleNetwork, "network: " + err.Error()
}

// ruleForStatus decides by HTTP status alone, for codes the table does not
// list.
func ruleForStatus(status int) errorRule {
	switch {
	case status == 400:
		// Assumed to be about the body: splitting costs a few requests
		// and dead-letters only what SLS refuses alone.
		return ruleUnknown400
	case status == 401:
		return rulePassingAuth
	case status == 403:
		return rulePassingAuth
	case status == 404:
		return ruleUnknown404
	case status == 413: // Request Entity Too Large: halves are smaller
		return ruleInvalidBody
	case status <= 0:
		return ruleNetwork
	case status >= 500, status == 408, status == 429:
		return ruleServer
	}
	return ruleUnknown4xx
}

// KafkaErrorOf returns the Kafka error a shipper should see for err, an
// error from an SLS call (the SDK's *sls.Error, *sls.BadResponseError, or
// a transport error), by the same table the writers use: a key that
// cannot write (or for now cannot) is TOPIC_AUTHORIZATION_FAILED, a
// missing Project or Logstore UNKNOWN_TOPIC_OR_PARTITION, anything that
// passes (network, 5xx, quota, clock) NETWORK_EXCEPTION, a refused body
// CORRUPT_MESSAGE. Nil for a nil err.
func KafkaErrorOf(err error) *kerr.Error {
	if err == nil {
		return nil
	}
	r, _ := ruleFor(err)
	return r.kafka
}

// errorCode names err for metrics: SLS's error code, the HTTP status of an
// answer SLS did not explain, or "network".
func errorCode(err error) string {
	var se *sls.Error
	if errors.As(err, &se) && se.Code != "" && se.Code != "ClientError" {
		return se.Code
	}
	var bre *sls.BadResponseError
	if errors.As(err, &bre) {
		return fmt.Sprintf("HTTP%d", bre.HTTPCode)
	}
	return "network"
}
