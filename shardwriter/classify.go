package shardwriter

import (
	"errors"
	"fmt"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// verdict is what a writer does after a failed request.
type verdict int

const (
	// retry after the retry interval: the network, a 5xx, a quota, a
	// clock problem — time fixes them.
	retry verdict = iota
	// deadLetter: SLS refuses this data for good (the key is no longer
	// valid, the Logstore is gone, the body is invalid); retrying would
	// block the shard forever.
	deadLetter
)

// permanentCodes are SLS error codes that retrying cannot fix.
var permanentCodes = map[string]bool{
	"Unauthorized":          true,
	"SignatureNotMatch":     true,
	"InvalidAccessKeyId":    true,
	"ProjectNotExist":       true,
	"LogStoreNotExist":      true,
	"PostBodyInvalid":       true,
	"PostBodyTooLarge":      true,
	"InvalidParameter":      true,
	"ParameterInvalid":      true,
	"LogGroupInvalid":       true,
	"InvalidLogGroup":       true,
	"WriteNotAllowed":       true,
	"ProjectForbidden":      true,
	"ShardNotExist":         false, // the shard list is refreshed and the write retried
	"WriteQuotaExceed":      false,
	"ShardWriteQuotaExceed": false,
}

// classify decides what to do after err.
func classify(err error) (verdict, string) {
	var se *sls.Error
	if errors.As(err, &se) {
		if p, known := permanentCodes[se.Code]; known {
			if p {
				return deadLetter, fmt.Sprintf("SLS answered %d %s: %s", se.HTTPCode, se.Code, se.Message)
			}
			return retry, se.Code
		}
		switch {
		case se.HTTPCode == 401 || se.HTTPCode == 404:
			return deadLetter, fmt.Sprintf("SLS answered %d %s: %s", se.HTTPCode, se.Code, se.Message)
		case se.HTTPCode == 400 && se.Code != "RequestTimeExpired" && se.Code != "RequestTimeTooSkewed":
			return deadLetter, fmt.Sprintf("SLS answered %d %s: %s", se.HTTPCode, se.Code, se.Message)
		}
		return retry, se.Code
	}
	var bre *sls.BadResponseError
	if errors.As(err, &bre) && bre.HTTPCode >= 400 && bre.HTTPCode < 500 && bre.HTTPCode != 429 && bre.HTTPCode != 408 {
		return deadLetter, fmt.Sprintf("SLS answered %d: %s", bre.HTTPCode, bre.ErrorMessage)
	}
	// Transport errors and anything unknown: keep the data and retry.
	return retry, "network"
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
