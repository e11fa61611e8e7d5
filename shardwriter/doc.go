// Package shardwriter is everything in slsrelay that talks to SLS: the
// catalog that tells the front end which Logstores and shards a key may
// write (and checks the key first), the conversion of stored Kafka batches
// into SLS LogGroups, and one writer per WAL stream that delivers them with
// PutLogs, retrying what can be retried and moving what cannot to the WAL's
// dead letters. Every call goes through aliyun-log-go-sdk but lz4 PutLogs,
// which putlogs.go sends as the SDK would, signed by its signers, with the
// compression state and buffers reused.
//
// Delivery is at least once: a stream's WAL position is committed only
// after SLS answered 200 for everything before it.
package shardwriter
